"""Counts of ingested records and the worker heartbeat.

The counts are fed by ``streams.metrics.aggregate_windows``, which decodes
every ``workflow-events`` record anyway (a second agent over the topic would
decode each record twice).
Output topic: ``worker-heartbeats`` (a ``WorkerHeartbeat`` every
FLOWLEDGER_WORKER_HEARTBEAT_S seconds, projected so the status API can tell
whether workers are alive and how fast they consume).
Counts are per worker process, reported, not durable: an operational signal,
not a ledger.
"""

import logging
import os
import socket
import time
from datetime import UTC, datetime

from domain.ingest_stats import IngestCounts
from schemas import topics
from schemas.monitoring import WorkerHeartbeatPayload, worker_heartbeat
from schemas.registry import to_json
from streams.app import app, settings

log = logging.getLogger(__name__)

WORKER_ID = os.environ.get("FLOWLEDGER_WORKER_ID") or f"{socket.gethostname()}-{os.getpid()}"
STARTED_AT = datetime.now(UTC)

heartbeats_topic = app.topic(topics.WORKER_HEARTBEATS, value_serializer="raw", key_serializer="raw")

counts = IngestCounts()
skipped = 0
"""Records (or items of a batch record) that failed validation."""


@app.timer(interval=settings.flowledger_worker_heartbeat_s)
async def publish_heartbeat() -> None:
    from streams.metrics import stats as metric_stats  # registered after this module

    payload = WorkerHeartbeatPayload(
        worker=WORKER_ID,
        role="stream-worker",
        agent_counts={
            "ingested_records": counts.total,
            "skipped_bad_items": skipped,
            **{f"metrics_{k}": v for k, v in metric_stats.as_counts().items()},
        },
        events_per_s=round(counts.rate(now=time.time()), 3),
        started_at=STARTED_AT,
    )
    beat = worker_heartbeat(payload, now=datetime.now(UTC))
    await heartbeats_topic.send(key=b"all", value=to_json(beat))
