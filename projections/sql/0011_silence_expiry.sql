-- Silences expired before their time: a SilenceExpired event is a row of its own
-- (`expired = 1`, `ends_at` = when it was expired, `created_by` = who expired it);
-- a silence ends at the earlier of its planned end and its first expiry.
ALTER TABLE silences ADD COLUMN IF NOT EXISTS expired UInt8 DEFAULT 0;

DROP VIEW IF EXISTS silences_from_events;

CREATE MATERIALIZED VIEW silences_from_events TO silences AS
SELECT
    tenant_id,
    JSONExtractString(payload, 'silence_id') AS silence_id,
    event_id,
    JSONExtract(payload, 'matchers', 'Map(String, String)') AS matchers,
    coalesce(parseDateTime64BestEffortOrNull(JSONExtractString(payload, 'starts_at'), 3, 'UTC'), occurred_at) AS starts_at,
    coalesce(parseDateTime64BestEffortOrNull(JSONExtractString(payload, 'ends_at'), 3, 'UTC'), occurred_at) AS ends_at,
    JSONExtractString(payload, 'comment') AS comment,
    if(type = 'SilenceExpired', JSONExtractString(payload, 'expired_by'), JSONExtractString(payload, 'created_by'))
        AS created_by,
    toUInt8(type = 'SilenceExpired') AS expired
FROM events
WHERE type IN ('SilenceCreated', 'SilenceExpired');
