"""Agent ``count_ingested_records`` and the worker heartbeat.

Input topic: ``workflow-events`` (raw bytes; one record or a JSON array).
Output topic: ``worker-heartbeats`` (a ``WorkerHeartbeat`` every
FLOWLEDGER_WORKER_HEARTBEAT_S seconds, projected so the status API can tell
whether workers are alive and how fast they consume).
Dead letters: none here; the projector dead-letters bad records of this topic.
Table: none (counts are per worker process, reported, not durable).
Delivery: at-least-once; counts are an operational signal, not a ledger.

The agent takes batches (``stream.take``) so Faust's per-message cost is
paid once per batch, and decodes bytes itself so a bad record is skipped
rather than crashing the agent.
"""

import logging
import os
import socket
import time
from datetime import UTC, datetime

from domain.ingest_stats import IngestCounts
from schemas import topics
from schemas.monitoring import WorkerHeartbeatPayload, worker_heartbeat
from schemas.registry import decode, to_json
from streams.app import app, settings

log = logging.getLogger(__name__)

WORKER_ID = os.environ.get("FLOWLEDGER_WORKER_ID") or f"{socket.gethostname()}-{os.getpid()}"
STARTED_AT = datetime.now(UTC)

workflow_events_topic = app.topic(topics.WORKFLOW_EVENTS, value_serializer="raw", key_serializer="raw")
heartbeats_topic = app.topic(topics.WORKER_HEARTBEATS, value_serializer="raw", key_serializer="raw")

counts = IngestCounts()
skipped = 0


@app.agent(workflow_events_topic)
async def count_ingested_records(stream):  # type: ignore[no-untyped-def]
    global skipped
    async for values in stream.take(1000, within=1.0):
        seen = []
        for value in values:
            good, bad = decode(value)
            seen += [(r.tenant_id, r.type) for r in good]
            skipped += len(bad)
        counts.observe(seen, now=time.time())


@app.timer(interval=settings.flowledger_worker_heartbeat_s)
async def publish_heartbeat() -> None:
    from streams.metrics import stats as metric_stats  # registered after this module

    payload = WorkerHeartbeatPayload(
        worker=WORKER_ID,
        role="stream-worker",
        agent_counts={
            "count_ingested_records": counts.total,
            "skipped_bad_items": skipped,
            **{f"metrics_{k}": v for k, v in metric_stats.as_counts().items()},
        },
        events_per_s=round(counts.rate(now=time.time()), 3),
        started_at=STARTED_AT,
    )
    beat = worker_heartbeat(payload, now=datetime.now(UTC))
    await heartbeats_topic.send(key=b"all", value=to_json(beat))
