"""Typed query functions: each SQL constant sits beside the one function that runs it.

Every query takes server-side parameters (``{name:Type}``), never formatted
SQL. Reads are idempotent under duplicate rows: per-run reads deduplicate
with ``LIMIT 1 BY event_id``; list reads fold with min/max/argMax only.
"""

import base64
from datetime import UTC, datetime
from typing import Any

import orjson

from domain.patterns import StepOutcomes, Workflow
from projections.views import (
    AttemptView,
    DeadLetterView,
    DefinitionVersion,
    RetryView,
    RunPage,
    RunSummary,
    RunView,
    StepErrorView,
    StepView,
)
from projections.warehouse import Warehouse

_RUN_FOLD = """
    run_id,
    any(workflow_id) AS wf,
    argMax(status, (occurred_at, status_rank)) AS run_status,
    coalesce(min(started_at), min(occurred_at)) AS started,
    argMax(status_rank, (occurred_at, status_rank)) = 2 AS finished,
    if(finished, max(ended_at), NULL) AS ended,
    if(finished, coalesce(argMax(duration_ms, (occurred_at, status_rank)),
                          toFloat64(dateDiff('millisecond', started, max(ended_at)))), NULL) AS duration,
    max(definition_version) AS def_version,
    argMax(error_message, (occurred_at, status_rank)) AS last_error_message
"""

SELECT_RUN = f"""
SELECT {_RUN_FOLD}
FROM runs
WHERE tenant_id = {{tenant_id:String}} AND run_id = {{run_id:String}}
GROUP BY run_id
"""

SELECT_RUN_STEPS = """
SELECT
    step_id,
    argMax(service, (attempt, occurred_at)) AS service,
    argMax(action, (attempt, occurred_at)) AS action,
    argMax(status, (attempt, occurred_at, status_rank)) AS step_status,
    maxIf(attempt, status != 'retry_scheduled') AS attempts,
    min(occurred_at) AS first_started_at,
    max(occurred_at) AS last_event_at,
    argMaxIf(duration_ms, (attempt, occurred_at), duration_ms IS NOT NULL) AS last_duration_ms,
    sum(coalesce(duration_ms, 0)) AS total_duration_ms,
    sum(coalesce(cost, 0)) AS cost,
    argMaxIf(
        (error_type, error_message, error_status_code, retry_after_s),
        (attempt, occurred_at), error_type != ''
    ) AS last_error,
    argMaxIf(output, (attempt, occurred_at), status = 'succeeded') AS last_output,
    argMaxIf(due_at, (attempt, occurred_at), status = 'retry_scheduled') AS next_attempt_at,
    argMaxIf(reason, (attempt, occurred_at), reason != '') AS last_reason,
    argMaxIf(cached, (attempt, occurred_at), status = 'succeeded') AS last_cached,
    argMaxIf(params_digest, (attempt, occurred_at), params_digest != '') AS last_params_digest,
    argMax(fallback_for, (attempt, occurred_at)) AS last_fallback_for,
    groupArrayIf((attempt, due_at, reason), status = 'retry_scheduled') AS retries
FROM (
    SELECT * FROM steps
    WHERE tenant_id = {tenant_id:String} AND run_id = {run_id:String}
    LIMIT 1 BY event_id
)
GROUP BY step_id
ORDER BY first_started_at, step_id
"""


SELECT_RUN_ATTEMPTS = """
SELECT
    step_id,
    attempt,
    argMax(service, (occurred_at, status_rank)) AS service,
    argMax(status, (occurred_at, status_rank)) AS attempt_status,
    minIf(occurred_at, status = 'running') AS started,
    maxIf(occurred_at, status IN ('succeeded', 'failed', 'skipped')) AS ended,
    argMaxIf(duration_ms, occurred_at, duration_ms IS NOT NULL) AS duration,
    minIf(occurred_at, status = 'retry_scheduled') AS scheduled,
    argMaxIf(due_at, occurred_at, status = 'retry_scheduled') AS due,
    argMaxIf(error_message, occurred_at, error_message != '') AS error
FROM (
    SELECT * FROM steps
    WHERE tenant_id = {tenant_id:String} AND run_id = {run_id:String}
    LIMIT 1 BY event_id
)
GROUP BY step_id, attempt
ORDER BY step_id, attempt
"""


def get_run(wh: Warehouse, tenant_id: str, run_id: str) -> RunView | None:
    params = {"tenant_id": tenant_id, "run_id": run_id}
    rows = wh.query_dicts(SELECT_RUN, params)
    if not rows:
        return None
    attempts: dict[str, list[AttemptView]] = {}
    for row in wh.query_dicts(SELECT_RUN_ATTEMPTS, params):
        attempts.setdefault(row["step_id"], []).append(_attempt_view(row))
    steps = [
        _step_view(r).model_copy(update={"attempts_timeline": attempts.get(r["step_id"], [])})
        for r in wh.query_dicts(SELECT_RUN_STEPS, params)
    ]
    return RunView(**_summary_fields(rows[0]), steps=steps)


def _attempt_view(row: dict[str, Any]) -> AttemptView:
    def when(value: datetime | None) -> datetime | None:
        return _utc(value) if value is not None and value.year > 1970 else None

    return AttemptView(
        attempt=row["attempt"], service=row["service"], status=row["attempt_status"], started_at=when(row["started"]),
        ended_at=when(row["ended"]), duration_ms=row["duration"], scheduled_at=when(row["scheduled"]),
        due_at=when(row["due"]), error=row["error"] or None,
    )  # fmt: skip


SELECT_RUNS_BY_ID = f"""
SELECT {_RUN_FOLD}
FROM runs
WHERE tenant_id = {{tenant_id:String}} AND run_id IN {{run_ids:Array(String)}}
GROUP BY run_id
"""


SELECT_RECENT_RUNS = f"""
SELECT * FROM (
    SELECT {_RUN_FOLD}
    FROM runs
    WHERE tenant_id = {{tenant_id:String}}
      AND run_id IN (SELECT run_id FROM runs WHERE tenant_id = {{tenant_id:String}}
                     AND started_at >= {{since:DateTime64(3, 'UTC')}})
    GROUP BY run_id
)
ORDER BY started DESC, run_id DESC
LIMIT {{limit:UInt32}}
"""


def recent_runs(wh: Warehouse, tenant_id: str, *, since: datetime, limit: int) -> list[RunSummary]:
    """The tenant's runs started since ``since``, newest first."""
    rows = wh.query_dicts(SELECT_RECENT_RUNS, {"tenant_id": tenant_id, "since": since, "limit": limit})
    return [RunSummary(**_summary_fields(r)) for r in rows]


def get_run_summaries(wh: Warehouse, tenant_id: str, run_ids: list[str]) -> list[RunSummary]:
    """Summaries (no steps) of the given runs that exist; unknown ids are left out."""
    rows = wh.query_dicts(SELECT_RUNS_BY_ID, {"tenant_id": tenant_id, "run_ids": run_ids})
    return [RunSummary(**_summary_fields(r)) for r in rows]


SELECT_WORKFLOW_RUNS = f"""
SELECT * FROM (
    SELECT {_RUN_FOLD}
    FROM runs
    WHERE tenant_id = {{tenant_id:String}} AND workflow_id = {{workflow_id:String}}
    GROUP BY run_id
)
WHERE ({{status:String}} = '' OR run_status = {{status:String}})
  AND (started, run_id) < ({{before_started:DateTime64(3, 'UTC')}}, {{before_run_id:String}})
ORDER BY started DESC, run_id DESC
LIMIT {{limit:UInt32}}
"""

_FAR_FUTURE = datetime(2200, 1, 1, tzinfo=UTC)


def list_workflow_runs(
    wh: Warehouse,
    tenant_id: str,
    workflow_id: str,
    *,
    status: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> RunPage:
    """Newest runs first; ``cursor`` continues after the last run of a page."""
    before_started, before_run_id = decode_cursor(cursor) if cursor else (_FAR_FUTURE, "")
    rows = wh.query_dicts(
        SELECT_WORKFLOW_RUNS,
        {
            "tenant_id": tenant_id,
            "workflow_id": workflow_id,
            "status": status or "",
            "before_started": before_started,
            "before_run_id": before_run_id,
            "limit": limit + 1,
        },
    )
    runs = [RunSummary(**_summary_fields(r)) for r in rows[:limit]]
    more = len(rows) > limit
    return RunPage(runs=runs, next_cursor=encode_cursor(runs[-1]) if more and runs else None)


def encode_cursor(run: RunSummary) -> str:
    raw = orjson.dumps([run.started_at.isoformat(), run.run_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Raises ValueError on a cursor this module did not make."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        started, run_id = orjson.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(started), str(run_id)
    except Exception as exc:
        raise ValueError("invalid cursor") from exc


COUNT_TENANT_EVENTS = """
SELECT uniqExact(event_id) FROM events WHERE tenant_id = {tenant_id:String}
"""


def count_events(wh: Warehouse, tenant_id: str) -> int:
    return int(wh.query(COUNT_TENANT_EVENTS, {"tenant_id": tenant_id})[0][0])


SELECT_DEAD_LETTERS = """
SELECT source, tenant_id, reason, raw_preview, dead_lettered_at
FROM dead_letters FINAL
WHERE ({tenant_id:String} = '*' OR tenant_id = {tenant_id:String})
ORDER BY dead_lettered_at DESC, source DESC
LIMIT {limit:UInt32}
"""


def list_dead_letters(wh: Warehouse, tenant_id: str, limit: int = 100) -> list[DeadLetterView]:
    """Dead letters attributed to ``tenant_id``; ``'*'`` (operators) sees all."""
    rows = wh.query_dicts(SELECT_DEAD_LETTERS, {"tenant_id": tenant_id, "limit": limit})
    return [DeadLetterView(**{**r, "dead_lettered_at": _utc(r["dead_lettered_at"])}) for r in rows]


SELECT_LAST_HEARTBEATS = """
SELECT JSONExtractString(payload, 'worker') AS worker_id,
       max(occurred_at) AS last_seen,
       argMax(payload, occurred_at) AS last_payload
FROM events
WHERE tenant_id = 'system' AND workflow_id = 'all' AND type = 'WorkerHeartbeat'
GROUP BY worker_id
ORDER BY worker_id
"""


def last_heartbeats(wh: Warehouse) -> list[dict[str, Any]]:
    rows = wh.query_dicts(SELECT_LAST_HEARTBEATS)
    return [{**orjson.loads(r["last_payload"]), "last_seen": _utc(r["last_seen"])} for r in rows]


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _summary_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": row["run_id"],
        "workflow_id": row["wf"],
        "status": row["run_status"],
        "started_at": _utc(row["started"]),
        "ended_at": _utc(row["ended"]) if row["ended"] else None,
        "duration_ms": row["duration"],
        "definition_version": row["def_version"],
        "error_message": row["last_error_message"] or None,
    }


def _step_view(row: dict[str, Any]) -> StepView:
    err_type, err_message, err_status, retry_after = row["last_error"]
    error = (
        StepErrorView(type=err_type, message=err_message, status_code=err_status, retry_after_s=retry_after)
        if err_type
        else None
    )
    status = row["step_status"]
    return StepView(
        step_id=row["step_id"],
        service=row["service"],
        action=row["action"],
        status=status,
        attempts=row["attempts"],
        first_started_at=_utc(row["first_started_at"]),
        last_event_at=_utc(row["last_event_at"]),
        duration_ms=row["last_duration_ms"],
        total_duration_ms=row["total_duration_ms"],
        cost=row["cost"],
        last_error=error,
        output=orjson.loads(row["last_output"]) if row["last_output"] not in ("", "null") else None,
        next_attempt_at=_utc(row["next_attempt_at"])
        if status == "retry_scheduled" and row["next_attempt_at"]
        else None,
        skip_reason=row["last_reason"] if status == "skipped" else None,
        cached=bool(row["last_cached"]) if status == "succeeded" else False,
        params_digest=row["last_params_digest"] or None,
        fallback_for=row["last_fallback_for"] or None,
        retry_schedule=[
            RetryView(attempt=a, due_at=_utc(due), reason=reason) for a, due, reason in row["retries"] if due
        ],
    )


SELECT_WORKFLOW_DEFINITIONS = """
SELECT JSONExtractUInt(payload, 'version') AS version, occurred_at, payload
FROM events
WHERE tenant_id = {tenant_id:String} AND workflow_id = {workflow_id:String} AND run_id = ''
  AND type = 'WorkflowDefined'
ORDER BY version, occurred_at
LIMIT 1 BY event_id
"""


def workflow_definitions(wh: Warehouse, tenant_id: str, workflow_id: str) -> list[DefinitionVersion]:
    """Every defined version of a workflow, oldest first (the last one is current)."""
    rows = wh.query_dicts(SELECT_WORKFLOW_DEFINITIONS, {"tenant_id": tenant_id, "workflow_id": workflow_id})
    by_version: dict[int, DefinitionVersion] = {}
    for row in rows:
        payload = orjson.loads(row["payload"])
        by_version[row["version"]] = DefinitionVersion(
            version=row["version"], defined_at=_utc(row["occurred_at"]), definition=payload["definition"]
        )
    return [by_version[v] for v in sorted(by_version)]


SELECT_SERVICE_HISTORY = """
SELECT service, sum(uses) AS uses FROM (
    SELECT service, uniqExact(run_id) AS uses
    FROM steps
    WHERE tenant_id = {tenant_id:String}
    GROUP BY service
    UNION ALL
    SELECT service, count() AS uses
    FROM (
        SELECT arrayConcat(
            [JSONExtractString(payload, 'definition', 'trigger', 'service')],
            arrayMap(s -> JSONExtractString(s, 'service'), JSONExtractArrayRaw(payload, 'definition', 'steps'))
        ) AS services
        FROM events
        WHERE tenant_id = {tenant_id:String} AND run_id = '' AND type = 'WorkflowDefined'
        LIMIT 1 BY event_id
    )
    ARRAY JOIN services AS service
    GROUP BY service
)
WHERE service != ''
GROUP BY service
"""


def service_history(wh: Warehouse, tenant_id: str) -> dict[str, int]:
    """Service id -> how often the tenant used it: runs that called it plus workflow versions that name it."""
    return {str(service): int(uses) for service, uses in wh.query(SELECT_SERVICE_HISTORY, {"tenant_id": tenant_id})}


SELECT_CURRENT_DEFINITIONS = """
SELECT d.workflow_id, d.payload, r.runs
FROM (
    SELECT workflow_id, argMax(payload, JSONExtractUInt(payload, 'version')) AS payload
    FROM events
    WHERE tenant_id = {tenant_id:String} AND run_id = '' AND type = 'WorkflowDefined'
    GROUP BY workflow_id
) AS d
LEFT JOIN (
    SELECT workflow_id, uniqExact(run_id) AS runs FROM runs WHERE tenant_id = {tenant_id:String} GROUP BY workflow_id
) AS r USING (workflow_id)
"""

SELECT_STEP_OUTCOMES = """
SELECT service, action, count() AS attempts, countIf(status = 'failed') AS failed,
       uniqExact(workflow_id) AS workflows, topKIf(1)(error_type, status = 'failed') AS top_error
FROM (
    SELECT run_id, step_id, attempt, any(workflow_id) AS workflow_id, any(service) AS service, any(action) AS action,
           argMax(status, status_rank) AS status, argMax(error_type, status_rank) AS error_type
    FROM steps
    WHERE tenant_id = {tenant_id:String}
    GROUP BY run_id, step_id, attempt
)
WHERE status IN ('succeeded', 'failed')
GROUP BY service, action
"""


def current_definitions(wh: Warehouse, tenant_id: str) -> list[Workflow]:
    """Each of the tenant's workflows: its current definition and how many runs it had."""
    rows = wh.query(SELECT_CURRENT_DEFINITIONS, {"tenant_id": tenant_id})
    return [Workflow(str(wid), orjson.loads(payload)["definition"], int(runs or 0)) for wid, payload, runs in rows]


def step_outcomes(wh: Warehouse, tenant_id: str) -> list[StepOutcomes]:
    """Finished attempts per (service, action) in the tenant's runs, with the failed ones and their top error."""
    rows = wh.query(SELECT_STEP_OUTCOMES, {"tenant_id": tenant_id})
    return [
        StepOutcomes(str(service), str(action), int(attempts), int(failed), int(workflows), (top or [""])[0])
        for service, action, attempts, failed, workflows, top in rows
    ]
