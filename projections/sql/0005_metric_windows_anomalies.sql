-- Closed metric windows and detected anomalies, derived from the archive like
-- runs and steps. A window re-emitted after a worker restart has the same key
-- and the same values, and collapses on merge; readers use FINAL.
CREATE TABLE IF NOT EXISTS metric_windows
(
    tenant_id        LowCardinality(String),
    scope            LowCardinality(String),
    key              String,
    service          LowCardinality(String),
    window_s         UInt32,
    window_start     DateTime64(3, 'UTC'),
    window_end       DateTime64(3, 'UTC'),
    count            UInt64,
    successes        UInt64,
    failures         UInt64,
    error_rate       Float64,
    latency_p50_ms   Nullable(Float64),
    latency_p95_ms   Nullable(Float64),
    latency_p99_ms   Nullable(Float64),
    cost_sum         Float64,
    throughput_per_s Float64,
    late_events      UInt64,
    latency_sketch   Map(Int32, UInt64),
    event_id         UUID
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (tenant_id, scope, key, window_s, window_start);

CREATE MATERIALIZED VIEW IF NOT EXISTS metric_windows_from_events TO metric_windows AS
SELECT
    tenant_id,
    JSONExtractString(payload, 'scope') AS scope,
    JSONExtractString(payload, 'key') AS key,
    JSONExtractString(payload, 'service') AS service,
    toUInt32(JSONExtractFloat(payload, 'window_s')) AS window_s,
    parseDateTime64BestEffort(JSONExtractString(payload, 'window_start'), 3, 'UTC') AS window_start,
    parseDateTime64BestEffort(JSONExtractString(payload, 'window_end'), 3, 'UTC') AS window_end,
    JSONExtractUInt(payload, 'count') AS count,
    JSONExtractUInt(payload, 'successes') AS successes,
    JSONExtractUInt(payload, 'failures') AS failures,
    JSONExtractFloat(payload, 'error_rate') AS error_rate,
    JSONExtract(payload, 'latency_p50_ms', 'Nullable(Float64)') AS latency_p50_ms,
    JSONExtract(payload, 'latency_p95_ms', 'Nullable(Float64)') AS latency_p95_ms,
    JSONExtract(payload, 'latency_p99_ms', 'Nullable(Float64)') AS latency_p99_ms,
    JSONExtractFloat(payload, 'cost_sum') AS cost_sum,
    JSONExtractFloat(payload, 'throughput_per_s') AS throughput_per_s,
    JSONExtractUInt(payload, 'late_events') AS late_events,
    mapApply((k, v) -> (toInt32(k), v), JSONExtract(payload, 'latency_sketch', 'Map(String, UInt64)'))
        AS latency_sketch,
    event_id
FROM events
WHERE type = 'MetricWindowClosed';

CREATE TABLE IF NOT EXISTS anomalies
(
    tenant_id     LowCardinality(String),
    event_id      UUID,
    detected_at   DateTime64(3, 'UTC'),
    scope         LowCardinality(String),
    key           String,
    metric        LowCardinality(String),
    series        String,
    value         Float64,
    score         Float64,
    expected_low  Nullable(Float64),
    expected_high Nullable(Float64),
    explanation   String,
    window_start  Nullable(DateTime64(3, 'UTC'))
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(detected_at)
ORDER BY (tenant_id, series, detected_at, event_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS anomalies_from_events TO anomalies AS
SELECT
    tenant_id,
    event_id,
    occurred_at AS detected_at,
    JSONExtractString(payload, 'scope') AS scope,
    JSONExtractString(payload, 'key') AS key,
    JSONExtractString(payload, 'metric') AS metric,
    JSONExtractString(payload, 'series') AS series,
    JSONExtractFloat(payload, 'value') AS value,
    JSONExtractFloat(payload, 'score') AS score,
    JSONExtract(payload, 'expected_low', 'Nullable(Float64)') AS expected_low,
    JSONExtract(payload, 'expected_high', 'Nullable(Float64)') AS expected_high,
    JSONExtractString(payload, 'explanation') AS explanation,
    parseDateTime64BestEffortOrNull(JSONExtractString(payload, 'window_start'), 3, 'UTC') AS window_start
FROM events
WHERE type = 'AnomalyDetected';
