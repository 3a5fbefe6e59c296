"""Health of the system itself: broker, ClickHouse, workers, projector and lag."""

import asyncio
import time
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from api import examples
from api.deps import State, Tenant
from api.state import AppState
from projections import queries
from projections.projector import PartitionProgress, Projector

router = APIRouter(tags=["monitoring"])

STALE_AFTER_S = 30.0
"""A process whose last heartbeat is older than this is reported down."""


class ComponentPublic(BaseModel):
    status: Literal["ok", "degraded", "down", "unknown"]
    detail: dict[str, Any] = {}


class TopicLagPublic(BaseModel):
    topic: str
    position: int
    highwater: int | None
    lag: int | None
    seconds_since_last_record: float | None


class StatusPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "status": "ok", "checked_at": "2026-03-02T09:30:00.120Z",
        "broker": {"status": "ok", "detail": {"brokers": 1, "topics": 14}},
        "clickhouse": {"status": "ok", "detail": {"embedded": True}},
        "workers": {"status": "ok", "detail": {"workers": [
            {"worker_id": "executor-1", "role": "executor", "last_seen": "2026-03-02T09:29:58.004Z", "age_s": 2.1}]}},
        "projector": {"status": "ok", "detail": {"hosted": True, "group_id": "flowledger-projector",
                                                 "records": 48213, "dead_letters": 1, "last_error": None}},
        "consumer_lag": [{"topic": "workflow-events", "position": 48213, "highwater": 48213, "lag": 0,
                          "seconds_since_last_record": 0.8}],
    }]})  # fmt: skip

    status: Literal["ok", "degraded", "down"]
    checked_at: datetime
    broker: ComponentPublic
    clickhouse: ComponentPublic
    workers: ComponentPublic
    projector: ComponentPublic
    consumer_lag: list[TopicLagPublic]


@router.get("/healthz", tags=["health"], responses={200: {"content": {examples.JSON: {"example": {"status": "ok"}}}}})
async def healthz() -> dict[str, str]:
    """Liveness: the API process answers. Needs no key."""
    return {"status": "ok"}


@router.get("/api/workflows/monitoring/status", response_model=StatusPublic)
async def monitoring_status(state: State, tenant: Tenant) -> StatusPublic:
    """Broker, ClickHouse, stream workers and projector health, and consumer lag per topic.

    Workers and a projector running in other processes are known by their
    heartbeats; the projector hosted in this process is read directly.
    """
    broker, clickhouse = await asyncio.gather(_broker(state), run_in_threadpool(_clickhouse, state))
    beats = await run_in_threadpool(queries.last_heartbeats, state.warehouse) if clickhouse.status == "ok" else None
    workers = _workers([b for b in beats if b.get("role") != "projector"]) if beats is not None else _unknown()
    if state.projector is not None:
        projector, lag = _hosted_projector(state.projector)
    else:
        projector, lag = _remote_projector([b for b in beats or [] if b.get("role") == "projector"])
    parts = (broker, clickhouse, workers, projector)
    overall: Literal["ok", "degraded", "down"] = (
        "down" if "down" in (broker.status, clickhouse.status)
        else "ok" if all(p.status == "ok" for p in parts) else "degraded"
    )  # fmt: skip
    return StatusPublic(
        status=overall, checked_at=datetime.now(UTC), broker=broker, clickhouse=clickhouse,
        workers=workers, projector=projector, consumer_lag=lag,
    )  # fmt: skip


async def _broker(state: AppState) -> ComponentPublic:
    try:
        client = state.producer._producer.client  # noqa: SLF001 - aiokafka exposes no public metadata call
        metadata = await asyncio.wait_for(client.fetch_all_metadata(), 5)
        return ComponentPublic(
            status="ok", detail={"brokers": len(metadata.brokers()), "topics": len(metadata.topics())}
        )
    except Exception as exc:
        return ComponentPublic(status="down", detail={"error": f"{type(exc).__name__}: {exc}"})


def _clickhouse(state: AppState) -> ComponentPublic:
    ok = state.warehouse.ping()
    return ComponentPublic(status="ok" if ok else "down", detail={"embedded": state.warehouse.embedded})


def _unknown() -> ComponentPublic:
    return ComponentPublic(status="unknown")


def _with_age(beats: list[dict[str, Any]]) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [{**b, "age_s": round((now - b["last_seen"]).total_seconds(), 1)} for b in beats]


def _workers(beats: list[dict[str, Any]]) -> ComponentPublic:
    if not beats:
        return ComponentPublic(status="unknown", detail={"workers": []})
    beats = _with_age(beats)
    alive = [b for b in beats if b["age_s"] <= STALE_AFTER_S]
    return ComponentPublic(status="ok" if alive else "down", detail={"workers": beats})


def _hosted_projector(projector: Projector) -> tuple[ComponentPublic, list[TopicLagPublic]]:
    stats = projector.stats
    now = time.time()
    topics: dict[str, list[PartitionProgress]] = {}
    for name, progress in stats.partitions.items():
        topics.setdefault(name.split("[", 1)[0], []).append(progress)
    lag = [
        TopicLagPublic(
            topic=topic,
            position=sum(p.position for p in parts),
            highwater=None if any(p.highwater is None for p in parts) else sum(p.highwater or 0 for p in parts),
            lag=None if any(p.lag is None for p in parts) else sum(p.lag or 0 for p in parts),
            seconds_since_last_record=min(
                (now - p.last_record_at for p in parts if p.last_record_at is not None), default=None
            ),
        )
        for topic, parts in sorted(topics.items())
    ]
    healthy = projector.ready.is_set() and not stats.last_error
    detail = {
        "hosted": True, "group_id": projector.group_id, "batches": stats.batches, "records": stats.records,
        "dead_letters": stats.dead_letters, "last_batch_records": stats.last_batch_records,
        "last_flush_ms": round(stats.last_flush_ms, 2), "last_error": stats.last_error,
        "seconds_fetching": round(stats.fetch_s, 3), "seconds_waiting_for_decode": round(stats.decode_wait_s, 3),
        "seconds_inserting": round(stats.insert_s, 3), "decode_workers": projector.workers,
    }  # fmt: skip
    return ComponentPublic(status="ok" if healthy else "degraded", detail=detail), lag


def _remote_projector(beats: list[dict[str, Any]]) -> tuple[ComponentPublic, list[TopicLagPublic]]:
    if not beats:
        return ComponentPublic(status="unknown", detail={"hosted": False}), []
    latest = max(_with_age(beats), key=lambda b: b["last_seen"])
    status: Literal["ok", "down"] = "ok" if latest["age_s"] <= STALE_AFTER_S else "down"
    lag = [
        TopicLagPublic(topic=t, position=0, highwater=None, lag=n, seconds_since_last_record=None)
        for t, n in sorted(latest.get("lag", {}).items())
    ]
    return ComponentPublic(status=status, detail={"hosted": False, **latest}), lag
