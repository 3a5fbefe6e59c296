-- Current state of runs and steps, as idempotent facts folded at read time:
-- one row per run event (runs) and per step event (steps). The state of a run
-- is argMax(status, (occurred_at, status_rank)) over its rows, which neither a
-- duplicate row nor a replay can change.
CREATE TABLE IF NOT EXISTS runs
(
    tenant_id          LowCardinality(String),
    workflow_id        String,
    run_id             String,
    event_id           UUID,
    occurred_at        DateTime64(3, 'UTC'),
    status             LowCardinality(String),
    status_rank        UInt8,
    started_at         Nullable(DateTime64(3, 'UTC')),
    ended_at           Nullable(DateTime64(3, 'UTC')),
    duration_ms        Nullable(Float64),
    definition_version Nullable(UInt32),
    error_message      String,
    INDEX runs_run run_id TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = ReplacingMergeTree
ORDER BY (tenant_id, workflow_id, run_id, event_id);

CREATE TABLE IF NOT EXISTS steps
(
    tenant_id         LowCardinality(String),
    workflow_id       String,
    run_id            String,
    step_id           String,
    attempt           UInt16,
    event_id          UUID,
    occurred_at       DateTime64(3, 'UTC'),
    status            LowCardinality(String),
    status_rank       UInt8,
    service           LowCardinality(String),
    action            String,
    credential_id     String,
    duration_ms       Nullable(Float64),
    cost              Nullable(Float64),
    error_type        String,
    error_message     String,
    error_status_code Nullable(UInt16),
    retry_after_s     Nullable(Float64)
)
ENGINE = ReplacingMergeTree
ORDER BY (tenant_id, run_id, step_id, attempt, event_id);
