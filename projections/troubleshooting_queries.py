"""What troubleshooting reads from the projections: step attempts to rank causes over, and sessions.

Sessions are not a table of their own: their events (topic
``troubleshooting-sessions``) are in ``events`` like every other record, and a
session is read back by its ``session_id``, so replaying the log rebuilds them.
"""

from datetime import datetime
from typing import Any

import orjson

from domain.error_classifier import classify
from domain.rca import Attempt
from projections.warehouse import Warehouse
from schemas.troubleshooting import TROUBLESHOOTING_RECORDS

MAX_ATTEMPTS = 50_000
SESSION_TYPES = tuple(r.model_fields["type"].default for r in TROUBLESHOOTING_RECORDS)

SELECT_ATTEMPTS = """
SELECT s.workflow_id, s.run_id, s.step_id, s.service, s.credential_id, s.status, s.error_type, s.error_message,
       s.error_status_code, toFloat64(s.at) AS at, r.version, r.inputs
FROM (
    SELECT workflow_id, run_id, step_id, attempt, any(service) AS service, any(credential_id) AS credential_id,
           argMax(status, status_rank) AS status, argMax(error_type, status_rank) AS error_type,
           argMax(error_message, status_rank) AS error_message,
           argMax(error_status_code, status_rank) AS error_status_code, max(occurred_at) AS at
    FROM steps
    WHERE tenant_id = {tenant_id:String}
      AND occurred_at >= {start:DateTime64(3, 'UTC')} AND occurred_at < {end:DateTime64(3, 'UTC')}
    GROUP BY workflow_id, run_id, step_id, attempt
    HAVING status IN ('succeeded', 'failed')
) AS s
LEFT JOIN (
    SELECT run_id, any(JSONExtract(payload, 'definition_version', 'Nullable(UInt32)')) AS version,
           any(JSONExtractRaw(payload, 'inputs')) AS inputs
    FROM events
    WHERE tenant_id = {tenant_id:String} AND type = 'RunStarted'
      AND occurred_at >= {start:DateTime64(3, 'UTC')} - INTERVAL 1 DAY AND occurred_at < {end:DateTime64(3, 'UTC')}
    GROUP BY run_id
) AS r USING (run_id)
ORDER BY at
LIMIT {limit:UInt32}
"""


def attempts(wh: Warehouse, tenant_id: str, start: datetime, end: datetime) -> list[Attempt]:
    """The tenant's finished step attempts in ``[start, end)``, failures classified, oldest first."""
    rows = wh.query(SELECT_ATTEMPTS, {"tenant_id": tenant_id, "start": start, "end": end, "limit": MAX_ATTEMPTS})
    out = []
    for workflow, run, step, service, credential, status, error_type, message, code, at, version, inputs in rows:
        ok = status == "succeeded"
        error_class = None
        if not ok:
            error_class = classify(message, status_code=code, error_type=error_type or None).error_class
        out.append(Attempt(
            tenant_id, workflow, run, step, service, float(at), ok, error_class, code, message or "",
            credential or None, int(version) if version is not None else None, _inputs(inputs),
        ))  # fmt: skip
    return out


def _inputs(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


SELECT_SESSIONS = """
SELECT JSONExtractString(payload, 'session_id') AS session_id,
       any(workflow_id) AS workflow_id,
       min(occurred_at) AS opened_at,
       max(occurred_at) AS updated_at,
       argMinIf(JSONExtractString(payload, 'trigger'), occurred_at, type = 'SessionOpened') AS opened_by,
       argMinIf(JSONExtractString(payload, 'summary'), occurred_at, type = 'SessionOpened') AS summary,
       countIf(type = 'SessionClosed') > 0 AS closed,
       argMaxIf(payload, (occurred_at, JSONExtractUInt(payload, 'seq')), type = 'RootCauseRanked') AS ranked,
       countIf(type = 'ResolutionApplied') AS applied,
       countIf(type = 'ResolutionVerified') AS verified,
       countIf(type = 'ResolutionFailed') AS failed
FROM (SELECT * FROM events
      WHERE tenant_id = {tenant_id:String} AND type IN {types:Array(String)}
        AND ({workflow_id:String} = '' OR workflow_id = {workflow_id:String})
      LIMIT 1 BY event_id)
GROUP BY session_id
ORDER BY opened_at DESC
LIMIT {limit:UInt32}
"""

SELECT_TIMELINE = """
SELECT event_id, type, occurred_at, workflow_id, causation_id, payload
FROM events
WHERE tenant_id = {tenant_id:String} AND type IN {types:Array(String)}
  AND JSONExtractString(payload, 'session_id') = {session_id:String}
ORDER BY JSONExtractUInt(payload, 'seq'), occurred_at, partition, offset
LIMIT 1 BY event_id
"""
"""Session order: the events of one moment share a timestamp (and a batch shares an offset); ``seq`` orders them."""


def sessions(wh: Warehouse, tenant_id: str, workflow_id: str = "", limit: int = 50) -> list[dict[str, Any]]:
    """The tenant's sessions, newest first: status, what opened them, the top cause, resolution counts."""
    params = {"tenant_id": tenant_id, "types": list(SESSION_TYPES), "workflow_id": workflow_id, "limit": limit}
    out = []
    for row in wh.query_dicts(SELECT_SESSIONS, params):
        ranked = orjson.loads(row.pop("ranked")) if row["ranked"] else {}
        candidates = ranked.get("candidates") or []
        row["top_cause"] = candidates[0] if candidates else None
        row["status"] = "closed" if row.pop("closed") else "open"
        out.append(row)
    return out


def timeline(wh: Warehouse, tenant_id: str, session_id: str) -> list[dict[str, Any]]:
    """Every event of one session in order (empty when there is no such session)."""
    params = {"tenant_id": tenant_id, "types": list(SESSION_TYPES), "session_id": session_id}
    rows = wh.query_dicts(SELECT_TIMELINE, params)
    for row in rows:
        row["payload"] = orjson.loads(row["payload"])
        row["event_id"] = str(row["event_id"])
        row["causation_id"] = str(row["causation_id"]) if row["causation_id"] else None
    return rows


COUNT_OPEN_SESSIONS = """
SELECT count() AS open
FROM (
    SELECT tenant_id, JSONExtractString(payload, 'session_id') AS session_id
    FROM events
    WHERE type IN ('SessionOpened', 'SessionClosed')
    GROUP BY tenant_id, session_id
    HAVING countIf(type = 'SessionOpened') > 0 AND countIf(type = 'SessionClosed') = 0
)
"""


def count_open_sessions(wh: Warehouse) -> int:
    """Sessions of every tenant that were opened and not closed."""
    return int(wh.query(COUNT_OPEN_SESSIONS)[0][0])
