-- Acknowledgements: a person has seen a firing alert. They are rows of the alert's
-- lifecycle (kind 'acked', `detail` = who) that do not change its state.
DROP VIEW IF EXISTS alert_events_from_events;

CREATE MATERIALIZED VIEW alert_events_from_events TO alert_events AS
SELECT
    tenant_id,
    JSONExtractString(payload, 'alert_id') AS alert_id,
    event_id,
    occurred_at,
    multiIf(type = 'AlertFired', 'fired', type = 'AlertResolved', 'resolved', type = 'AlertPending', 'pending',
            type = 'AlertCleared', 'cleared', type = 'AlertAcknowledged', 'acked', 'notified') AS kind,
    JSONExtractString(payload, 'rule') AS rule,
    JSONExtractString(payload, 'severity') AS severity,
    JSONExtract(payload, 'labels', 'Map(String, String)') AS labels,
    JSONExtract(payload, 'annotations', 'Map(String, String)') AS annotations,
    JSONExtract(payload, 'value', 'Nullable(Float64)') AS value,
    parseDateTime64BestEffortOrNull(JSONExtractString(payload, 'started_at'), 3, 'UTC') AS started_at,
    JSONExtractString(payload, 'channel') AS channel,
    if(type = 'AlertNotified', toUInt8(JSONExtractBool(payload, 'delivered')), NULL) AS delivered,
    toUInt16(JSONExtractUInt(payload, 'attempt')) AS attempt,
    if(type = 'AlertAcknowledged', JSONExtractString(payload, 'acknowledged_by'), JSONExtractString(payload, 'detail'))
        AS detail
FROM events
WHERE type IN ('AlertFired', 'AlertResolved', 'AlertNotified', 'AlertPending', 'AlertCleared', 'AlertAcknowledged');
