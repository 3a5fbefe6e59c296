"""From a closed window to its records: the window itself and any anomalies in it (pure).

Every series has one detector per metric it carries; each closed window is
one point of each. A point scoring at or above the threshold is an anomaly.
Ids derive from (series, window, metric), so a window closed twice (after a
restart) yields the same records.
"""

from collections.abc import MutableMapping
from datetime import UTC, datetime

from domain.anomaly import ALERT_THRESHOLD, DetectorConfig, SeriesDetector, explain
from domain.windows import Partial, Series, WindowConfig, WindowSummary, summarize
from schemas.envelope import deterministic_event_id
from schemas.monitoring import AnomalyDetected, AnomalyPayload, MetricWindowClosed, MetricWindowPayload

ALL = "all"
"""``workflow_id`` of records about a service or a whole tenant."""

METRICS: dict[str, tuple[str, str]] = {
    "latency_p95_ms": ("p95 latency", "ms"),
    "latency_p50_ms": ("median latency", "ms"),
    "error_rate": ("error rate", ""),
    "throughput_per_s": ("throughput", "/s"),
}
"""Metric -> (how an explanation names it, unit)."""

SCOPE_METRICS: dict[str, tuple[str, ...]] = {
    "step": ("latency_p50_ms", "latency_p95_ms", "error_rate", "throughput_per_s"),
    "service": ("latency_p95_ms", "error_rate", "throughput_per_s"),
    "workflow": ("latency_p95_ms", "error_rate", "throughput_per_s"),
    "tenant": ("latency_p95_ms", "error_rate", "throughput_per_s"),
}
"""What is watched per scope; a step's median duration is its typical duration."""

DEFAULT_THRESHOLD = ALERT_THRESHOLD

LIVE_DETECTOR = DetectorConfig(warmup=30)
"""Metric windows are minutes: half an hour of history before a series may alert (NAB's tuning waits 150 points)."""


def workflow_of(series: Series) -> str:
    _tenant, scope, key, _service = series
    if scope == "workflow":
        return key
    if scope == "step":
        return key.split("/", 1)[0]
    return ALL


def window_record(series: Series, start: float, partial: Partial, config: WindowConfig) -> MetricWindowClosed:
    tenant, scope, key, service = series
    summary = summarize(partial, config.size_s)
    end = start + config.size_s
    return MetricWindowClosed(
        event_id=deterministic_event_id("window", *series, repr(start), repr(config.size_s)),
        occurred_at=_utc(end),
        tenant_id=tenant,
        workflow_id=workflow_of(series),
        payload=MetricWindowPayload(
            scope=scope,
            key=key,
            service=service or None,
            window_start=_utc(start),
            window_end=_utc(end),
            window_s=config.size_s,
            latency_sketch=partial.sketch.to_buckets(),
            **summary.__dict__,
        ),
    )


def score_window(
    series: Series,
    start: float,
    summary: WindowSummary,
    detectors: MutableMapping[str, SeriesDetector],
    *,
    config: WindowConfig,
    threshold: float = DEFAULT_THRESHOLD,
    detector_config: DetectorConfig | None = None,
) -> tuple[list[AnomalyDetected], int]:
    """Score the window's metrics with the series' detectors (learning as they go); returns anomalies and points."""
    tenant, scope, key, _service = series
    end = start + config.size_s
    anomalies, points = [], 0
    for metric in SCOPE_METRICS[scope]:
        value = getattr(summary, metric)
        if value is None:
            continue
        detector = detectors.get(metric)
        if detector is None:
            detector = detectors[metric] = SeriesDetector(detector_config or LIVE_DETECTOR)
        score = detector.score_one(end, float(value))
        points += 1
        if score.score < threshold:
            continue
        label, unit = METRICS[metric]
        name = f"{scope}:{key}:{metric}"
        anomalies.append(
            AnomalyDetected(
                event_id=deterministic_event_id("anomaly", *series, metric, repr(start)),
                occurred_at=_utc(end),
                tenant_id=tenant,
                workflow_id=workflow_of(series),
                payload=AnomalyPayload(
                    series=name[:256],
                    scope=scope,
                    key=key,
                    metric=metric,
                    value=float(value),
                    score=min(1.0, max(0.0, score.score)),
                    expected_low=score.expected_low,
                    expected_high=score.expected_high,
                    explanation=f"{scope} {key}: {explain(label, float(value), score, unit)}"[:1024],
                    window_start=_utc(start),
                ),
            )
        )
    return anomalies, points


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)
