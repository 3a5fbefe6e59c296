-- Alert rules (every version and deletion) and silences, derived from the archive.
-- The current rule set is the latest row per name whose kind is not a deletion.
CREATE TABLE IF NOT EXISTS alert_rules
(
    tenant_id   LowCardinality(String),
    name        String,
    event_id    UUID,
    occurred_at DateTime64(3, 'UTC'),
    version     UInt32,
    deleted     UInt8,
    spec        String
)
ENGINE = ReplacingMergeTree
ORDER BY (tenant_id, name, occurred_at, event_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS alert_rules_from_events TO alert_rules AS
SELECT
    tenant_id,
    if(type = 'AlertRuleDefined', JSONExtractString(payload, 'rule', 'name'), JSONExtractString(payload, 'name'))
        AS name,
    event_id,
    occurred_at,
    toUInt32(JSONExtractUInt(payload, 'version')) AS version,
    toUInt8(type = 'AlertRuleDeleted') AS deleted,
    if(type = 'AlertRuleDefined', JSONExtractRaw(payload, 'rule'), '') AS spec
FROM events
WHERE type IN ('AlertRuleDefined', 'AlertRuleDeleted');

CREATE TABLE IF NOT EXISTS silences
(
    tenant_id  LowCardinality(String),
    silence_id String,
    event_id   UUID,
    matchers   Map(String, String),
    starts_at  DateTime64(3, 'UTC'),
    ends_at    DateTime64(3, 'UTC'),
    comment    String,
    created_by String
)
ENGINE = ReplacingMergeTree
ORDER BY (tenant_id, silence_id, event_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS silences_from_events TO silences AS
SELECT
    tenant_id,
    JSONExtractString(payload, 'silence_id') AS silence_id,
    event_id,
    JSONExtract(payload, 'matchers', 'Map(String, String)') AS matchers,
    parseDateTime64BestEffort(JSONExtractString(payload, 'starts_at'), 3, 'UTC') AS starts_at,
    parseDateTime64BestEffort(JSONExtractString(payload, 'ends_at'), 3, 'UTC') AS ends_at,
    JSONExtractString(payload, 'comment') AS comment,
    JSONExtractString(payload, 'created_by') AS created_by
FROM events
WHERE type = 'SilenceCreated';
