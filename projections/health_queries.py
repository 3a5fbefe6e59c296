"""Aggregates behind health scores and insights, for one tenant and one time range.

Every query takes server-side parameters and reads idempotently: runs fold
per run with argMax (a duplicate row changes nothing), step attempts are
read with ``LIMIT 1 BY event_id``, windows and anomalies with ``FINAL``,
and an alert's state is the kind of its latest fired/resolved row.
A run belongs to the range in which it finished, with its state as of the
range's end (a run finished, resumed and finished again later counts as it was
then); its duration, when the run did not report one, is measured from a
start at most a day earlier. A step attempt belongs to the range in which it
ended.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.health import HealthInputs, alert_applies, series_applies
from domain.insights import StepErrors, StepTime, StepVersionLatency
from projections.warehouse import Warehouse

RUN_STATS = """
SELECT if(grouping(wf) = 1, '*', wf) AS subject,
       countIf(st = 'succeeded') AS succeeded, countIf(st = 'failed') AS failed,
       countIf(st = 'cancelled') AS cancelled,
       quantileExactIf(0.95)(dur, dur IS NOT NULL) AS p95_ms, countIf(dur IS NOT NULL) AS durations
FROM (
    SELECT run_id, any(workflow_id) AS wf,
           argMaxIf(status, occurred_at, status_rank = 2) AS st,
           maxIf(occurred_at, status_rank = 2) AS ended,
           coalesce(argMaxIf(duration_ms, occurred_at, status_rank = 2),
                    toFloat64(dateDiff('millisecond', min(started_at), ended))) AS dur
    FROM runs
    WHERE tenant_id = {tenant:String} AND ({workflow:String} = '' OR workflow_id = {workflow:String})
      AND occurred_at >= {start:DateTime64(3, 'UTC')} - INTERVAL 1 DAY AND occurred_at < {end:DateTime64(3, 'UTC')}
    GROUP BY run_id
    HAVING countIf(status_rank = 2) > 0
       AND ended >= {start:DateTime64(3, 'UTC')} AND ended < {end:DateTime64(3, 'UTC')}
)
GROUP BY ROLLUP(wf)
"""

_ATTEMPTS = """
    SELECT * FROM steps
    WHERE tenant_id = {tenant:String} AND status IN ('succeeded', 'failed')
      AND occurred_at >= {start:DateTime64(3, 'UTC')} AND occurred_at < {end:DateTime64(3, 'UTC')}
      AND ({workflow:String} = '' OR workflow_id = {workflow:String})
    LIMIT 1 BY event_id
"""

_SERVICE_STATS = """
SELECT service, countIf(status = 'succeeded') AS succeeded, countIf(status = 'failed') AS failed,
       countIf(error_status_code = 429) AS rate_limited,
       quantileExactIf(0.95)(duration_ms, duration_ms IS NOT NULL) AS p95_ms,
       countIf(duration_ms IS NOT NULL) AS durations
FROM ({attempts})
WHERE ({{service:String}} = '' OR service = {{service:String}})
GROUP BY service
ORDER BY service
"""
SERVICE_STATS = _SERVICE_STATS.format(attempts=_ATTEMPTS)

_STEP_VERSION_LATENCY = """
SELECT a.workflow_id AS workflow_id, a.step_id AS step_id, v.version AS version, count() AS attempts,
       quantileExact(0.95)(a.duration_ms) AS p95_ms, min(a.occurred_at) AS first_at, max(a.occurred_at) AS last_at
FROM ({attempts}) AS a
INNER JOIN (
    SELECT run_id, max(definition_version) AS version
    FROM runs
    WHERE tenant_id = {{tenant:String}} AND definition_version IS NOT NULL
      AND ({{workflow:String}} = '' OR workflow_id = {{workflow:String}})
      AND run_id IN (SELECT run_id FROM ({attempts}))
    GROUP BY run_id
) AS v ON a.run_id = v.run_id
WHERE a.duration_ms IS NOT NULL
GROUP BY workflow_id, step_id, version
ORDER BY workflow_id, step_id, version
"""
STEP_VERSION_LATENCY = _STEP_VERSION_LATENCY.format(attempts=_ATTEMPTS)

_STEP_ERRORS = """
SELECT t.workflow_id AS workflow_id, t.step_id AS step_id, t.step_service AS service, e.error_type AS error_type,
       e.status_code AS status_code, e.failures AS failures, t.attempts AS attempts, e.example AS example
FROM (
    SELECT workflow_id, step_id, any(service) AS step_service, count() AS attempts
    FROM ({attempts})
    GROUP BY workflow_id, step_id
) AS t
INNER JOIN (
    SELECT workflow_id, step_id, error_type, error_status_code AS status_code, count() AS failures,
           any(error_message) AS example
    FROM ({attempts})
    WHERE status = 'failed'
    GROUP BY workflow_id, step_id, error_type, status_code
) AS e ON t.workflow_id = e.workflow_id AND t.step_id = e.step_id
ORDER BY workflow_id, step_id, failures DESC, error_type
"""
STEP_ERRORS = _STEP_ERRORS.format(attempts=_ATTEMPTS)

_STEP_TIME = """
SELECT workflow_id, step_id, any(run_service) AS service, count() AS runs, countIf(attempts > 1) AS runs_retried,
       sum(step_ms) AS total_ms, quantileExact(0.95)(step_ms) AS p95_ms
FROM (
    SELECT workflow_id, step_id, run_id, any(service) AS run_service, max(attempt) AS attempts,
           sum(coalesce(duration_ms, 0)) AS step_ms
    FROM ({attempts})
    GROUP BY workflow_id, step_id, run_id
)
GROUP BY workflow_id, step_id
ORDER BY workflow_id, step_id
"""
STEP_TIME = _STEP_TIME.format(attempts=_ATTEMPTS)

FIRING_ALERTS = """
SELECT alert_id, rule, severity, labels, since
FROM (
    SELECT alert_id, argMax(kind, (occurred_at, kind = 'resolved')) AS state,
           argMax(rule, occurred_at) AS rule, argMax(severity, occurred_at) AS severity,
           argMax(labels, occurred_at) AS labels, argMaxIf(occurred_at, occurred_at, kind = 'fired') AS since
    FROM alert_events
    WHERE tenant_id = {tenant:String} AND kind IN ('fired', 'resolved') AND occurred_at < {end:DateTime64(3, 'UTC')}
    GROUP BY alert_id
)
WHERE state = 'fired'
ORDER BY since, alert_id
"""

WINDOW_COUNTS = """
SELECT scope, key, count() AS windows
FROM metric_windows FINAL
WHERE tenant_id = {tenant:String} AND window_s = {window_s:UInt32}
  AND window_start >= {start:DateTime64(3, 'UTC')} AND window_start < {end:DateTime64(3, 'UTC')}
GROUP BY scope, key
"""

ANOMALY_COUNTS = """
SELECT scope, key, count() AS anomalies, uniqExact(coalesce(window_start, detected_at)) AS anomalous_windows
FROM anomalies FINAL
WHERE tenant_id = {tenant:String}
  AND detected_at >= {start:DateTime64(3, 'UTC')} AND detected_at < {end:DateTime64(3, 'UTC')}
GROUP BY scope, key
"""


@dataclass(frozen=True)
class OutcomeStats:
    """Finished runs (or step attempts) of one subject in a range."""

    succeeded: int
    failed: int
    p95_ms: float | None
    cancelled: int = 0
    rate_limited: int = 0


@dataclass(frozen=True)
class FiringAlert:
    alert_id: str
    rule: str
    severity: str
    labels: Mapping[str, str]
    since: datetime


@dataclass(frozen=True)
class SeriesWindows:
    """Closed windows and anomalous windows of one metric series (scope, key) in a range."""

    scope: str
    key: str
    windows: int
    anomalous_windows: int
    anomalies: int


def _params(tenant: str, start: datetime, end: datetime, **extra: Any) -> dict[str, Any]:
    return {"tenant": tenant, "start": start, "end": end, "workflow": "", **extra}


def _p95(value: Any, durations: int) -> float | None:
    return float(value) if durations and value == value else None


def run_stats(
    wh: Warehouse, tenant: str, *, start: datetime, end: datetime, workflow: str = ""
) -> dict[str, OutcomeStats]:
    """Workflow id -> finished runs in the range; ``'*'`` is every workflow together."""
    rows = wh.query_dicts(RUN_STATS, _params(tenant, start, end, workflow=workflow))
    out = {
        r["subject"]: OutcomeStats(
            succeeded=int(r["succeeded"]), failed=int(r["failed"]), cancelled=int(r["cancelled"]),
            p95_ms=_p95(r["p95_ms"], int(r["durations"])),
        )
        for r in rows
    }  # fmt: skip
    return out


def service_stats(
    wh: Warehouse, tenant: str, *, start: datetime, end: datetime, service: str = "", workflow: str = ""
) -> dict[str, OutcomeStats]:
    """Service -> finished step attempts (calls) in the range."""
    rows = wh.query_dicts(SERVICE_STATS, _params(tenant, start, end, service=service, workflow=workflow))
    return {
        r["service"]: OutcomeStats(
            succeeded=int(r["succeeded"]), failed=int(r["failed"]), rate_limited=int(r["rate_limited"]),
            p95_ms=_p95(r["p95_ms"], int(r["durations"])),
        )
        for r in rows
    }  # fmt: skip


def firing_alerts(wh: Warehouse, tenant: str, *, end: datetime) -> list[FiringAlert]:
    """Alerts whose latest fired/resolved row before ``end`` is 'fired'."""
    rows = wh.query_dicts(FIRING_ALERTS, {"tenant": tenant, "end": end})
    return [FiringAlert(r["alert_id"], r["rule"], r["severity"], dict(r["labels"]), _utc(r["since"])) for r in rows]


def series_windows(
    wh: Warehouse, tenant: str, *, start: datetime, end: datetime, window_s: float
) -> list[SeriesWindows]:
    """Every metric series with closed windows or anomalies in the range."""
    params = {"tenant": tenant, "start": start, "end": end, "window_s": int(window_s)}
    series: dict[tuple[str, str], list[int]] = {}
    for r in wh.query_dicts(WINDOW_COUNTS, params):
        series.setdefault((r["scope"], r["key"]), [0, 0, 0])[0] = int(r["windows"])
    for r in wh.query_dicts(ANOMALY_COUNTS, params):
        counts = series.setdefault((r["scope"], r["key"]), [0, 0, 0])
        counts[1], counts[2] = int(r["anomalous_windows"]), int(r["anomalies"])
    return [SeriesWindows(scope, key, *counts) for (scope, key), counts in sorted(series.items())]


def step_version_latency(
    wh: Warehouse, tenant: str, *, start: datetime, end: datetime, workflow: str = ""
) -> list[StepVersionLatency]:
    rows = wh.query_dicts(STEP_VERSION_LATENCY, _params(tenant, start, end, workflow=workflow))
    return [
        StepVersionLatency(
            workflow_id=r["workflow_id"], step_id=r["step_id"], version=int(r["version"]),
            attempts=int(r["attempts"]), p95_ms=float(r["p95_ms"]),
            first_at=_utc(r["first_at"]).isoformat(), last_at=_utc(r["last_at"]).isoformat(),
        )
        for r in rows
    ]  # fmt: skip


def step_errors(wh: Warehouse, tenant: str, *, start: datetime, end: datetime, workflow: str = "") -> list[StepErrors]:
    rows = wh.query_dicts(STEP_ERRORS, _params(tenant, start, end, workflow=workflow))
    return [
        StepErrors(
            workflow_id=r["workflow_id"], step_id=r["step_id"], service=r["service"], error_type=r["error_type"],
            status_code=r["status_code"], failures=int(r["failures"]), attempts=int(r["attempts"]),
            example=r["example"],
        )
        for r in rows
    ]  # fmt: skip


def step_time(wh: Warehouse, tenant: str, *, start: datetime, end: datetime, workflow: str = "") -> list[StepTime]:
    rows = wh.query_dicts(STEP_TIME, _params(tenant, start, end, workflow=workflow))
    return [
        StepTime(
            workflow_id=r["workflow_id"], step_id=r["step_id"], service=r["service"], runs=int(r["runs"]),
            runs_retried=int(r["runs_retried"]), total_ms=float(r["total_ms"]),
            p95_ms=_p95(r["p95_ms"], int(r["runs"])),
        )
        for r in rows
    ]  # fmt: skip


def health_inputs(
    wh: Warehouse,
    tenant: str,
    *,
    scope: str,
    key: str,
    start: datetime,
    end: datetime,
    baseline_start: datetime,
    baseline_end: datetime,
    window_s: float,
) -> list[tuple[HealthInputs, list[FiringAlert]]]:
    """What the score of each subject of ``scope`` needs (one subject if ``key``), with its firing alerts.

    ``system`` is the tenant (key ``*``): its runs, every alert and every series. Without
    a key, the subjects are those with runs (calls for services) in the period or its
    baseline, a firing alert or a metric series.
    """
    if scope == "service":
        current = service_stats(wh, tenant, start=start, end=end, service=key)
        baseline = service_stats(wh, tenant, start=baseline_start, end=baseline_end, service=key)
        unit = "calls"
    else:
        workflow = key if scope == "workflow" else ""
        current = run_stats(wh, tenant, start=start, end=end, workflow=workflow)
        baseline = run_stats(wh, tenant, start=baseline_start, end=baseline_end, workflow=workflow)
        unit = "runs"
    alerts = firing_alerts(wh, tenant, end=end)
    series = series_windows(wh, tenant, start=start, end=end, window_s=window_s)
    if scope == "system":
        keys = {"*"}
    elif key:
        keys = {key}
    else:
        keys = ({*current, *baseline} - {"*"}) | _keys_named(scope, alerts, series)
    out = []
    for subject in sorted(keys):
        now, before = current.get(subject), baseline.get(subject)
        mine = [a for a in alerts if alert_applies(a.labels, scope, subject)]
        windows = [w for w in series if series_applies(w.scope, w.key, scope, subject)]
        severities: dict[str, int] = {}
        for alert in mine:
            severities[alert.severity] = severities.get(alert.severity, 0) + 1
        inputs = HealthInputs(
            scope=scope, key=subject, unit=unit,
            succeeded=now.succeeded if now else 0, failed=now.failed if now else 0,
            p95_ms=now.p95_ms if now else None, baseline_p95_ms=before.p95_ms if before else None,
            firing_alerts=severities,
            anomalous_windows=sum(w.anomalous_windows for w in windows), windows=sum(w.windows for w in windows),
        )  # fmt: skip
        out.append((inputs, mine))
    return out


def _keys_named(scope: str, alerts: list[FiringAlert], series: list[SeriesWindows]) -> set[str]:
    """Subjects of ``scope`` that firing alerts or metric series name."""
    keys: set[str] = set()
    for alert in alerts:
        labels = alert.labels
        if scope == "workflow":
            named = labels.get("workflow_id") or labels.get("workflow")
            if not named and labels.get("scope") in ("workflow", "step"):
                named = labels.get("key", "").split("/")[0]
        else:
            named = labels.get("service") or (labels.get("key") if labels.get("scope") == "service" else None)
        if named:
            keys.add(named)
    for w in series:
        if scope == "workflow" and w.scope in ("workflow", "step"):
            keys.add(w.key.split("/")[0])
        elif scope == "service" and w.scope == "service":
            keys.add(w.key)
    return keys


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
