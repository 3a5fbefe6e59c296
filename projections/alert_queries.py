"""Reads of alert rules, silences, and the stored step and run results a backtest replays."""

import fnmatch
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from domain.windows import Observation, observations
from projections.warehouse import Warehouse
from schemas.registry import validate_item

SELECT_RULES = """
SELECT name, argMax(version, (occurred_at, event_id)) AS version, argMax(deleted, (occurred_at, event_id)) AS deleted,
       argMax(spec, (occurred_at, event_id)) AS spec, max(occurred_at) AS updated_at,
       max(alert_rules.version) AS last_version
FROM alert_rules
WHERE tenant_id = {tenant:String}
GROUP BY name
ORDER BY name
"""

SELECT_SILENCES = """
SELECT silence_id, the_matchers AS matchers, starts AS starts_at,
       if(expired_at IS NULL, planned_end, least(planned_end, expired_at)) AS ends_at,
       note AS comment, author AS created_by, expired_at, expirer AS expired_by
FROM (
    SELECT silence_id,
           anyIf(matchers, expired = 0) AS the_matchers, anyIf(starts_at, expired = 0) AS starts,
           anyIf(ends_at, expired = 0) AS planned_end, anyIf(comment, expired = 0) AS note,
           anyIf(created_by, expired = 0) AS author,
           if(countIf(expired = 1) > 0, minIf(ends_at, expired = 1), NULL) AS expired_at,
           argMinIf(created_by, ends_at, expired = 1) AS expirer
    FROM silences FINAL
    WHERE tenant_id = {tenant:String} AND ({silence_id:String} = '' OR silence_id = {silence_id:String})
    GROUP BY silence_id
    HAVING countIf(expired = 0) > 0
)
WHERE ends_at > {since:DateTime64(3, 'UTC')}
ORDER BY starts_at DESC, silence_id
"""

SELECT_ROUTES = """
SELECT payload, occurred_at
FROM events
WHERE tenant_id = {tenant:String} AND type = 'AlertRoutesDefined'
ORDER BY occurred_at DESC, event_id DESC
LIMIT 1
"""

REPLAYED_METRICS = frozenset({"latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "error_rate", "throughput_per_s",
                              "count", "failures", "cost_sum"})  # fmt: skip
"""Metrics a backtest rebuilds from stored step and run events (anomaly scores are not rebuilt)."""

SELECT_RESULTS = """
SELECT toString(event_id) AS event_id, type, schema_version, occurred_at, workflow_id, run_id, step_id, payload
FROM events
WHERE tenant_id = {tenant:String} AND type IN {types:Array(String)}
  AND occurred_at >= {start:DateTime64(3, 'UTC')} AND occurred_at < {end:DateTime64(3, 'UTC')}
LIMIT 1 BY event_id
LIMIT {limit:UInt64}
"""
SCOPE_TYPES = {
    "step": ["StepSucceeded", "StepFailed"],
    "service": ["StepSucceeded", "StepFailed"],
    "workflow": ["RunSucceeded", "RunFailed"],
    "tenant": ["RunSucceeded", "RunFailed"],
}
MAX_REPLAYED_EVENTS = 2_000_000


class TooManyEvents(ValueError):
    """The range holds more events than a backtest replays at once."""


def stored_observations(
    wh: Warehouse, tenant: str, *, scope: str, match: str, start: datetime, end: datetime
) -> list[Observation]:
    """What the stored step or run results of ``[start, end)`` observe for series of ``scope`` matching ``match``.

    Each row is validated as the event it was and goes through the live
    agents' ``observations``, so a backtest sees the values the agents saw.
    """
    params = {"tenant": tenant, "types": SCOPE_TYPES[scope], "start": start, "end": end,
              "limit": MAX_REPLAYED_EVENTS + 1}  # fmt: skip
    rows = wh.query_dicts(SELECT_RESULTS, params)
    if len(rows) > MAX_REPLAYED_EVENTS:
        raise TooManyEvents(f"more than {MAX_REPLAYED_EVENTS:,} events in the range; backtest a shorter one")
    found: list[Observation] = []
    for row in rows:
        record = validate_item({
            **row, "tenant_id": tenant, "occurred_at": _utc(row["occurred_at"]),
            "run_id": row["run_id"] or None, "step_id": row["step_id"] or None,
            "payload": orjson.loads(row["payload"]),
        })  # fmt: skip
        if isinstance(record, str):
            continue  # the projector stored only valid events; an old shape without an upcaster is skipped
        found += [o for o in observations(record) if o.series[1] == scope and fnmatch.fnmatchcase(o.series[2], match)]
    return found


def rules(wh: Warehouse, tenant: str) -> list[dict[str, Any]]:
    """Every rule name the tenant ever defined, as its last event left it: name, version, deleted, spec (None
    once deleted), updated_at, and last_version (the highest version it had: a redefinition after a deletion
    counts on from there)."""
    return [
        {
            "name": r["name"],
            "version": int(r["version"]),
            "deleted": bool(r["deleted"]),
            "spec": None if r["deleted"] else orjson.loads(r["spec"]),
            "updated_at": _utc(r["updated_at"]),
            "last_version": int(r["last_version"]),
        }
        for r in wh.query_dicts(SELECT_RULES, {"tenant": tenant})
    ]


def silences(wh: Warehouse, tenant: str, *, ending_after: datetime, silence_id: str = "") -> list[dict[str, Any]]:
    """Silences (or the one ``silence_id``) that end after ``ending_after``, newest first; one expired by hand
    ends when it was expired."""
    params = {"tenant": tenant, "since": ending_after, "silence_id": silence_id}
    rows = wh.query_dicts(SELECT_SILENCES, params)
    return [
        {**r, "starts_at": _utc(r["starts_at"]), "ends_at": _utc(r["ends_at"]),
         "expired_at": _utc(r["expired_at"]) if r["expired_at"] is not None else None}
        for r in rows
    ]  # fmt: skip


def current_routes(wh: Warehouse, tenant: str) -> dict[str, Any] | None:
    """The tenant's latest routes (``routes``, ``version``, ``updated_at``), None if it never defined any."""
    rows = wh.query_dicts(SELECT_ROUTES, {"tenant": tenant})
    if not rows:
        return None
    return {**orjson.loads(rows[0]["payload"]), "updated_at": _utc(rows[0]["occurred_at"])}


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


SELECT_ALERTS = """
SELECT alert_id,
       argMaxIf(kind, (occurred_at, event_id), kind NOT IN ('notified', 'acked')) AS state,
       argMaxIf(rule, (occurred_at, event_id), kind NOT IN ('notified', 'acked')) AS rule,
       argMaxIf(severity, (occurred_at, event_id), kind NOT IN ('notified', 'acked')) AS severity,
       argMaxIf(labels, (occurred_at, event_id), kind NOT IN ('notified', 'acked')) AS labels,
       argMaxIf(annotations, (occurred_at, event_id), kind NOT IN ('notified', 'acked')) AS annotations,
       argMaxIf(value, (occurred_at, event_id), kind NOT IN ('notified', 'acked')) AS value,
       maxIf(occurred_at, kind = 'pending') AS pending_at,
       maxIf(occurred_at, kind = 'fired') AS fired_at,
       maxIf(occurred_at, kind = 'resolved') AS resolved_at,
       max(occurred_at) AS last_seen,
       countIf(kind = 'notified' AND delivered = 1) AS notifications,
       countIf(kind = 'notified' AND delivered = 0 AND channel NOT IN ('muted', 'waiting')) AS failed_deliveries,
       argMaxIf(detail, (occurred_at, event_id), channel = 'muted') AS muted,
       maxIf(occurred_at, channel = 'muted') AS muted_at,
       maxIf(occurred_at, kind = 'notified' AND delivered = 1) AS delivered_at,
       argMaxIf(detail, (occurred_at, event_id), channel = 'waiting') AS notify_after,
       maxIf(occurred_at, channel = 'waiting') AS waiting_at,
       maxIf(occurred_at, kind = 'notified' AND channel != 'waiting') AS answered_at,
       maxIf(occurred_at, kind = 'acked') AS acknowledged_at,
       argMaxIf(detail, (occurred_at, event_id), kind = 'acked') AS acknowledged_by
FROM (SELECT * FROM alert_events WHERE tenant_id = {tenant:String} LIMIT 1 BY event_id)
GROUP BY alert_id
HAVING countIf(kind NOT IN ('notified', 'acked')) > 0
   AND ({state:String} = '' OR state = {state:String})
   AND ({alert_id:String} = '' OR alert_id = {alert_id:String})
   AND ({severity:String} = '' OR severity = {severity:String})
   AND ({rule:String} = '' OR rule = {rule:String})
   AND arrayAll((name, pattern) -> labels[name] LIKE pattern, {label_names:Array(String)},
                {label_patterns:Array(String)})
   AND last_seen >= {since:DateTime64(3, 'UTC')}
ORDER BY last_seen DESC, alert_id
LIMIT {limit:UInt32}
"""

STATES = {"fired": "firing", "resolved": "resolved", "pending": "pending", "cleared": "cleared"}
"""Latest lifecycle event -> the state the API reports (``cleared``: pending, then no longer true)."""


def list_alerts(
    wh: Warehouse,
    tenant: str,
    *,
    state: str,
    severity: str,
    rule: str,
    since: datetime,
    limit: int,
    alert_id: str = "",
    labels: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Alerts by their latest lifecycle event, most recently active first (or the one ``alert_id``); ``labels``:
    label -> glob, every one must match."""
    labels = labels or {}
    params = {"tenant": tenant, "state": state, "severity": severity, "rule": rule, "since": since, "limit": limit,
              "alert_id": alert_id, "label_names": list(labels),
              "label_patterns": [glob_to_like(g) for g in labels.values()]}  # fmt: skip
    rows = wh.query_dicts(SELECT_ALERTS, params)
    for row in rows:
        row["state"] = STATES[row["state"]]
        for name in ("pending_at", "fired_at", "resolved_at", "last_seen", "acknowledged_at"):
            row[name] = _utc(row[name]) if row[name].year > 1970 else None
        if row["state"] != "resolved":
            row["resolved_at"] = None
        _current_wait(row)
        _current_mute(row)
        _current_acknowledgement(row)
    return rows


def glob_to_like(glob: str) -> str:
    """A shell glob (``*``, ``?``) as a LIKE pattern, with LIKE's own wildcards (``%``, ``_``) taken literally."""
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _current_mute(row: dict[str, Any]) -> None:
    """A mute counts until the alert is told after all (its silence expired) or fires again."""
    muted_at, delivered_at = _utc(row.pop("muted_at")), _utc(row.pop("delivered_at"))
    fired = row["fired_at"]
    if not row["muted"] or muted_at < delivered_at or (fired is not None and muted_at < fired):
        row["muted"] = None


def _current_wait(row: dict[str, Any]) -> None:
    """A firing alert waits for its group's first notification until it is told, muted or failed, or resolves."""
    waiting_at, answered_at = _utc(row.pop("waiting_at")), _utc(row.pop("answered_at"))
    fired = row["fired_at"]
    if (not row["notify_after"] or row["state"] != "firing" or answered_at >= waiting_at
            or (fired is not None and waiting_at < fired)):  # fmt: skip
        row["notify_after"] = None
    else:
        try:
            row["notify_after"] = _utc(datetime.fromisoformat(row["notify_after"]))
        except ValueError:  # not written by the alert agent
            row["notify_after"] = None


def _current_acknowledgement(row: dict[str, Any]) -> None:
    """An acknowledgement counts for the firing it was made in: one older than the latest fire is forgotten."""
    acked, fired = row["acknowledged_at"], row["fired_at"]
    if acked is None or (fired is not None and acked < fired):
        row["acknowledged_at"], row["acknowledged_by"] = None, None
    else:
        row["acknowledged_by"] = row["acknowledged_by"] or None


COUNT_FIRING = """
SELECT severity, count() AS firing
FROM (
    SELECT argMaxIf(kind, (occurred_at, event_id), kind NOT IN ('notified', 'acked')) AS state,
           argMaxIf(severity, (occurred_at, event_id), kind NOT IN ('notified', 'acked')) AS severity
    FROM alert_events
    GROUP BY tenant_id, alert_id
)
WHERE state = 'fired'
GROUP BY severity
ORDER BY severity
"""


def firing_by_severity(wh: Warehouse) -> dict[str, int]:
    """Alerts of every tenant whose latest lifecycle event is ``fired``, per severity."""
    return {row["severity"]: int(row["firing"]) for row in wh.query_dicts(COUNT_FIRING)}
