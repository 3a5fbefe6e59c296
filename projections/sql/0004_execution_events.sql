-- The executor's own run events (retry schedule, skips, resumptions) and step
-- outputs. Views are replaced whole; migrations run before the projector starts.
ALTER TABLE steps ADD COLUMN IF NOT EXISTS due_at Nullable(DateTime64(3, 'UTC'));
ALTER TABLE steps ADD COLUMN IF NOT EXISTS output String DEFAULT '';
ALTER TABLE steps ADD COLUMN IF NOT EXISTS reason String DEFAULT '';

DROP VIEW IF EXISTS runs_from_events;

CREATE MATERIALIZED VIEW runs_from_events TO runs AS
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
WHERE type IN ('RunStarted', 'StepStarted', 'StepSucceeded', 'StepFailed', 'StepRetryScheduled',
               'StepSkipped', 'RunResumed', 'RunSucceeded', 'RunFailed', 'RunCancelled');

DROP VIEW IF EXISTS steps_from_events;

CREATE MATERIALIZED VIEW steps_from_events TO steps AS
SELECT
    tenant_id,
    workflow_id,
    run_id,
    step_id,
    toUInt16(JSONExtractUInt(payload, 'attempt')) AS attempt,
    event_id,
    occurred_at,
    multiIf(type = 'StepSucceeded', 'succeeded', type = 'StepFailed', 'failed', type = 'StepSkipped', 'skipped',
            type = 'StepRetryScheduled', 'retry_scheduled', 'running') AS status,
    if(type IN ('StepStarted', 'StepRetryScheduled'), 1, 2) AS status_rank,
    JSONExtractString(payload, 'service') AS service,
    JSONExtractString(payload, 'action') AS action,
    JSONExtractString(payload, 'credential_id') AS credential_id,
    JSONExtract(payload, 'duration_ms', 'Nullable(Float64)') AS duration_ms,
    JSONExtract(payload, 'cost', 'Nullable(Float64)') AS cost,
    JSONExtractString(payload, 'error', 'type') AS error_type,
    JSONExtractString(payload, 'error', 'message') AS error_message,
    JSONExtract(payload, 'error', 'status_code', 'Nullable(UInt16)') AS error_status_code,
    JSONExtract(payload, 'error', 'retry_after_s', 'Nullable(Float64)') AS retry_after_s,
    if(type = 'StepRetryScheduled', parseDateTime64BestEffortOrNull(JSONExtractString(payload, 'due_at'), 3, 'UTC'),
       NULL) AS due_at,
    if(type = 'StepSucceeded', JSONExtractRaw(payload, 'output'), '') AS output,
    JSONExtractString(payload, 'reason') AS reason
FROM events
WHERE type IN ('StepStarted', 'StepSucceeded', 'StepFailed', 'StepRetryScheduled', 'StepSkipped');
