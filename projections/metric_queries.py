"""Reads of metric windows and anomalies, and the live values of the window still open.

Closed windows come from ``metric_windows`` (written by the stream workers);
the open window is computed here from the projected step and run rows, so a
dashboard sees the current minute before it closes.
"""

from datetime import UTC, datetime
from typing import Any

from domain.sketch import QuantileSketch
from domain.windows import Partial, WindowSummary, roll_up, summarize
from projections.warehouse import Warehouse

SELECT_WINDOWS = """
SELECT key, service, window_start, count, successes, failures, cost_sum, late_events, latency_sketch
FROM metric_windows FINAL
WHERE tenant_id = {tenant:String} AND scope = {scope:String} AND window_s = {window_s:UInt32}
  AND ({key:String} = '' OR key = {key:String})
  AND window_start >= {start:DateTime64(3, 'UTC')} AND window_start < {end:DateTime64(3, 'UTC')}
ORDER BY key, window_start
LIMIT {limit:UInt32}
"""

_LIVE_STEPS = """
SELECT {key_expr} AS key, any(service) AS service, count() AS count,
       countIf(status = 'succeeded') AS successes, countIf(status = 'failed') AS failures,
       sum(ifNull(cost, 0)) AS cost_sum, quantilesExactIf(0.5, 0.95, 0.99)(duration_ms, duration_ms IS NOT NULL) AS q
FROM (SELECT * FROM steps WHERE tenant_id = {{tenant:String}} AND status IN ('succeeded', 'failed')
        AND occurred_at >= {{start:DateTime64(3, 'UTC')}} LIMIT 1 BY event_id)
WHERE ({{key:String}} = '' OR key = {{key:String}})
GROUP BY key
"""
_LIVE_RUNS = """
SELECT {key_expr} AS key, '' AS service, count() AS count,
       countIf(status = 'succeeded') AS successes, countIf(status = 'failed') AS failures,
       0.0 AS cost_sum, quantilesExactIf(0.5, 0.95, 0.99)(duration_ms, duration_ms IS NOT NULL) AS q
FROM (SELECT * FROM runs WHERE tenant_id = {{tenant:String}} AND status IN ('succeeded', 'failed')
        AND occurred_at >= {{start:DateTime64(3, 'UTC')}} LIMIT 1 BY event_id)
WHERE ({{key:String}} = '' OR key = {{key:String}})
GROUP BY key
"""
LIVE_QUERIES = {
    "step": _LIVE_STEPS.format(key_expr="concat(workflow_id, '/', step_id)"),
    "service": _LIVE_STEPS.format(key_expr="service"),
    "workflow": _LIVE_RUNS.format(key_expr="workflow_id"),
    "tenant": _LIVE_RUNS.format(key_expr="'*'"),
}

SELECT_ANOMALIES = """
SELECT event_id, detected_at, scope, key, metric, series, value, score, expected_low, expected_high,
       explanation, window_start
FROM anomalies FINAL
WHERE tenant_id = {tenant:String}
  AND ({scope:String} = '' OR scope = {scope:String}) AND ({key:String} = '' OR key = {key:String})
  AND ({metric:String} = '' OR metric = {metric:String}) AND score >= {min_score:Float64}
  AND detected_at >= {start:DateTime64(3, 'UTC')} AND detected_at < {end:DateTime64(3, 'UTC')}
ORDER BY detected_at DESC, series
LIMIT {limit:UInt32}
"""


def closed_windows(
    wh: Warehouse,
    tenant: str,
    scope: str,
    key: str,
    *,
    base_s: float,
    view_s: float,
    start: datetime,
    end: datetime,
    limit: int,
) -> dict[tuple[str, str], list[tuple[float, WindowSummary]]]:
    """(key, service) -> [(window start, summary)] for views of ``view_s``, merged from base windows."""
    reach = start.timestamp() - (view_s - base_s)  # base windows that feed the first view
    rows = wh.query_dicts(
        SELECT_WINDOWS,
        {"tenant": tenant, "scope": scope, "key": key, "window_s": int(base_s), "limit": limit,
         "start": datetime.fromtimestamp(reach, UTC), "end": end},
    )  # fmt: skip
    by_series: dict[tuple[str, str], dict[float, Partial]] = {}
    for row in rows:
        partial = Partial(
            count=row["count"], successes=row["successes"], failures=row["failures"], cost_sum=row["cost_sum"],
            late=row["late_events"], sketch=QuantileSketch.from_buckets(row["latency_sketch"]),
        )  # fmt: skip
        by_series.setdefault((row["key"], row["service"]), {})[_ts(row["window_start"])] = partial
    views: dict[tuple[str, str], list[tuple[float, WindowSummary]]] = {}
    for series, windows in by_series.items():
        merged = windows.items() if view_s == base_s else roll_up(windows, base_s, view_s)
        views[series] = [
            (s, summarize(p, view_s)) for s, p in merged if start.timestamp() <= s and s + view_s <= end.timestamp()
        ]
    return views


def live_window(wh: Warehouse, tenant: str, scope: str, key: str, *, start: datetime) -> list[dict[str, Any]]:
    """Values so far of the window opened at ``start``, per key, from projected step or run rows."""
    rows = wh.query_dicts(LIVE_QUERIES[scope], {"tenant": tenant, "key": key, "start": start})
    out = []
    for row in rows:
        p50, p95, p99 = (None if v != v else round(v, 3) for v in row["q"]) if row["count"] else (None, None, None)
        out.append({**row, "q": None, "latency_p50_ms": p50, "latency_p95_ms": p95, "latency_p99_ms": p99})
    return out


def list_anomalies(
    wh: Warehouse,
    tenant: str,
    *,
    scope: str,
    key: str,
    metric: str,
    min_score: float,
    start: datetime,
    end: datetime,
    limit: int,
) -> list[dict[str, Any]]:
    rows = wh.query_dicts(
        SELECT_ANOMALIES,
        {"tenant": tenant, "scope": scope, "key": key, "metric": metric, "min_score": min_score,
         "start": start, "end": end, "limit": limit},
    )  # fmt: skip
    for row in rows:
        row["event_id"] = str(row["event_id"])
        row["detected_at"] = _utc(row["detected_at"])
        row["window_start"] = _utc(row["window_start"]) if row["window_start"] else None
    return rows


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _ts(value: datetime) -> float:
    return _utc(value).timestamp()
