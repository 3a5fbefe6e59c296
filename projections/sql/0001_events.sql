-- The durable archive: every valid record of every projected topic.
-- Duplicates (replays, redeliveries) share the sort key and collapse on merge;
-- queries that count read with LIMIT 1 BY event_id or idempotent aggregates.
CREATE TABLE IF NOT EXISTS events
(
    event_id       UUID,
    type           LowCardinality(String),
    schema_version UInt16,
    occurred_at    DateTime64(3, 'UTC'),
    tenant_id      LowCardinality(String),
    workflow_id    String,
    run_id         String,
    step_id        String,
    causation_id   Nullable(UUID),
    correlation_id String,
    payload        String CODEC(ZSTD(3)),
    topic          LowCardinality(String),
    partition      UInt16,
    offset         UInt64,
    INDEX events_type type TYPE set(64) GRANULARITY 4,
    INDEX events_run run_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant_id, workflow_id, run_id, event_id);
