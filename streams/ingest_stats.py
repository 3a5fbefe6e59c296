"""Counts of ingested records and the worker heartbeat.

The counts are fed by ``streams.metrics.aggregate_windows``, which decodes
every ``workflow-events`` record anyway (a second agent over the topic would
decode each record twice).
Output topic: ``worker-heartbeats`` (a ``WorkerHeartbeat`` every
FLOWLEDGER_WORKER_HEARTBEAT_S seconds, projected so the status API can tell
whether workers are alive and how fast they consume). Every worker role sends
one; a worker running one role only names it in its worker id
(``executor-…``, ``monitor-…``), and its counts are those of the agents it runs.
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
from streams import app as app_module
from streams.app import app, settings

log = logging.getLogger(__name__)

WORKER_ID = os.environ.get("FLOWLEDGER_WORKER_ID") or f"{socket.gethostname()}-{os.getpid()}"
if app_module.ROLE != "all":
    WORKER_ID = f"{app_module.ROLE}-{WORKER_ID}"
STARTED_AT = datetime.now(UTC)

heartbeats_topic = app.topic(topics.WORKER_HEARTBEATS, value_serializer="raw", key_serializer="raw")

counts = IngestCounts()
skipped = 0
"""Records (or items of a batch record) that failed validation."""


def agent_counts() -> dict[str, int]:
    """The counts of the agents this worker runs (imported lazily: they register after this module)."""
    result: dict[str, int] = {}
    if app_module.RUNS_MONITOR:
        from streams.ledger import stats as refetch_stats
        from streams.metrics import stats as metric_stats

        result.update(ingested_records=counts.total, skipped_bad_items=skipped)
        result.update({f"metrics_{k}": v for k, v in metric_stats.as_counts().items()})
        result.update(refetch_holes=refetch_stats.holes, refetch_records=refetch_stats.records)
    if app_module.RUNS_EXECUTOR:
        from streams.executor import runtime

        result.update(
            executor_records_handled=runtime.records_handled,
            executor_steps_finished=runtime.steps_finished,
            executor_attempts_in_flight=len(runtime.in_flight),
            executor_runs_running=len(runtime.active),
        )
    return result


@app.timer(interval=settings.flowledger_worker_heartbeat_s)
async def publish_heartbeat() -> None:
    payload = WorkerHeartbeatPayload(
        worker=WORKER_ID,
        role="stream-worker",
        agent_counts=agent_counts(),
        events_per_s=round(counts.rate(now=time.time()), 3),
        started_at=STARTED_AT,
    )
    beat = worker_heartbeat(payload, now=datetime.now(UTC))
    await heartbeats_topic.send(key=b"all", value=to_json(beat))
