"""The projector: Kafka topics -> ClickHouse tables, at-least-once, idempotent.

Input topics: every topic in ``schemas.topics.PROJECTED_TOPICS`` plus
``dead-letters``. Output: the ``events`` archive, ``runs``, ``steps`` and
``dead_letters`` tables; bad records are published to ``dead-letters``.

Delivery: offsets are committed only after the batch's inserts succeeded (and
its dead letters were acknowledged by the broker). A crash replays at most the
uncommitted batch; the tables absorb the duplicates (ReplacingMergeTree keys
plus idempotent read-time folds), so nothing is lost or double-counted.

It is a plain aiokafka loop rather than a Faust agent: the per-message cost
of Faust would cap it far below the ingest rate. Decoding (parse, validate,
build rows, encode Arrow) runs in worker processes (``projections.decoding``);
this process only inserts, so in embedded mode the API it shares a process
with stays responsive. It assigns itself every
partition (one projector owns an embedded ClickHouse), which also avoids
consumer-group rebalance stalls on restart; committed offsets still live in
the broker under ``group_id``.
"""

import asyncio
import logging
import os
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from domain.distribution import Distribution
from projections.arrow import batch_to_ipc
from projections.decoding import EncodedSlice, SliceEncoder
from projections.live import LiveHub
from projections.rows import ProjectionBatch
from projections.warehouse import Warehouse
from schemas import topics
from schemas.monitoring import WorkerHeartbeat, WorkerHeartbeatPayload, worker_heartbeat
from schemas.registry import to_json

log = logging.getLogger(__name__)

DEFAULT_GROUP = "flowledger-projector"

BATCH_RECORDS_BUCKETS = (1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0)
BATCH_SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class PartitionProgress:
    position: int = 0
    """Next offset to project (= committed offset)."""
    highwater: int | None = None
    """End of the partition as last reported by a fetch."""
    last_record_at: float | None = None

    @property
    def lag(self) -> int | None:
        return None if self.highwater is None else max(self.highwater - self.position, 0)


@dataclass
class ProjectorStats:
    started_at: float = field(default_factory=time.time)
    batches: int = 0
    records: int = 0
    dead_letters: int = 0
    last_batch_records: int = 0
    last_flush_ms: float = 0.0
    last_error: str | None = None
    last_flush_at: float | None = None
    fetch_s: float = 0.0
    """Cumulative seconds in getmany (fetch and record parsing)."""
    decode_wait_s: float = 0.0
    """Cumulative seconds the loop waited for decoding workers."""
    insert_s: float = 0.0
    """Cumulative seconds inserting into ClickHouse."""
    partitions: dict[str, PartitionProgress] = field(default_factory=dict)
    batch_records: Distribution = field(default_factory=lambda: Distribution(BATCH_RECORDS_BUCKETS))
    """Records per committed slice."""
    batch_seconds: Distribution = field(default_factory=lambda: Distribution(BATCH_SECONDS_BUCKETS))
    """From a slice's fetch to its commit: decoding, dead letters, insert and commit."""


class Projector:
    def __init__(
        self,
        bootstrap_servers: str,
        warehouse: Warehouse,
        *,
        group_id: str = DEFAULT_GROUP,
        source_topics: tuple[str, ...] = (*topics.PROJECTED_TOPICS, topics.DEAD_LETTERS),
        max_records: int = 1_000,
        workers: int = 1,
        heartbeat_every_s: float = 5.0,
        linger_s: float = 0.2,
        hub: LiveHub | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.warehouse = warehouse
        self.group_id = group_id
        self.source_topics = source_topics
        self.max_records = max_records
        self.workers = workers
        self.stats = ProjectorStats()
        self.ready = asyncio.Event()
        self.heartbeat_every_s = heartbeat_every_s
        self.linger_s = linger_s
        self.worker_id = f"projector-{socket.gethostname()}-{os.getpid()}"
        self._last_heartbeat = 0.0
        self._records_at_heartbeat = 0
        self.hub = hub
        """Where committed slices' summaries go; they are built only while someone subscribes."""

    async def run(self, stopping: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=16 << 20,
            fetch_max_bytes=64 << 20,
            # aiokafka verifies CRC32C in software, on the event-loop thread: half
            # the cost of a fetch in our profiles. Brokers verify it on produce and
            # TCP checksums the hop; every record is validated again on decode.
            check_crcs=False,
            # How long the broker may hold a fetch waiting for data: bounds the
            # latency an idle-then-busy partition adds (aiokafka's default is 500 ms).
            fetch_max_wait_ms=50,
        )
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers, linger_ms=5)
        encoder = SliceEncoder(self.workers)
        await consumer.start()
        await producer.start()
        try:
            await self._assign_all(consumer)
            await encoder.warm_up()
            self.ready.set()
            await self._consume(consumer, producer, encoder, stopping)
        finally:
            await consumer.stop()
            await producer.stop()
            encoder.close()

    async def _consume(self, consumer, producer, encoder: SliceEncoder, stopping: asyncio.Event) -> None:  # type: ignore[no-untyped-def]
        """Keep the decoding workers busy while the owner inserts.

        Up to ``workers + 1`` slices are in flight; they are finished strictly
        in fetch order, and each one's offsets are committed only after its
        dead letters were acknowledged and its rows inserted.
        """
        in_flight: deque[tuple[dict, asyncio.Future[EncodedSlice], float]] = deque()  # type: ignore[type-arg]
        try:
            while not stopping.is_set():
                started = time.perf_counter()
                fetched = await self._fetch_slice(consumer)
                if fetched:
                    self.stats.fetch_s += time.perf_counter() - started
                    raw = [(m.topic, m.partition, m.offset, m.value) for ms in fetched.values() for m in ms]
                    summarize = self.hub is not None and self.hub.active
                    in_flight.append((fetched, asyncio.ensure_future(encoder.encode(raw, summarize)), started))
                else:
                    self._note_idle(consumer)
                await self._maybe_heartbeat(producer)
                while in_flight and (len(in_flight) > max(self.workers, 1) or not fetched):
                    done_fetch, future, fetched_at = in_flight.popleft()
                    started = time.perf_counter()
                    encoded = await future
                    self.stats.decode_wait_s += time.perf_counter() - started
                    await self._finish(consumer, producer, done_fetch, encoded, stopping)
                    self.stats.batch_seconds.observe(time.perf_counter() - fetched_at)
        finally:
            for done_fetch, future, fetched_at in in_flight:
                await self._finish(consumer, producer, done_fetch, await future, stopping)
                self.stats.batch_seconds.observe(time.perf_counter() - fetched_at)

    async def _maybe_heartbeat(self, producer) -> None:  # type: ignore[no-untyped-def]
        now = time.time()
        if now - self._last_heartbeat < self.heartbeat_every_s:
            return
        stats = self.stats
        rate = (stats.records - self._records_at_heartbeat) / max(now - self._last_heartbeat, 1e-9)
        self._last_heartbeat, self._records_at_heartbeat = now, stats.records
        beat = heartbeat(self.worker_id, stats, rate)
        await producer.send(topics.WORKER_HEARTBEATS, to_json(beat), key=b"all")

    async def _fetch_slice(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, list[Any]]:
        """Up to ``max_records`` messages; a slice that starts small waits up to
        ``linger_s`` for more, since each insert has a fixed cost that a trickle
        of tiny slices would pay over and over."""
        fetched: dict[TopicPartition, list[Any]] = await consumer.getmany(timeout_ms=100, max_records=self.max_records)
        count = sum(len(m) for m in fetched.values())
        deadline = time.perf_counter() + self.linger_s
        while fetched and count < self.max_records and (left := deadline - time.perf_counter()) > 0:
            more = await consumer.getmany(timeout_ms=int(left * 1000) + 1, max_records=self.max_records - count)
            for tp, messages in more.items():
                fetched.setdefault(tp, []).extend(messages)
                count += len(messages)
        return fetched

    async def _finish(self, consumer, producer, fetched, encoded: EncodedSlice, stopping) -> None:  # type: ignore[no-untyped-def]
        for letter in encoded.new_dead_letters:
            log.warning("dead letter %s: %s", letter.source, letter.reason)
            await producer.send_and_wait(topics.DEAD_LETTERS, letter.model_dump_json().encode())
        await self._flush_until_done(encoded, stopping)
        offsets = {tp: OffsetAndMetadata(msgs[-1].offset + 1, "") for tp, msgs in fetched.items()}
        await consumer.commit(offsets)
        self._note_progress(consumer, fetched, encoded)
        if encoded.summaries and self.hub is not None:
            self.hub.publish(encoded.summaries)

    async def _assign_all(self, consumer: AIOKafkaConsumer) -> None:
        await consumer.topics()  # refreshes metadata
        partitions = []
        for topic in self.source_topics:
            ids = consumer.partitions_for_topic(topic) or set()
            if not ids:
                log.warning("topic %s has no partitions yet; run `flowledger init`", topic)
            partitions += [TopicPartition(topic, p) for p in sorted(ids)]
        consumer.assign(partitions)
        for tp in partitions:
            self.stats.partitions[f"{tp.topic}[{tp.partition}]"] = PartitionProgress(
                position=await consumer.position(tp)
            )

    async def _flush_until_done(self, result: EncodedSlice, stopping: asyncio.Event) -> None:
        """Insert the batch; on failure retry with capped backoff, never skip it."""
        delay = 0.5
        while True:
            started = time.perf_counter()
            try:
                await asyncio.to_thread(insert_encoded, self.warehouse, result)
            except Exception as exc:
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("projector insert failed; retrying in %.1fs", delay)
                if stopping.is_set():
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            self.stats.last_flush_ms = (time.perf_counter() - started) * 1000
            self.stats.insert_s += self.stats.last_flush_ms / 1000
            self.stats.last_error = None
            return

    def _note_progress(self, consumer, fetched, result: EncodedSlice) -> None:  # type: ignore[no-untyped-def]
        stats = self.stats
        stats.batches += 1
        stats.records += result.records
        stats.dead_letters += len(result.new_dead_letters)
        stats.last_batch_records = result.records
        stats.batch_records.observe(result.records)
        stats.last_flush_at = time.time()
        for tp, msgs in fetched.items():
            progress = stats.partitions.setdefault(f"{tp.topic}[{tp.partition}]", PartitionProgress())
            progress.position = msgs[-1].offset + 1
            progress.highwater = consumer.highwater(tp)
            progress.last_record_at = time.time()

    def _note_idle(self, consumer) -> None:  # type: ignore[no-untyped-def]
        for tp in consumer.assignment():
            progress = self.stats.partitions.get(f"{tp.topic}[{tp.partition}]")
            highwater = consumer.highwater(tp)
            if progress is not None and highwater is not None:
                progress.highwater = highwater


def lag_by_topic(stats: ProjectorStats) -> dict[str, int]:
    """Records behind the end of each topic (partitions with a known end only)."""
    lag: dict[str, int] = {}
    for name, progress in stats.partitions.items():
        if progress.lag is not None:
            topic = name.split("[", 1)[0]
            lag[topic] = lag.get(topic, 0) + progress.lag
    return lag


def heartbeat(worker_id: str, stats: ProjectorStats, rate: float) -> WorkerHeartbeat:
    payload = WorkerHeartbeatPayload(
        worker=worker_id,
        role="projector",
        agent_counts={"records": stats.records, "batches": stats.batches, "dead_letters": stats.dead_letters},
        events_per_s=round(max(rate, 0.0), 3),
        lag=lag_by_topic(stats),
        started_at=datetime.fromtimestamp(stats.started_at, UTC),
    )
    return worker_heartbeat(payload, now=datetime.now(UTC))


def insert_encoded(warehouse: Warehouse, encoded: EncodedSlice) -> None:
    """Write one slice. The archive goes first so a partial failure never leaves
    derived rows without their source event (the retry rewrites everything)."""
    for table, columns, stream in encoded.tables:
        warehouse.insert_arrow_stream(table, columns, stream)


def flush(warehouse: Warehouse, batch: ProjectionBatch) -> None:
    """Write a batch built in this process (replay, tests)."""
    insert_encoded(warehouse, EncodedSlice(batch_to_ipc(batch), [], 0))
