-- Which call a step attempt made: params_digest (a digest of service, action and rendered params, never the
-- params), cached (its output was reused from the executor's cache), fallback_for (the attempt called the
-- step's fallback; `service` is the fallback's, this the step's own). Rows projected before this migration
-- keep the defaults until a replay. The view is replaced whole; migrations run before the projector starts.
ALTER TABLE steps ADD COLUMN IF NOT EXISTS params_digest String DEFAULT '';
ALTER TABLE steps ADD COLUMN IF NOT EXISTS cached UInt8 DEFAULT 0;
ALTER TABLE steps ADD COLUMN IF NOT EXISTS fallback_for LowCardinality(String) DEFAULT '';

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
    JSONExtractString(payload, 'reason') AS reason,
    JSONExtractString(payload, 'params_digest') AS params_digest,
    toUInt8(JSONExtractBool(payload, 'cached')) AS cached,
    JSONExtractString(payload, 'fallback_for') AS fallback_for
FROM events
WHERE type IN ('StepStarted', 'StepSucceeded', 'StepFailed', 'StepRetryScheduled', 'StepSkipped');
