"""What optimization reads from the projections: a workflow's recorded runs, services' history, results.

Runs come back as ``domain.whatif.RecordedRun``: each step's first and last
event times relative to the run's start, its attempts, its failures
classified (``domain.error_classifier``) and, for steps our executor ran, the
digest of the parameters it called with. A step whose events carry no
price (the executor's do not) costs the catalog's price per call times its
calls; the analysis's ``cost_source`` says which.

Results are ``OptimizationAnalyzed`` events, read from ``events`` like the
other records, so a replay of the log rebuilds them.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from domain.catalog import Catalog
from domain.error_classifier import classify
from domain.error_rules import TRANSIENT
from domain.whatif import RecordedRun, Resample, StepTimes, record
from projections.warehouse import Warehouse

SELECT_RECENT_RUNS = """
SELECT run_id, toFloat64(started) AS started_s, run_status, duration FROM (
    SELECT run_id,
           argMax(status, (occurred_at, status_rank)) AS run_status,
           coalesce(min(started_at), min(occurred_at)) AS started,
           argMax(status_rank, (occurred_at, status_rank)) = 2 AS finished,
           if(finished, coalesce(argMax(duration_ms, (occurred_at, status_rank)),
                                 toFloat64(dateDiff('millisecond', started, max(ended_at)))), NULL) AS duration,
           max(definition_version) AS version
    FROM runs
    WHERE tenant_id = {tenant_id:String} AND workflow_id = {workflow_id:String}
    GROUP BY run_id
)
WHERE finished AND run_status IN ('succeeded', 'failed') AND version = {version:UInt32}
ORDER BY started DESC
LIMIT {limit:UInt32}
"""

SELECT_RUN_STEP_TIMES = """
SELECT run_id, step_id,
       argMax(service, (attempt, occurred_at)) AS service,
       argMax(action, (attempt, occurred_at)) AS action,
       argMax(status, (attempt, occurred_at, status_rank)) AS step_status,
       maxIf(attempt, status IN ('succeeded', 'failed')) AS attempts,
       toFloat64(min(occurred_at)) AS first_s,
       toFloat64(max(occurred_at)) AS last_s,
       sum(coalesce(cost, 0)) AS total_cost,
       countIf(cost IS NOT NULL) AS priced,
       groupArrayIf((error_type, error_message, error_status_code), status = 'failed') AS errors,
       maxIf(retry_after_s, retry_after_s IS NOT NULL) AS retry_after,
       argMaxIf(params_digest, (attempt, occurred_at), params_digest != '') AS digest,
       max(cached) AS was_cached
FROM (
    SELECT * FROM steps
    WHERE tenant_id = {tenant_id:String} AND run_id IN {run_ids:Array(String)}
    LIMIT 1 BY event_id
)
GROUP BY run_id, step_id
"""


def recorded_runs(
    wh: Warehouse, tenant_id: str, workflow_id: str, version: int, dependencies: Mapping[str, frozenset[str]],
    catalog: Catalog, *, limit: int = 200,
) -> list[RecordedRun]:  # fmt: skip
    """The last ``limit`` finished runs of ``version`` of the workflow, oldest first."""
    params = {"tenant_id": tenant_id, "workflow_id": workflow_id, "version": version, "limit": limit}
    runs = wh.query(SELECT_RECENT_RUNS, params)
    if not runs:
        return []
    by_run: dict[str, list[StepTimes]] = {}
    starts = {run_id: float(started) for run_id, started, _s, _d in runs}
    rows = wh.query(SELECT_RUN_STEP_TIMES, {"tenant_id": tenant_id, "run_ids": list(starts)})
    for (run_id, step_id, service, action, status, attempts, first_s, last_s, cost, priced, errors, after, digest,
         was_cached) in rows:  # fmt: skip
        if status not in ("succeeded", "failed", "skipped"):
            continue
        classes = [classify(m, status_code=c, error_type=t or None).error_class for t, m, c in errors]
        price = catalog.services[service].cost_usd if service in catalog.services else 0.0
        start = starts[run_id]
        by_run.setdefault(run_id, []).append(StepTimes(
            step_id, service, action, status, (float(first_s) - start) * 1000, (float(last_s) - start) * 1000,
            attempts=int(attempts or 0), cost=float(cost) if priced else price * int(attempts or 0), priced=priced > 0,
            error_class=classes[-1] if classes else None,
            transient_failures=sum(c in TRANSIENT for c in classes),
            retry_after_s=float(after) if after else None, params_digest=digest or None, cached=bool(was_cached),
        ))  # fmt: skip
    recorded = [
        record(run_id, float(started), status, float(duration or 0.0), by_run.get(run_id, []), dependencies)
        for run_id, started, status, duration in runs
    ]
    return sorted(recorded, key=lambda r: r.started_s)


SELECT_SERVICE_CALLS = """
SELECT service, groupArray(500)(duration_ms) AS spans,
       countIf(status = 'succeeded') AS ok, countIf(status = 'failed') AS failed
FROM (
    SELECT service, status, duration_ms FROM steps
    WHERE tenant_id = {tenant_id:String} AND status IN ('succeeded', 'failed')
      AND occurred_at >= {since:DateTime64(3, 'UTC')}
    ORDER BY occurred_at DESC
    LIMIT 1 BY event_id
)
GROUP BY service
"""


def service_history(wh: Warehouse, tenant_id: str, since: datetime, catalog: Catalog) -> Resample:
    """Per service, the tenant's recent call durations and success rate; catalog latency and price besides."""
    resample = Resample(default_span_ms={s.id: s.latency_ms for s in catalog}, cost={s.id: s.cost_usd for s in catalog})
    for service, spans, ok, failed in wh.query(SELECT_SERVICE_CALLS, {"tenant_id": tenant_id, "since": since}):
        durations = [float(d) for d in spans if d is not None]
        if durations:
            resample.spans_ms[service] = durations
        if ok + failed:
            resample.success_rate[service] = ok / (ok + failed)
    return resample


SELECT_RESULTS = """
SELECT event_id, workflow_id, occurred_at, payload FROM events
WHERE tenant_id = {tenant_id:String} AND type = 'OptimizationAnalyzed'
  AND ({workflow_id:String} = '' OR workflow_id = {workflow_id:String})
ORDER BY occurred_at DESC, event_id
LIMIT 1 BY event_id
LIMIT {limit:UInt32}
"""


def results(wh: Warehouse, tenant_id: str, workflow_id: str = "", limit: int = 20) -> list[dict[str, Any]]:
    """Analyses, latest first: each with its id, workflow, time, recommendations and prediction."""
    rows = wh.query(SELECT_RESULTS, {"tenant_id": tenant_id, "workflow_id": workflow_id, "limit": limit})
    return [
        {"analysis_id": str(event_id), "workflow_id": workflow_id_, "analyzed_at": at.isoformat(),
         **orjson.loads(payload)}
        for event_id, workflow_id_, at, payload in rows
    ]  # fmt: skip


def result(wh: Warehouse, tenant_id: str, analysis_id: str) -> dict[str, Any] | None:
    rows = wh.query(
        "SELECT workflow_id, occurred_at, payload FROM events WHERE tenant_id = {tenant_id:String} "
        "AND type = 'OptimizationAnalyzed' AND event_id = toUUIDOrZero({analysis_id:String}) LIMIT 1",
        {"tenant_id": tenant_id, "analysis_id": analysis_id},
    )
    if not rows:
        return None
    workflow_id, at, payload = rows[0]
    return {"analysis_id": analysis_id, "workflow_id": workflow_id, "analyzed_at": at.isoformat(),
            **orjson.loads(payload)}  # fmt: skip


SELECT_ACTIVE_WORKFLOWS = """
SELECT DISTINCT workflow_id FROM runs
WHERE tenant_id = {tenant_id:String} AND occurred_at >= {since:DateTime64(3, 'UTC')} AND status_rank = 2
ORDER BY workflow_id
"""


def active_workflows(wh: Warehouse, tenant_id: str, since: datetime) -> list[str]:
    """Workflows with a run that ended since ``since``."""
    return [str(w) for (w,) in wh.query(SELECT_ACTIVE_WORKFLOWS, {"tenant_id": tenant_id, "since": since})]
