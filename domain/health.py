"""Health scores (pure): one number from 0 to 100 per workflow, service or tenant, and why.

A subject's score starts at 100 and loses points to four components. Each
component can lose at most its weight, and the weights add up to 100, so the
score stays within 0-100 (it is also clamped, as a guard)::

    score = clamp(100 - success - latency - alerts - anomalies, 0, 100)

    success   (weight 40) = 40 * min(1, failure_rate / 0.25)
              failure_rate = failed / (succeeded + failed): finished runs for a
              workflow or the tenant, step attempts for a service. A quarter
              failing loses all 40 points; 1% failing loses 1.6.
    latency   (weight 20) = 20 * clamp((ratio - 1.2) / (3.0 - 1.2), 0, 1)
              ratio = p95 of the period / p95 of the baseline period. Up to
              1.2x loses nothing (noise); 3x or more loses all 20.
    alerts    (weight 25) = min(25, sum of points per alert firing at the end
              of the period): critical 25, high 15, medium 8, low 3.
    anomalies (weight 15) = 15 * min(1, anomaly_rate / 0.2)
              anomaly_rate = series-windows with at least one anomaly /
              series-windows closed in the period. One window in five
              anomalous loses all 15.

A component without data (no baseline, no closed windows) loses nothing and
says so. A subject with no finished run or attempt in the period has no score
(``None``) and a reason, since nothing shows it works; its other components
are still reported. Status: ``healthy`` from 90, ``degraded`` from 70,
``unhealthy`` below, ``unknown`` without a score.

>>> h = score(HealthInputs(scope="workflow", key="wf-1", unit="runs", succeeded=1203, failed=77))
>>> h.score, h.status, h.components[0].explanation
(90.4, 'healthy', '94.0% of runs succeeded (1,203 of 1,280)')
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["healthy", "degraded", "unhealthy", "unknown"]

SUCCESS_WEIGHT = 40.0
SUCCESS_FULL_LOSS_FAILURE_RATE = 0.25
"""Failure rate at which the success component has lost all its points."""

LATENCY_WEIGHT = 20.0
LATENCY_TOLERATED_RATIO = 1.2
"""p95 up to this multiple of the baseline p95 loses nothing."""
LATENCY_FULL_LOSS_RATIO = 3.0

ALERTS_WEIGHT = 25.0
ALERT_POINTS: Mapping[str, float] = {"critical": 25.0, "high": 15.0, "medium": 8.0, "low": 3.0}
"""Points one firing alert of a severity costs (an unknown severity costs as much as medium)."""

ANOMALY_WEIGHT = 15.0
ANOMALY_FULL_LOSS_RATE = 0.2
"""Share of anomalous series-windows at which the anomaly component has lost all its points."""

HEALTHY_FROM = 90.0
DEGRADED_FROM = 70.0

_SEVERITY_ORDER = ("critical", "high", "medium", "low")


@dataclass(frozen=True)
class HealthInputs:
    """What the period (and its baseline) showed for one subject."""

    scope: str
    """``system``, ``workflow`` or ``service``."""
    key: str
    unit: str = "runs"
    """What succeeded or failed: ``runs`` or ``calls`` (step attempts)."""
    succeeded: int = 0
    failed: int = 0
    p95_ms: float | None = None
    baseline_p95_ms: float | None = None
    firing_alerts: Mapping[str, int] = field(default_factory=dict)
    """Severity -> alerts firing at the end of the period."""
    anomalous_windows: int = 0
    windows: int = 0
    """Series-windows closed in the period (for the anomaly rate)."""


@dataclass(frozen=True)
class Component:
    name: str
    value: float | None
    """The measured quantity (a rate, a ratio, a count), None without data; rounded to 4 decimals."""
    weight: float
    points_lost: float
    """Rounded to 2 decimals; the score is 100 minus the sum of these."""
    explanation: str

    def __post_init__(self) -> None:
        if self.value is not None:
            object.__setattr__(self, "value", round(self.value, 4))
        object.__setattr__(self, "points_lost", round(self.points_lost, 2))


@dataclass(frozen=True)
class Health:
    scope: str
    key: str
    score: float | None
    status: Status
    reason: str | None
    """Why there is no score, when there is none."""
    components: tuple[Component, ...]


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def success_component(succeeded: int, failed: int, unit: str = "runs") -> Component:
    total = succeeded + failed
    if total == 0:
        return Component("success_rate", None, SUCCESS_WEIGHT, 0.0, f"no {unit} finished in the period")
    rate = succeeded / total
    lost = SUCCESS_WEIGHT * _clamp((1 - rate) / SUCCESS_FULL_LOSS_FAILURE_RATE, 0.0, 1.0)
    return Component(
        "success_rate", rate, SUCCESS_WEIGHT, lost, f"{_pct(rate)} of {unit} succeeded ({succeeded:,} of {total:,})"
    )


def latency_component(p95_ms: float | None, baseline_p95_ms: float | None) -> Component:
    if p95_ms is None:
        return Component("latency", None, LATENCY_WEIGHT, 0.0, "no durations in the period")
    if baseline_p95_ms is None or baseline_p95_ms <= 0:
        return Component("latency", None, LATENCY_WEIGHT, 0.0, f"p95 {p95_ms:,.0f} ms; no baseline to compare with")
    ratio = p95_ms / baseline_p95_ms
    span = LATENCY_FULL_LOSS_RATIO - LATENCY_TOLERATED_RATIO
    lost = LATENCY_WEIGHT * _clamp((ratio - LATENCY_TOLERATED_RATIO) / span, 0.0, 1.0)
    return Component(
        "latency", ratio, LATENCY_WEIGHT, lost,
        f"p95 {p95_ms:,.0f} ms is {ratio:.2f}x the baseline p95 {baseline_p95_ms:,.0f} ms",
    )  # fmt: skip


def alerts_component(firing: Mapping[str, int]) -> Component:
    counts = {severity: n for severity, n in firing.items() if n > 0}
    total = sum(counts.values())
    if total == 0:
        return Component("alerts", 0.0, ALERTS_WEIGHT, 0.0, "no alert firing")
    cost = sum(ALERT_POINTS.get(severity, ALERT_POINTS["medium"]) * n for severity, n in counts.items())
    order = sorted(counts, key=lambda s: (_SEVERITY_ORDER.index(s) if s in _SEVERITY_ORDER else 99, s))
    detail = ", ".join(f"{counts[s]} {s}" for s in order)
    noun = "alert" if total == 1 else "alerts"
    return Component(
        "alerts", float(total), ALERTS_WEIGHT, min(ALERTS_WEIGHT, cost), f"{total} {noun} firing ({detail})"
    )


def anomaly_component(anomalous_windows: int, windows: int) -> Component:
    windows = max(windows, anomalous_windows)
    if windows == 0:
        return Component("anomalies", None, ANOMALY_WEIGHT, 0.0, "no closed metric windows in the period")
    rate = anomalous_windows / windows
    lost = ANOMALY_WEIGHT * _clamp(rate / ANOMALY_FULL_LOSS_RATE, 0.0, 1.0)
    return Component(
        "anomalies", rate, ANOMALY_WEIGHT, lost,
        f"{_pct(rate)} of series-windows had an anomaly ({anomalous_windows:,} of {windows:,})",
    )  # fmt: skip


def status_of(value: float | None) -> Status:
    if value is None:
        return "unknown"
    if value >= HEALTHY_FROM:
        return "healthy"
    return "degraded" if value >= DEGRADED_FROM else "unhealthy"


def score(inputs: HealthInputs) -> Health:
    """The score of one subject, with every component and what it cost."""
    components = (
        success_component(inputs.succeeded, inputs.failed, inputs.unit),
        latency_component(inputs.p95_ms, inputs.baseline_p95_ms),
        alerts_component(inputs.firing_alerts),
        anomaly_component(inputs.anomalous_windows, inputs.windows),
    )
    if inputs.succeeded + inputs.failed == 0:
        reason = f"no {inputs.unit} finished in the period: nothing shows that it works"
        return Health(inputs.scope, inputs.key, None, "unknown", reason, components)
    value = round(_clamp(100.0 - sum(c.points_lost for c in components), 0.0, 100.0), 1)
    return Health(inputs.scope, inputs.key, value, status_of(value), None, components)


def alert_applies(labels: Mapping[str, str], scope: str, key: str) -> bool:
    """Whether an alert with these labels is about the subject (every alert is about the system).

    Alerts name their series with ``scope`` and ``key`` labels (a step's key is
    ``workflow/step``); ``workflow_id``/``workflow`` and ``service`` labels also count.
    """
    if scope == "system":
        return True
    label_scope, label_key = labels.get("scope", ""), labels.get("key", "")
    if scope == "workflow":
        named = key in (labels.get("workflow_id"), labels.get("workflow"))
        return named or series_applies(label_scope, label_key, scope, key)
    if scope == "service":
        return labels.get("service") == key or series_applies(label_scope, label_key, scope, key)
    return False


def series_applies(series_scope: str, series_key: str, scope: str, key: str) -> bool:
    """Whether a metric series (its scope and key) describes the subject: a workflow owns its steps' series."""
    if scope == "system":
        return True
    if scope == "workflow":
        return (series_scope == "workflow" and series_key == key) or (
            series_scope == "step" and series_key.startswith(f"{key}/")
        )
    return scope == "service" and series_scope == "service" and series_key == key
