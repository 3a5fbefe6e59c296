"""Metric windows and anomalies, per workflow, step, service or tenant."""

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from api import examples
from api.deps import State, Tenant, tenant_for
from domain.windows import WindowSummary, window_start
from projections import metric_queries

router = APIRouter(tags=["monitoring"])

Scope = Literal["workflow", "step", "service", "tenant"]
_DURATION = re.compile(r"^(\d+)([smh])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600}


class WindowPublic(BaseModel):
    window_start: datetime
    window_end: datetime
    count: int
    successes: int
    failures: int
    error_rate: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    cost_sum: float
    throughput_per_s: float
    late_events: int = 0


class SeriesPublic(BaseModel):
    key: str
    service: str | None
    windows: list[WindowPublic]
    open_window: WindowPublic | None = None
    """The base window still open, from the projected step and run rows (live, incomplete)."""


WINDOW: dict[str, Any] = {
    "window_start": "2026-03-02T09:14:00Z", "window_end": "2026-03-02T09:15:00Z", "count": 42, "successes": 39,
    "failures": 3, "error_rate": 0.0714, "latency_p50_ms": 598.0, "latency_p95_ms": 1210.0, "latency_p99_ms": 1675.0,
    "cost_sum": 0.0, "throughput_per_s": 0.7, "late_events": 0,
}  # fmt: skip


class MetricsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "tenant": examples.TENANT, "scope": "service", "window_s": 60.0, "base_window_s": 60.0,
        "start": "2026-03-02T09:14:00Z", "end": "2026-03-02T09:16:00Z",
        "series": [{"key": "slack", "service": "slack", "windows": [WINDOW],
                    "open_window": {**WINDOW, "window_start": "2026-03-02T09:15:00Z",
                                    "window_end": "2026-03-02T09:16:00Z", "count": 18, "successes": 18,
                                    "failures": 0, "error_rate": 0.0, "throughput_per_s": 0.3}}],
    }]})  # fmt: skip

    tenant: str
    scope: Scope
    window_s: float
    base_window_s: float
    start: datetime
    end: datetime
    series: list[SeriesPublic]


class AnomalyPublic(BaseModel):
    event_id: str
    detected_at: datetime
    scope: str
    key: str
    metric: str
    series: str
    value: float
    score: float
    expected_low: float | None
    expected_high: float | None
    explanation: str
    window_start: datetime | None


class AnomaliesPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"tenant": examples.TENANT, "anomalies": [{
        "event_id": "4c3b2a19-0f8e-5d7c-8b6a-59483726150f", "detected_at": "2026-03-02T09:15:02.310Z",
        "scope": "workflow", "key": examples.WORKFLOW_ID, "metric": "latency_p95_ms",
        "series": f"workflow:{examples.WORKFLOW_ID}:latency_p95_ms", "value": 4210.0, "score": 0.97,
        "expected_low": 900.0, "expected_high": 1500.0,
        "explanation": "latency_p95_ms 4210 is above the expected 900-1500 (score 0.97)",
        "window_start": "2026-03-02T09:14:00Z",
    }]}]})  # fmt: skip

    tenant: str
    anomalies: list[AnomalyPublic]


def _duration_s(text: str, base_s: float) -> float:
    match = _DURATION.match(text)
    if not match:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, f"window {text!r}: expected e.g. 1m, 5m, 15m, 90s")
    seconds = int(match[1]) * _UNIT_S[match[2]]
    if seconds <= 0 or seconds % base_s or seconds > 24 * 3600:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            f"window {text!r}: must be a multiple of the base window ({base_s:g} s), at most 24 h",
        )
    return float(seconds)


def _range(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    end = end or datetime.now(UTC)
    start = start or end - timedelta(hours=1)
    if start.tzinfo is None or end.tzinfo is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "start and end need a zone, e.g. 2026-01-01T00:00Z")
    if start >= end:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "start must be before end")
    return start, end


@router.get("/api/workflows/monitoring/metrics", response_model=MetricsPublic)
async def metrics(
    state: State,
    caller: Tenant,
    scope: Scope = "workflow",
    key: Annotated[str, Query(max_length=256, description="Workflow id, 'workflow/step', or service; empty: all")] = "",
    window: Annotated[str, Query(description="View length: the base window or a multiple (5m, 15m hop by it)")] = "",
    start: datetime | None = None,
    end: datetime | None = None,
    live: bool = True,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    tenant: str | None = None,
) -> MetricsPublic:
    """Closed windows of a scope (all keys or one), as tumbling base windows or hopping views, plus the open one."""
    tenant_id = tenant_for(caller, tenant)
    base_s = state.settings.flowledger_metrics_window_s
    view_s = _duration_s(window, base_s) if window else base_s
    start, end = _range(start, end)
    closed = await run_in_threadpool(
        metric_queries.closed_windows, state.warehouse, tenant_id, scope, key,
        base_s=base_s, view_s=view_s, start=start, end=end, limit=limit,
    )  # fmt: skip
    series = {
        k: SeriesPublic(key=k[0], service=k[1] or None, windows=[_window(s, view_s, summary) for s, summary in ws])
        for k, ws in closed.items()
    }
    if live:
        opened = window_start(datetime.now(UTC).timestamp(), base_s)
        if opened < end.timestamp():
            rows = await run_in_threadpool(
                metric_queries.live_window, state.warehouse, tenant_id, scope, key,
                start=datetime.fromtimestamp(opened, UTC),
            )  # fmt: skip
            for row in rows:
                entry = series.setdefault(
                    (row["key"], row["service"]),
                    SeriesPublic(key=row["key"], service=row["service"] or None, windows=[]),
                )
                entry.open_window = _live(opened, base_s, row)
    return MetricsPublic(
        tenant=tenant_id, scope=scope, window_s=view_s, base_window_s=base_s, start=start, end=end,
        series=[series[k] for k in sorted(series)],
    )  # fmt: skip


def _window(start: float, size_s: float, summary: WindowSummary) -> WindowPublic:
    return WindowPublic(
        window_start=datetime.fromtimestamp(start, UTC),
        window_end=datetime.fromtimestamp(start + size_s, UTC),
        **{k: v for k, v in summary.__dict__.items() if k in WindowPublic.model_fields},
    )


def _live(start: float, size_s: float, row: dict[str, Any]) -> WindowPublic:
    count, failures = int(row["count"]), int(row["failures"])
    return WindowPublic(
        window_start=datetime.fromtimestamp(start, UTC),
        window_end=datetime.fromtimestamp(start + size_s, UTC),
        count=count, successes=int(row["successes"]), failures=failures,
        error_rate=failures / count if count else 0.0,
        latency_p50_ms=row["latency_p50_ms"], latency_p95_ms=row["latency_p95_ms"],
        latency_p99_ms=row["latency_p99_ms"], cost_sum=float(row["cost_sum"]), throughput_per_s=count / size_s,
    )  # fmt: skip


@router.get("/api/workflows/monitoring/anomalies", response_model=AnomaliesPublic)
async def anomalies(
    state: State,
    caller: Tenant,
    scope: Literal["", "workflow", "step", "service", "tenant"] = "",
    key: Annotated[str, Query(max_length=256)] = "",
    metric: Annotated[str, Query(max_length=64)] = "",
    min_score: Annotated[float, Query(ge=0, le=1)] = 0.0,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
    tenant: str | None = None,
) -> AnomaliesPublic:
    """Anomalies the detectors raised, newest first."""
    tenant_id = tenant_for(caller, tenant)
    start, end = _range(start or datetime(1970, 1, 1, tzinfo=UTC), end)
    rows = await run_in_threadpool(
        metric_queries.list_anomalies, state.warehouse, tenant_id, scope=scope, key=key, metric=metric,
        min_score=min_score, start=start, end=end, limit=limit,
    )  # fmt: skip
    return AnomaliesPublic(tenant=tenant_id, anomalies=[AnomalyPublic(**r) for r in rows])
