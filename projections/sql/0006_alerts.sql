-- The alert lifecycle, one row per event: fired, resolved, and every notification
-- attempt. An alert's state is the type of its latest fired/resolved row.
CREATE TABLE IF NOT EXISTS alert_events
(
    tenant_id   LowCardinality(String),
    alert_id    String,
    event_id    UUID,
    occurred_at DateTime64(3, 'UTC'),
    kind        LowCardinality(String),
    rule        LowCardinality(String),
    severity    LowCardinality(String),
    labels      Map(String, String),
    annotations Map(String, String),
    value       Nullable(Float64),
    started_at  Nullable(DateTime64(3, 'UTC')),
    channel     String,
    delivered   Nullable(UInt8),
    attempt     UInt16,
    detail      String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant_id, alert_id, occurred_at, event_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS alert_events_from_events TO alert_events AS
SELECT
    tenant_id,
    JSONExtractString(payload, 'alert_id') AS alert_id,
    event_id,
    occurred_at,
    multiIf(type = 'AlertFired', 'fired', type = 'AlertResolved', 'resolved', 'notified') AS kind,
    JSONExtractString(payload, 'rule') AS rule,
    JSONExtractString(payload, 'severity') AS severity,
    JSONExtract(payload, 'labels', 'Map(String, String)') AS labels,
    JSONExtract(payload, 'annotations', 'Map(String, String)') AS annotations,
    JSONExtract(payload, 'value', 'Nullable(Float64)') AS value,
    parseDateTime64BestEffortOrNull(JSONExtractString(payload, 'started_at'), 3, 'UTC') AS started_at,
    JSONExtractString(payload, 'channel') AS channel,
    if(type = 'AlertNotified', toUInt8(JSONExtractBool(payload, 'delivered')), NULL) AS delivered,
    toUInt16(JSONExtractUInt(payload, 'attempt')) AS attempt,
    JSONExtractString(payload, 'detail') AS detail
FROM events
WHERE type IN ('AlertFired', 'AlertResolved', 'AlertNotified');
