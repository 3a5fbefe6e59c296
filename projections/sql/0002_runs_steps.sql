-- Current state of runs and steps, derived inside ClickHouse from the archive:
-- each insert into `events` feeds these materialized views, so the projector
-- writes once and the rows of `runs` and `steps` never pass through Python.
--
-- Rows are idempotent facts folded at read time: one row per run or step event.
-- The state of a run is argMax(status, (occurred_at, status_rank)) over its
-- rows, which neither a duplicate row nor a replay can change.
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

CREATE MATERIALIZED VIEW IF NOT EXISTS runs_from_events TO runs AS
SELECT
    tenant_id,
    workflow_id,
    run_id,
    event_id,
    occurred_at,
    multiIf(type = 'RunSucceeded', 'succeeded', type = 'RunFailed', 'failed',
            type = 'RunCancelled', 'cancelled', 'running') AS status,
    if(type IN ('RunSucceeded', 'RunFailed', 'RunCancelled'), 2, 1) AS status_rank,
    if(type = 'RunStarted', occurred_at, NULL) AS started_at,
    if(status_rank = 2, occurred_at, NULL) AS ended_at,
    if(status_rank = 2, JSONExtract(payload, 'duration_ms', 'Nullable(Float64)'), NULL) AS duration_ms,
    if(type = 'RunStarted', JSONExtract(payload, 'definition_version', 'Nullable(UInt32)'), NULL)
        AS definition_version,
    multiIf(type = 'RunFailed', JSONExtractString(payload, 'error', 'message'),
            type = 'RunCancelled', JSONExtractString(payload, 'reason'), '') AS error_message
FROM events
WHERE type IN ('RunStarted', 'StepStarted', 'StepSucceeded', 'StepFailed',
               'RunSucceeded', 'RunFailed', 'RunCancelled');

CREATE MATERIALIZED VIEW IF NOT EXISTS steps_from_events TO steps AS
SELECT
    tenant_id,
    workflow_id,
    run_id,
    step_id,
    toUInt16(JSONExtractUInt(payload, 'attempt')) AS attempt,
    event_id,
    occurred_at,
    multiIf(type = 'StepSucceeded', 'succeeded', type = 'StepFailed', 'failed', 'running') AS status,
    if(type = 'StepStarted', 1, 2) AS status_rank,
    JSONExtractString(payload, 'service') AS service,
    JSONExtractString(payload, 'action') AS action,
    JSONExtractString(payload, 'credential_id') AS credential_id,
    JSONExtract(payload, 'duration_ms', 'Nullable(Float64)') AS duration_ms,
    JSONExtract(payload, 'cost', 'Nullable(Float64)') AS cost,
    JSONExtractString(payload, 'error', 'type') AS error_type,
    JSONExtractString(payload, 'error', 'message') AS error_message,
    JSONExtract(payload, 'error', 'status_code', 'Nullable(UInt16)') AS error_status_code,
    JSONExtract(payload, 'error', 'retry_after_s', 'Nullable(Float64)') AS retry_after_s
FROM events
WHERE type IN ('StepStarted', 'StepSucceeded', 'StepFailed');
