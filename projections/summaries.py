"""Compact summaries of projected records, for the live stream (pure, no Kafka or HTTP).

A summary is a small JSON-ready dict: ``kind`` (the stream's event name),
``tenant_id``, ``workflow_id``, ``at`` (the record's ``occurred_at``, ISO 8601)
and a few fields of the payload. Records nobody watches live (definitions,
commands, heartbeats, rules) have no summary.

Kinds: ``run.started``, ``run.finished``, ``step.started``, ``step.succeeded``,
``step.failed``, ``step.retry``, ``alert.fired``, ``alert.notified``,
``alert.resolved``, ``alert.acknowledged``, ``alert.silenced``,
``anomaly.detected``, ``session.opened``, ``session.updated``,
``optimization.analysed``, ``metric.window``.
"""

from collections.abc import Callable
from typing import Any

from schemas.envelope import Envelope

Summary = dict[str, Any]

_RUN_END = {"RunSucceeded": "succeeded", "RunFailed": "failed", "RunCancelled": "cancelled"}
_STEP_KINDS = {"StepStarted": "step.started", "StepSucceeded": "step.succeeded", "StepFailed": "step.failed",
               "StepRetryScheduled": "step.retry"}  # fmt: skip
_ALERT_KINDS = {"AlertFired": "alert.fired", "AlertNotified": "alert.notified", "AlertResolved": "alert.resolved",
                "AlertAcknowledged": "alert.acknowledged"}  # fmt: skip
_SESSION_TYPES = frozenset({"EvidenceAdded", "RootCauseRanked", "ResolutionProposed", "ResolutionApplied",
                            "ResolutionVerified", "ResolutionFailed", "SessionClosed"})  # fmt: skip


def summarize(record: Envelope) -> Summary | None:
    """The live summary of ``record``, or None when the stream does not carry its type."""
    kind = record.type
    make = _BUILDERS.get(kind)
    if make is None:
        if kind in _SESSION_TYPES:
            return _session(record, "session.updated")
        return None
    return make(record)


def _base(record: Envelope, kind: str) -> Summary:
    return {"kind": kind, "tenant_id": record.tenant_id, "workflow_id": record.workflow_id,
            "at": record.occurred_at.isoformat()}  # fmt: skip


def _run_started(record: Envelope) -> Summary:
    return {**_base(record, "run.started"), "run_id": record.run_id, "status": "running"}


def _run_finished(record: Envelope) -> Summary:
    p: Any = record.payload
    error = getattr(p, "error", None)
    return {
        **_base(record, "run.finished"), "run_id": record.run_id, "status": _RUN_END[record.type],
        "duration_ms": getattr(p, "duration_ms", None), "error": error.message if error is not None else None,
    }  # fmt: skip


def _step(record: Envelope) -> Summary:
    p: Any = record.payload
    out = {**_base(record, _STEP_KINDS[record.type]), "run_id": record.run_id, "step_id": record.step_id,
           "service": p.service, "attempt": p.attempt}  # fmt: skip
    if hasattr(p, "duration_ms"):
        out["duration_ms"] = p.duration_ms
    if hasattr(p, "error"):
        out["error"] = {"type": p.error.type, "message": p.error.message}
    if hasattr(p, "delay_s"):
        out["delay_s"], out["reason"] = p.delay_s, p.reason
    return out


def _alert(record: Envelope) -> Summary:
    p: Any = record.payload
    out = {**_base(record, _ALERT_KINDS[record.type]), "alert_id": p.alert_id}
    for name in ("rule", "severity", "value", "channel", "delivered", "acknowledged_by"):
        if hasattr(p, name):
            out[name] = getattr(p, name)
    return out


def _silence(record: Envelope) -> Summary:
    p: Any = record.payload
    return {**_base(record, "alert.silenced"), "silence_id": p.silence_id, "matchers": dict(p.matchers),
            "ends_at": p.ends_at.isoformat()}  # fmt: skip


def _anomaly(record: Envelope) -> Summary:
    p: Any = record.payload
    return {
        **_base(record, "anomaly.detected"), "series": p.series, "scope": p.scope, "key": p.key, "metric": p.metric,
        "value": p.value, "score": p.score, "expected_low": p.expected_low, "expected_high": p.expected_high,
        "window_start": p.window_start.isoformat() if p.window_start else None,
    }  # fmt: skip


def _session(record: Envelope, kind: str = "session.opened") -> Summary:
    p: Any = record.payload
    out = {**_base(record, kind), "session_id": p.session_id, "type": record.type}
    if hasattr(p, "summary"):
        out["summary"] = p.summary
    return out


def _optimization(record: Envelope) -> Summary:
    p: Any = record.payload
    return {**_base(record, "optimization.analysed"), "strategy": p.strategy,
            "recommendations": len(p.recommendations)}  # fmt: skip


def _window(record: Envelope) -> Summary:
    p: Any = record.payload
    return {
        **_base(record, "metric.window"), "scope": p.scope, "key": p.key, "service": p.service,
        "window_start": p.window_start.isoformat(), "window_end": p.window_end.isoformat(), "count": p.count,
        "failures": p.failures, "error_rate": p.error_rate, "latency_p50_ms": p.latency_p50_ms,
        "latency_p95_ms": p.latency_p95_ms, "latency_p99_ms": p.latency_p99_ms,
        "throughput_per_s": p.throughput_per_s,
    }  # fmt: skip


_BUILDERS: dict[str, Callable[[Envelope], Summary]] = {
    "RunStarted": _run_started,
    **dict.fromkeys(_RUN_END, _run_finished),
    **dict.fromkeys(_STEP_KINDS, _step),
    **dict.fromkeys(_ALERT_KINDS, _alert),
    "SilenceCreated": _silence,
    "AnomalyDetected": _anomaly,
    "SessionOpened": _session,
    "OptimizationAnalyzed": _optimization,
    "MetricWindowClosed": _window,
}
