"""Rebuild the projections from the durable record.

Two sources, same result (the projections are idempotent folds):

* ``archive``: the ``events`` table in ClickHouse, which keeps every valid record
  for as long as the warehouse lives (the embedded broker forgets on restart);
* ``kafka``: the topics themselves, read from the beginning without a consumer
  group, while the broker still holds the whole log.

Derived tables are truncated first, then refilled in batches.
"""

import asyncio
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from projections.migrations import DERIVED_TABLES
from projections.projector import flush
from projections.rows import ProjectionBatch
from projections.slicing import LogRecord, project_slice
from projections.warehouse import Warehouse
from schemas import topics
from schemas.registry import RECORD_TYPES

log = logging.getLogger(__name__)

PAGE = 50_000

SELECT_ARCHIVE_PAGE = """
SELECT event_id, type, schema_version, occurred_at, tenant_id, workflow_id, run_id, step_id,
       causation_id, correlation_id, payload, topic, partition, offset
FROM events
WHERE (tenant_id, workflow_id, run_id, event_id)
      > ({tenant_id:String}, {workflow_id:String}, {run_id:String}, {event_id:UUID})
ORDER BY tenant_id, workflow_id, run_id, event_id
LIMIT 1 BY event_id
LIMIT {page:UInt32}
"""


def truncate_derived(wh: Warehouse) -> None:
    for table in DERIVED_TABLES:
        wh.command(f"TRUNCATE TABLE IF EXISTS {table}")  # noqa: S608 - fixed table names


def _archive_pages(wh: Warehouse) -> Iterator[list[dict[str, Any]]]:
    after = {"tenant_id": "", "workflow_id": "", "run_id": "", "event_id": "00000000-0000-0000-0000-000000000000"}
    while True:
        rows = wh.query_dicts(SELECT_ARCHIVE_PAGE, {**after, "page": PAGE})
        if not rows:
            return
        yield rows
        last = rows[-1]
        after = {k: str(last[k]) for k in ("tenant_id", "workflow_id", "run_id", "event_id")}


def replay_from_archive(wh: Warehouse) -> int:
    """Rebuild ``runs`` and ``steps`` from ``events``; returns records replayed."""
    truncate_derived(wh)
    replayed = 0
    for rows in _archive_pages(wh):
        batch = ProjectionBatch()
        for row in rows:
            record = RECORD_TYPES[row["type"]].model_validate_json(_envelope_json(row))
            batch.add_record(record, row["topic"], row["partition"], row["offset"])
        flush(wh, _without_archive(batch))
        replayed += len(rows)
    return replayed


def _envelope_json(row: dict[str, Any]) -> str:
    import orjson

    occurred: datetime = row["occurred_at"]
    envelope = {
        "event_id": str(row["event_id"]), "type": row["type"],
        "schema_version": row["schema_version"],
        "occurred_at": occurred.replace(tzinfo=occurred.tzinfo or UTC).isoformat(),
        "tenant_id": row["tenant_id"], "workflow_id": row["workflow_id"],
        "run_id": row["run_id"] or None, "step_id": row["step_id"] or None,
        "causation_id": str(row["causation_id"]) if row["causation_id"] else None,
        "correlation_id": row["correlation_id"] or None,
        "payload": orjson.Fragment(row["payload"]),
    }  # fmt: skip
    return orjson.dumps(envelope).decode()


def _without_archive(batch: ProjectionBatch) -> ProjectionBatch:
    rebuilt = ProjectionBatch()
    rebuilt.runs, rebuilt.steps = batch.runs, batch.steps
    return rebuilt


async def replay_from_kafka(wh: Warehouse, bootstrap: str, *, idle_s: float = 3.0) -> int:
    """Re-project every projected topic from offset 0; stops after ``idle_s`` without records."""
    truncate_derived(wh)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", max_partition_fetch_bytes=16 << 20,
    )  # fmt: skip
    await consumer.start()
    replayed = 0
    try:
        await consumer.topics()
        partitions = [
            TopicPartition(t, p)
            for t in (*topics.PROJECTED_TOPICS, topics.DEAD_LETTERS)
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        last_seen = time.monotonic()
        while time.monotonic() - last_seen < idle_s:
            fetched = await consumer.getmany(timeout_ms=500, max_records=20_000)
            if not fetched:
                continue
            last_seen = time.monotonic()
            records = [LogRecord(m.topic, m.partition, m.offset, m.value) for ms in fetched.values() for m in ms]
            result = project_slice(records, now=datetime.now(UTC))
            await asyncio.to_thread(flush, wh, result.batch)
            replayed += result.records
    finally:
        await consumer.stop()
    return replayed


async def kafka_holds_whole_log(bootstrap: str) -> bool:
    """True when the event topic still starts at offset 0 (nothing deleted by retention)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        await consumer.topics()
        parts = [TopicPartition(topics.WORKFLOW_EVENTS, p) for p in consumer.partitions_for_topic(topics.WORKFLOW_EVENTS) or ()]
        if not parts:
            return False
        starts = await consumer.beginning_offsets(parts)
        return all(offset == 0 for offset in starts.values())
    finally:
        await consumer.stop()
