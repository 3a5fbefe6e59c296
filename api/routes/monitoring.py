"""Health of the system itself: broker, ClickHouse, workers, projector and lag."""

import asyncio
import time
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import State, Tenant
from api.state import AppState
from projections import queries

router = APIRouter(tags=["monitoring"])

WORKER_STALE_AFTER_S = 30.0


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
    status: Literal["ok", "degraded", "down"]
    checked_at: datetime
    broker: ComponentPublic
    clickhouse: ComponentPublic
    workers: ComponentPublic
    projector: ComponentPublic
    consumer_lag: list[TopicLagPublic]


@router.get("/healthz", tags=["health"])
async def healthz() -> dict[str, str]:
    """Liveness: the API process answers. Needs no key."""
    return {"status": "ok"}


@router.get("/api/workflows/monitoring/status", response_model=StatusPublic)
async def monitoring_status(state: State, tenant: Tenant) -> StatusPublic:
    broker, clickhouse = await asyncio.gather(_broker(state), run_in_threadpool(_clickhouse, state))
    workers = await run_in_threadpool(_workers, state) if clickhouse.status == "ok" else _unknown()
    projector, lag = _projector(state)
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
            status="ok",
            detail={"brokers": len(metadata.brokers()), "topics": len(metadata.topics())},
        )
    except Exception as exc:
        return ComponentPublic(status="down", detail={"error": f"{type(exc).__name__}: {exc}"})


def _clickhouse(state: AppState) -> ComponentPublic:
    ok = state.warehouse.ping()
    return ComponentPublic(
        status="ok" if ok else "down",
        detail={"embedded": state.warehouse.embedded},
    )


def _unknown() -> ComponentPublic:
    return ComponentPublic(status="unknown")


def _workers(state: AppState) -> ComponentPublic:
    beats = queries.last_heartbeats(state.warehouse)
    if not beats:
        return ComponentPublic(status="unknown", detail={"workers": []})
    now = datetime.now(UTC)
    for beat in beats:
        beat["age_s"] = round((now - beat["last_seen"]).total_seconds(), 1)
    alive = [b for b in beats if b["age_s"] <= WORKER_STALE_AFTER_S]
    return ComponentPublic(status="ok" if alive else "down", detail={"workers": beats})


def _projector(state: AppState) -> tuple[ComponentPublic, list[TopicLagPublic]]:
    projector = state.projector
    if projector is None:
        return ComponentPublic(status="unknown", detail={"hosted": False}), []
    stats = projector.stats
    by_topic: dict[str, TopicLagPublic] = {}
    now = time.time()
    for name, progress in stats.partitions.items():
        topic = name.split("[", 1)[0]
        entry = by_topic.setdefault(
            topic,
            TopicLagPublic(topic=topic, position=0, highwater=0, lag=0, seconds_since_last_record=None),
        )
        since = now - progress.last_record_at if progress.last_record_at else None
        by_topic[topic] = TopicLagPublic(
            topic=topic,
            position=entry.position + progress.position,
            highwater=None
            if entry.highwater is None or progress.highwater is None
            else entry.highwater + progress.highwater,
            lag=None if entry.lag is None or progress.lag is None else entry.lag + progress.lag,
            seconds_since_last_record=min(filter(None, (entry.seconds_since_last_record, since)), default=None),
        )
    status: Literal["ok", "degraded"] = "ok" if projector.ready.is_set() and not stats.last_error else "degraded"
    detail = {
        "group_id": projector.group_id, "batches": stats.batches, "records": stats.records,
        "dead_letters": stats.dead_letters, "last_batch_records": stats.last_batch_records,
        "last_flush_ms": round(stats.last_flush_ms, 2), "last_error": stats.last_error,
        "seconds_fetching": round(stats.fetch_s, 3), "seconds_waiting_for_decode": round(stats.decode_wait_s, 3),
        "seconds_inserting": round(stats.insert_s, 3), "decode_workers": projector.workers,
    }  # fmt: skip
    return ComponentPublic(status=status, detail=detail), sorted(by_topic.values(), key=lambda t: t.topic)
