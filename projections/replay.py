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
from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from projections.migrations import DERIVED_TABLES
from projections.projector import flush
from projections.slicing import LogRecord, project_slice
from projections.warehouse import Warehouse
from schemas import topics

log = logging.getLogger(__name__)

DERIVING_VIEWS = {
    "runs": "runs_from_events",
    "steps": "steps_from_events",
    "metric_windows": "metric_windows_from_events",
    "anomalies": "anomalies_from_events",
    "alert_events": "alert_events_from_events",
    "alert_rules": "alert_rules_from_events",
    "silences": "silences_from_events",
}
"""Derived table -> the materialized view that fills it from ``events``."""

SELECT_VIEW_QUERY = """
SELECT as_select FROM system.tables
WHERE database = currentDatabase() AND name = {view:String}
"""


def truncate_derived(wh: Warehouse) -> None:
    for table in DERIVED_TABLES:
        wh.command(f"TRUNCATE TABLE IF EXISTS {table}")  # noqa: S608 - fixed table names


Progress = Callable[[int, int | None], None]
"""``on_progress(done, total)``: tables rebuilt, or Kafka messages read (total once every partition's end is known)."""


def _quiet(done: int, total: int | None) -> None:
    pass


def replay_from_archive(wh: Warehouse, *, on_progress: Progress = _quiet) -> int:
    """Rebuild the derived tables from ``events`` with the views' own queries.

    The SELECT of each materialized view is read back from ClickHouse, so the
    rebuild and the live projection cannot drift apart. Returns archived records.
    """
    truncate_derived(wh)
    for done, (table, view) in enumerate(DERIVING_VIEWS.items(), start=1):
        [(select,)] = wh.query(SELECT_VIEW_QUERY, {"view": view})
        wh.command(f"INSERT INTO {table} {select}")  # noqa: S608 - SQL stored by our own migration
        on_progress(done, len(DERIVING_VIEWS))
    return int(wh.query("SELECT uniqExact(event_id) FROM events")[0][0])


REPLAYED_TOPICS = tuple(t for t in (*topics.PROJECTED_TOPICS, topics.DEAD_LETTERS) if t != topics.WORKER_HEARTBEATS)
"""Heartbeats say who is alive now; replaying them would say nothing true."""


async def replay_from_kafka(
    wh: Warehouse, bootstrap: str, *, timeout_s: float = 600.0, on_progress: Progress = _quiet
) -> int:
    """Re-project every projected topic from offset 0 up to where each partition ended
    when the replay began (records produced meanwhile are the live projector's)."""
    truncate_derived(wh)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, check_crcs=False,
        auto_offset_reset="earliest", max_partition_fetch_bytes=16 << 20, fetch_max_wait_ms=50,
    )  # fmt: skip
    await consumer.start()
    replayed = 0
    try:
        await consumer.topics()
        partitions = [
            TopicPartition(t, p) for t in REPLAYED_TOPICS for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        # The end of each partition as the first fetch response reports it (the
        # embedded broker's ListOffsets answer is not reliable; fetch high watermarks are).
        targets: dict[TopicPartition, int] = {}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            fetched = await consumer.getmany(timeout_ms=200, max_records=20_000)
            for tp in partitions:
                if tp not in targets and consumer.highwater(tp) is not None:
                    targets[tp] = consumer.highwater(tp)
            if fetched:
                records = [LogRecord(m.topic, m.partition, m.offset, m.value) for ms in fetched.values() for m in ms]
                result = project_slice(records, now=datetime.now(UTC))
                await asyncio.to_thread(flush, wh, result.batch)
                replayed += result.records
            if len(targets) == len(partitions):
                positions = [await consumer.position(tp) for tp in targets]
                on_progress(min(sum(positions), sum(targets.values())), sum(targets.values()))
                if all(at >= end for at, end in zip(positions, targets.values(), strict=True)):
                    return replayed
        raise TimeoutError(f"replay from Kafka did not reach the end of the log in {timeout_s:.0f}s")
    finally:
        await consumer.stop()


async def kafka_holds_whole_log(bootstrap: str) -> bool:
    """True when the event topic still starts at offset 0 (nothing deleted by retention)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        await consumer.topics()
        parts = [
            TopicPartition(topics.WORKFLOW_EVENTS, p)
            for p in consumer.partitions_for_topic(topics.WORKFLOW_EVENTS) or ()
        ]
        if not parts:
            return False
        starts = await consumer.beginning_offsets(parts)
        return all(offset == 0 for offset in starts.values())
    finally:
        await consumer.stop()
