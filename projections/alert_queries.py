"""Reads of alert rules, silences, and the stored windows a backtest replays."""

import fnmatch
from datetime import UTC, datetime
from typing import Any

import orjson

from projections.warehouse import Warehouse

SELECT_RULES = """
SELECT name, argMax(version, (occurred_at, event_id)) AS version, argMax(deleted, (occurred_at, event_id)) AS deleted,
       argMax(spec, (occurred_at, event_id)) AS spec, max(occurred_at) AS updated_at
FROM alert_rules
WHERE tenant_id = {tenant:String}
GROUP BY name
ORDER BY name
"""

SELECT_SILENCES = """
SELECT silence_id, matchers, starts_at, ends_at, comment, created_by
FROM silences FINAL
WHERE tenant_id = {tenant:String} AND ends_at > {since:DateTime64(3, 'UTC')}
ORDER BY starts_at DESC, silence_id
LIMIT 1 BY silence_id
"""

WINDOW_METRICS = frozenset({"latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "error_rate", "throughput_per_s",
                            "count", "failures", "cost_sum"})  # fmt: skip
"""Metrics a backtest can replay from ``metric_windows`` (the columns of that name)."""

_SELECT_POINTS = """
SELECT key, window_end, {metric} AS value
FROM metric_windows FINAL
WHERE tenant_id = {{tenant:String}} AND scope = {{scope:String}} AND window_s = {{window_s:UInt32}}
  AND window_start >= {{start:DateTime64(3, 'UTC')}} AND window_start < {{end:DateTime64(3, 'UTC')}}
  AND value IS NOT NULL
ORDER BY key, window_start
"""
SELECT_POINTS = {metric: _SELECT_POINTS.format(metric=metric) for metric in WINDOW_METRICS}


def current_rules(wh: Warehouse, tenant: str) -> list[dict[str, Any]]:
    """Defined rules (deleted ones left out): name, version, spec, updated_at."""
    rows = wh.query_dicts(SELECT_RULES, {"tenant": tenant})
    return [
        {
            "name": r["name"],
            "version": r["version"],
            "spec": orjson.loads(r["spec"]),
            "updated_at": _utc(r["updated_at"]),
        }
        for r in rows
        if not r["deleted"]
    ]


def rule_versions(wh: Warehouse, tenant: str) -> dict[str, int]:
    """Last version of every rule name ever defined, deleted ones included (versions keep counting)."""
    return {r["name"]: int(r["version"]) for r in wh.query_dicts(SELECT_RULES, {"tenant": tenant})}


def active_silences(wh: Warehouse, tenant: str, *, since: datetime) -> list[dict[str, Any]]:
    rows = wh.query_dicts(SELECT_SILENCES, {"tenant": tenant, "since": since})
    return [{**r, "starts_at": _utc(r["starts_at"]), "ends_at": _utc(r["ends_at"])} for r in rows]


def series_points(
    wh: Warehouse, tenant: str, *, scope: str, match: str, metric: str, window_s: float, start: datetime, end: datetime
) -> dict[str, list[tuple[float, float]]]:
    """key -> [(window end, value)] of the closed windows a rule over ``scope``/``match`` would have seen."""
    rows = wh.query(
        SELECT_POINTS[metric],
        {"tenant": tenant, "scope": scope, "window_s": int(window_s), "start": start, "end": end},
    )
    points: dict[str, list[tuple[float, float]]] = {}
    for key, window_end, value in rows:
        if fnmatch.fnmatchcase(key, match):
            points.setdefault(key, []).append((_utc(window_end).timestamp(), float(value)))
    return points


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


SELECT_ALERTS = """
SELECT alert_id,
       argMaxIf(kind, (occurred_at, event_id), kind != 'notified') AS state,
       argMaxIf(rule, (occurred_at, event_id), kind != 'notified') AS rule,
       argMaxIf(severity, (occurred_at, event_id), kind != 'notified') AS severity,
       argMaxIf(labels, (occurred_at, event_id), kind != 'notified') AS labels,
       argMaxIf(annotations, (occurred_at, event_id), kind != 'notified') AS annotations,
       argMaxIf(value, (occurred_at, event_id), kind != 'notified') AS value,
       maxIf(occurred_at, kind = 'pending') AS pending_at,
       maxIf(occurred_at, kind = 'fired') AS fired_at,
       maxIf(occurred_at, kind = 'resolved') AS resolved_at,
       max(occurred_at) AS last_seen,
       countIf(kind = 'notified' AND delivered = 1) AS notifications,
       countIf(kind = 'notified' AND delivered = 0 AND channel != 'muted') AS failed_deliveries,
       argMaxIf(detail, (occurred_at, event_id), channel = 'muted') AS muted
FROM (SELECT * FROM alert_events WHERE tenant_id = {tenant:String} LIMIT 1 BY event_id)
GROUP BY alert_id
HAVING ({state:String} = '' OR state = {state:String})
   AND ({severity:String} = '' OR severity = {severity:String})
   AND ({rule:String} = '' OR rule = {rule:String})
   AND last_seen >= {since:DateTime64(3, 'UTC')}
ORDER BY last_seen DESC, alert_id
LIMIT {limit:UInt32}
"""

STATES = {"fired": "firing", "resolved": "resolved", "pending": "pending", "cleared": "cleared"}
"""Latest lifecycle event -> the state the API reports (``cleared``: pending, then no longer true)."""


def list_alerts(
    wh: Warehouse, tenant: str, *, state: str, severity: str, rule: str, since: datetime, limit: int
) -> list[dict[str, Any]]:
    """Alerts by their latest lifecycle event, most recently active first."""
    rows = wh.query_dicts(
        SELECT_ALERTS,
        {"tenant": tenant, "state": state, "severity": severity, "rule": rule, "since": since, "limit": limit},
    )
    for row in rows:
        row["state"] = STATES[row["state"]]
        for name in ("pending_at", "fired_at", "resolved_at", "last_seen"):
            row[name] = _utc(row[name]) if row[name].year > 1970 else None
        if row["state"] != "resolved":
            row["resolved_at"] = None
        row["muted"] = row["muted"] or None
    return rows
