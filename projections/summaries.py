"""Compact summaries of projected records, for the live stream (pure, no Kafka or HTTP).

A summary is a small JSON-ready dict: ``kind`` (the stream's event name),
``tenant_id``, ``workflow_id``, ``at`` (the record's ``occurred_at``, ISO 8601)
and a few fields of the payload. Records nobody watches live (definitions,
commands, heartbeats, rules, a step's start: its end carries its timing) have
no summary. Builders are chosen by type, since this runs for every projected
record while someone watches.

Kinds: ``run.started``, ``run.finished``, ``step.succeeded``, ``step.failed``,
``step.retry``, ``alert.fired``, ``alert.notified``,
``alert.resolved``, ``alert.acknowledged``, ``alert.silenced``,
``alert.unsilenced``, ``anomaly.detected``, ``session.opened``, ``session.updated``,
``optimization.analysed``, ``metric.window``.
"""

from collections.abc import Callable
from typing import Any

from schemas.envelope import Envelope

Summary = dict[str, Any]

_RUN_END = {"RunSucceeded": "succeeded", "RunFailed": "failed", "RunCancelled": "cancelled"}
_SESSION_TYPES = frozenset({"EvidenceAdded", "RootCauseRanked", "ResolutionProposed", "ResolutionApplied",
                            "ResolutionVerified", "ResolutionFailed", "SessionClosed"})  # fmt: skip


def summarize(record: Envelope) -> Summary | None:
    """The live summary of ``record``, or None when the stream does not carry its type."""
    make = _BUILDERS.get(record.type)
    return make(record) if make is not None else None


def _base(record: Envelope, kind: str) -> Summary:
    return {"kind": kind, "tenant_id": record.tenant_id, "workflow_id": record.workflow_id,
            "at": record.occurred_at.isoformat()}  # fmt: skip


def _run_started(record: Envelope) -> Summary:
    return {**_base(record, "run.started"), "run_id": record.run_id, "status": "running"}


def _run_finished(record: Envelope) -> Summary:
    p: Any = record.payload
    error = p.error if record.type == "RunFailed" else None
    return {
        **_base(record, "run.finished"), "run_id": record.run_id, "status": _RUN_END[record.type],
        "duration_ms": p.duration_ms if record.type != "RunCancelled" else None,
        "error": error.message if error is not None else None,
    }  # fmt: skip


def _step(record: Envelope, kind: str) -> Summary:
    p: Any = record.payload
    return {**_base(record, kind), "run_id": record.run_id, "step_id": record.step_id, "service": p.service,
            "attempt": p.attempt}  # fmt: skip


def _step_succeeded(record: Envelope) -> Summary:
    return {**_step(record, "step.succeeded"), "duration_ms": record.payload.duration_ms}


def _step_failed(record: Envelope) -> Summary:
    p: Any = record.payload
    return {**_step(record, "step.failed"), "duration_ms": p.duration_ms,
            "error": {"type": p.error.type, "message": p.error.message}}  # fmt: skip


def _step_retry(record: Envelope) -> Summary:
    p: Any = record.payload
    return {**_step(record, "step.retry"), "delay_s": p.delay_s, "reason": p.reason}


def _alert(record: Envelope, kind: str) -> Summary:
    p: Any = record.payload
    return {**_base(record, kind), "alert_id": p.alert_id, "rule": p.rule, "severity": p.severity, "value": p.value}


def _alert_notified(record: Envelope) -> Summary:
    p: Any = record.payload
    return {**_alert(record, "alert.notified"), "channel": p.channel, "delivered": p.delivered}


def _alert_acknowledged(record: Envelope) -> Summary:
    p: Any = record.payload
    return {**_base(record, "alert.acknowledged"), "alert_id": p.alert_id, "acknowledged_by": p.acknowledged_by}


def _silence(record: Envelope) -> Summary:
    p: Any = record.payload
    return {**_base(record, "alert.silenced"), "silence_id": p.silence_id, "matchers": dict(p.matchers),
            "ends_at": p.ends_at.isoformat()}  # fmt: skip


def _unsilence(record: Envelope) -> Summary:
    p: Any = record.payload
    return {**_base(record, "alert.unsilenced"), "silence_id": p.silence_id, "expired_by": p.expired_by}


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
    if record.type == "SessionOpened":
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
    "StepSucceeded": _step_succeeded,
    "StepFailed": _step_failed,
    "StepRetryScheduled": _step_retry,
    "AlertFired": lambda r: _alert(r, "alert.fired"),
    "AlertResolved": lambda r: _alert(r, "alert.resolved"),
    "AlertNotified": _alert_notified,
    "AlertAcknowledged": _alert_acknowledged,
    "SilenceCreated": _silence,
    "SilenceExpired": _unsilence,
    "AnomalyDetected": _anomaly,
    "SessionOpened": _session,
    **dict.fromkeys(_SESSION_TYPES, lambda r: _session(r, "session.updated")),
    "OptimizationAnalyzed": _optimization,
    "MetricWindowClosed": _window,
}
