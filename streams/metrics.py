"""Agents ``aggregate_windows`` and ``close_windows``: live metrics and anomaly detection.

Stage 1, ``aggregate_windows``
    Input topic: ``workflow-events`` (raw bytes, batches of up to 5,000 records).
    Output topics: ``metric-partials`` (one partition): each source partition's
    final partial of a (series, window), then its watermark (only when it
    lets the next stage close a window); and, while alerting is on,
    ``metric-panes``: the same for half-second panes, which the alert agent
    merges into rolling windows (``streams.alerts``).
    Table: ``metric_partition_windows`` (source partition -> open windows,
    watermark and last applied offset; ``<partition>:panes`` -> its panes),
    written once per batch, after the partials it closed were acknowledged.
    Timer ``advance_idle_partitions`` moves a quiet partition's watermark to
    wall time, so windows and panes close when traffic stops.

Stage 2, ``close_windows``
    Input topic: ``metric-partials``.
    Output topics: ``metric-windows`` (``MetricWindowClosed``) and
    ``anomalies`` (``AnomalyDetected``), acknowledged before the state that
    records them is written.
    Table: ``metric_series`` (series -> pending windows and its detectors,
    pickled), plus the watermark of each source partition under ``__clock__``.

Dead letters: none here; records that fail validation are counted and skipped
(the projector dead-letters them with their offsets).

Delivery: every event is counted once. Stage 1 skips records at or below the
offset its state has applied, and before a record beyond the next one it
reads the records the consumer skipped (around a rebalance) from the log
(``domain.holes``); stage 2 does the same with an ``OffsetLedger``
(``streams.ledger``) and applies each (partition, window) partial once;
emitted ids derive from (series, window), so a record re-sent after a crash
collapses in ClickHouse. Detector state is checkpointed in the
changelogged ``metric_series`` table and restored with it.
"""

import asyncio
import logging
import math
import pickle
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from faust.types import TP

from domain.anomaly import SeriesDetector
from domain.detection import DEFAULT_THRESHOLD, score_window, window_record
from domain.holes import holes, splice
from domain.rolling import live, pane_config
from domain.windows import (
    Clock,
    Partial,
    PartitionWindows,
    Series,
    SeriesWindows,
    WindowConfig,
    closable_through,
    observations,
    summarize,
)
from schemas import topics
from schemas.envelope import Envelope
from schemas.registry import decode, to_json
from streams import ingest_stats
from streams.app import app, routed_table, settings
from streams.ledger import LEDGER_PREFIX, OffsetLedger, read_missing

log = logging.getLogger(__name__)

WINDOW = WindowConfig(
    size_s=settings.flowledger_metrics_window_s,
    grace_s=settings.flowledger_metrics_grace_s,
    idle_s=settings.flowledger_metrics_idle_s,
    empty_windows=settings.flowledger_metrics_empty_windows,
)
PANES = pane_config(pane_s=settings.flowledger_alert_pane_s, span_s=WINDOW.size_s,
                    quiet_s=WINDOW.size_s * WINDOW.empty_windows)  # fmt: skip
PANES_ON = settings.workflow_monitoring_enabled
"""Panes exist for the alert rules; with monitoring off nobody reads them."""
SOURCE_PARTITIONS = topics.PARTITIONS[topics.WORKFLOW_EVENTS]
CLOCK_KEY = b"__clock__"
THRESHOLD = settings.flowledger_anomaly_threshold or DEFAULT_THRESHOLD


@dataclass
class MetricsStats:
    events: int = 0
    late: int = 0
    windows: int = 0
    anomalies: int = 0
    detector_points: int = 0
    detector_ns: int = 0
    lost: int = 0
    """Records never applied: gone from the log before they could be read back."""

    def as_counts(self) -> dict[str, int]:
        return dict(self.__dict__)


stats = MetricsStats()


events_topic = app.topic(topics.WORKFLOW_EVENTS, value_serializer="raw", key_serializer="raw")
partials_topic = app.topic(topics.METRIC_PARTIALS, value_serializer="raw", key_serializer="raw", partitions=1)
panes_topic = app.topic(topics.METRIC_PANES, value_serializer="raw", key_serializer="raw", partitions=1)
windows_topic = app.topic(topics.METRIC_WINDOWS, value_serializer="raw", key_serializer="raw")
anomalies_topic = app.topic(topics.ANOMALIES, value_serializer="raw", key_serializer="raw")

partition_windows = routed_table(
    "metric_partition_windows", SOURCE_PARTITIONS, route=lambda key: int(key.split(b":")[0])
)
"""Source partition number -> its open windows (``<n>:panes``: its panes); each in its own partition's changelog."""
series_table = routed_table("metric_series", 1, route=lambda key: 0)
"""Series -> its pending windows and detectors, co-partitioned with ``metric-partials`` (one partition)."""


# ---------------------------------------------------------------- stage 1


class Stage1:
    """Open windows per source partition, cached decoded; the table holds the durable copy."""

    def __init__(self) -> None:
        self.cache: dict[bytes, PartitionWindows] = {}
        self.lock = asyncio.Lock()
        self.sent: dict[tuple[str, int], float] = {}
        """(topic, source partition) -> the watermark last sent there (in this process)."""

    def load(self, partition: int, *, now: float, panes: bool = False) -> PartitionWindows:
        key = f"{partition}:panes".encode() if panes else str(partition).encode()
        state = self.cache.get(key)
        if state is None:
            raw = partition_windows.get(key)
            state = (
                PartitionWindows.from_json(orjson.loads(raw))
                if raw
                else PartitionWindows(partition, last_event_wall=now)
            )
            self.cache[key] = state
        return state

    def forget(self) -> None:
        self.cache.clear()
        self.sent.clear()

    async def publish(self, states: list[PartitionWindows], panes: list[PartitionWindows]) -> None:
        """Send what closed, and any watermark that lets the next stage close more; once acknowledged, write the states.

        One message per partition and topic, its closed partials then its
        watermark, and none when it has neither: a watermark that closes no
        further window downstream (``closable_through``) waits for one that
        does. Most batches move the watermark by milliseconds, and every message
        is one more batch in a partition the next stage fetches.
        """
        sent = []
        for name, topic, config, group in (
            (topics.METRIC_PARTIALS, partials_topic, WINDOW, states),
            (topics.METRIC_PANES, panes_topic, PANES, panes),
        ):
            for state in group:
                closed = [[list(series), start, p.to_json()] for series, start, p in state.close_ready(config)]
                last = self.sent.get((name, state.partition), -math.inf)
                if not closed and closable_through(state.watermark, config) <= closable_through(last, config):
                    continue
                watermark = state.watermark if math.isfinite(state.watermark) else None
                for message in pack(state.partition, closed, watermark):
                    sent.append(await topic.send(key=b"metrics", value=message, partition=0))
                self.sent[(name, state.partition)] = state.watermark
        await asyncio.gather(*sent)
        for state in states:
            partition_windows[str(state.partition).encode()] = orjson.dumps(state.to_json())
        for state in panes:
            partition_windows[f"{state.partition}:panes".encode()] = orjson.dumps(state.to_json())


stage1 = Stage1()
MAX_MESSAGE_BYTES = 256 * 1024
"""Well under Kafka's default 1 MB request: a jump in event time can close thousands of panes at once."""


def pack(partition: int, closed: list[Any], watermark: float | None, max_bytes: int = MAX_MESSAGE_BYTES) -> list[bytes]:
    """One partition's closed partials in messages of at most about ``max_bytes``, the watermark on the last one.

    The next stage reads the watermark only after every partial before it, so
    a window never closes with a partial still in flight.
    """
    encoded = [orjson.dumps(item) for item in closed]
    chunks: list[list[bytes]] = [[]]
    size = 0
    for item in encoded:
        if chunks[-1] and size + len(item) > max_bytes:
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += len(item) + 1
    head = b'{"p":%d,"partials":[' % partition
    marks = [b"null"] * (len(chunks) - 1) + [orjson.dumps(watermark)]
    return [head + b",".join(chunk) + b'],"wm":' + mark + b"}" for chunk, mark in zip(chunks, marks, strict=True)]


EVENT_HOOKS: list[Callable[[list[Envelope]], Awaitable[None]]] = []
"""Other consumers of the same batches, decoded once (``streams.recovery``): one Faust stream over the busiest
topic, not two."""


@app.agent(events_topic)
async def aggregate_windows(stream):  # type: ignore[no-untyped-def]
    async for events in stream.take_events(5000, within=0.05):
        passed = await _aggregate(events)
        for hook in EVENT_HOOKS:
            try:
                await hook(passed)
            except Exception:  # a bug there must not stop the metrics
                log.exception("event hook %s failed on a batch of %d", getattr(hook, "__name__", hook), len(passed))


async def _aggregate(events: list[Any]) -> list[Envelope]:
    """Apply a batch, with any records the consumer skipped before it; returns the records applied or replayed."""
    by_partition: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
    for event in events:
        by_partition[event.message.partition].append((event.message.offset, event.value))
    passed: list[Envelope] = []
    async with stage1.lock:
        now = time.time()
        states, panes = [], []
        for partition, items in by_partition.items():
            state = stage1.load(partition, now=now)
            pane = stage1.load(partition, now=now, panes=True) if PANES_ON else None
            missing = holes(state.last_offset, (offset for offset, _ in items))
            if missing:
                items = splice(items, await read_missing(topics.WORKFLOW_EVENTS, partition, missing))
            passed += absorb(state, items, now=now, panes=pane)
            states.append(state)
            panes += [pane] if pane else []
        stats.late = sum(s.late_total for k, s in stage1.cache.items() if b":" not in k)
        await stage1.publish(states, panes)
    return passed


def absorb(
    state: PartitionWindows, items: list[tuple[int, bytes]], *, now: float, panes: PartitionWindows | None = None
) -> list[Envelope]:
    """Decode one partition's records, count them, and add what they observe to its windows (and panes).

    Returns the valid records applied or replayed (what the batch's other consumers get).
    """
    seen: list[tuple[str, str]] = []
    passed: list[Envelope] = []
    for offset, value in items:
        if offset <= state.last_offset:  # applied before a restart: replayed from the last committed offset
            passed += decode(value)[0]
            continue
        if offset != state.last_offset + 1:  # only when the log no longer has them (see streams.ledger)
            log.error("partition %d: record %d applied after %d, %d records never seen",
                      state.partition, offset, state.last_offset, offset - state.last_offset - 1)  # fmt: skip
            stats.lost += offset - state.last_offset - 1
        good, bad = decode(value)
        passed += good
        ingest_stats.skipped += len(bad)
        seen += [(r.tenant_id, r.type) for r in good]
        observed = [o for record in good for o in observations(record)]
        state.observe(offset, observed, now=now, config=WINDOW)
        if panes is not None:
            panes.observe(offset, live(observed, now=now), now=now, config=PANES)
    ingest_stats.counts.observe(seen, now=now)
    stats.events += len(seen)
    return passed


def tables_settled() -> bool:
    """The tables hold the current state: recovered once, and no rebalance or recovery is under way.

    Timers keep running through both; one that read a table then would cache
    state older than the offsets already committed, and lose those events.
    """
    recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
    return bool(recovered and not app.rebalancing and not app.in_recovery)


@app.timer(interval=PANES.idle_s / 4)
async def advance_idle_partitions() -> None:
    if not tables_settled():
        return
    assigned = sorted(tp.partition for tp in app.consumer.assignment() if tp.topic == topics.WORKFLOW_EVENTS)
    async with stage1.lock:
        now = time.time()
        states = [stage1.load(partition, now=now) for partition in assigned]
        # Quiet is not idle: a partition whose records wait unread (a worker catching up) keeps its watermark.
        caught_up = {state.partition for state in states if _read_to_end(state)}
        advanced = [s for s in states if s.partition in caught_up and s.idle_advance(now=now, config=WINDOW)]
        panes = [stage1.load(partition, now=now, panes=True) for partition in caught_up] if PANES_ON else []
        panes = [pane for pane in panes if pane.idle_advance(now=now, config=PANES)]
        if advanced or panes:
            await stage1.publish(advanced, panes)


def _read_to_end(state: PartitionWindows) -> bool:
    """Every record of the partition the consumer knows of has been applied (its end offset is known)."""
    try:
        end = app.consumer.highwater(TP(topics.WORKFLOW_EVENTS, state.partition))
    except Exception:  # no fetch answered for it yet
        return False
    return end is not None and state.last_offset + 1 >= end


@app.on_partitions_revoked.connect  # type: ignore[arg-type]  # faust types the handler loosely
async def _forget_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
    """A revoked partition's state is re-read from the table if it comes back."""
    stage1.forget()
    stage2.cache.clear()
    stage2.pending = None
    stage2.clock = None
    stage2.ledger.forget()
    stage2.closed_at = -math.inf


# ---------------------------------------------------------------- stage 2


@dataclass
class SeriesState:
    windows: SeriesWindows = field(default_factory=SeriesWindows)
    detectors: dict[str, SeriesDetector] = field(default_factory=dict)


def series_id(series: Series) -> bytes:
    return "\x1f".join(series).encode()


def parse_series_id(sid: bytes) -> Series:
    tenant, scope, key, service = sid.decode().split("\x1f")
    return (tenant, scope, key, service)


class Stage2:
    def __init__(self) -> None:
        self.cache: dict[bytes, SeriesState] = {}
        self.clock: Clock | None = None
        self.closed_at = -math.inf
        """The watermark up to which windows were last closed (in this process)."""
        self.pending: set[bytes] | None = None
        """Series not dormant: windows pending, or empty windows still owed (rebuilt from the table after a restart)."""
        self.ledger = OffsetLedger(series_table)
        """The last offset of ``metric-partials`` applied."""

    def load(self, sid: bytes) -> SeriesState:
        state = self.cache.get(sid)
        if state is None:
            raw = series_table.get(sid)
            state = pickle.loads(raw) if raw else SeriesState()  # noqa: S301 - written by this module only
            self.cache[sid] = state
        return state

    def load_clock(self) -> Clock:
        if self.clock is None:
            raw = series_table.get(CLOCK_KEY)
            self.clock = Clock.from_json(SOURCE_PARTITIONS, orjson.loads(raw) if raw else None)
        return self.clock

    def pending_series(self) -> set[bytes]:
        if self.pending is None:
            self.pending = {
                bytes(k)
                for k in series_table.keys()
                if k != CLOCK_KEY and not bytes(k).startswith(LEDGER_PREFIX)
                and not self.load(bytes(k)).windows.dormant(WINDOW)
            }
        return self.pending


stage2 = Stage2()


@app.agent(partials_topic)
async def close_windows(stream):  # type: ignore[no-untyped-def]
    async for events in stream.take_events(2000, within=0.05):
        clock, pending = stage2.load_clock(), stage2.pending_series()
        items = [(e.message.topic, e.message.partition, e.message.offset, e.value) for e in events]
        # a partial or a watermark the consumer skipped would make a window wrong or late
        items = await stage2.ledger.fill(items, fresh=lambda: series_table.get(CLOCK_KEY) is None)
        touched: set[bytes] = set()
        for _topic, _partition, _offset, value in items:
            message = orjson.loads(value)
            partition = message["p"]
            for series, start, partial in message["partials"]:
                sid = series_id(tuple(series))
                if stage2.load(sid).windows.add(partition, start, Partial.from_json(partial)):
                    touched.add(sid)
                    pending.add(sid)
            if message["wm"] is not None:
                clock.report(partition, message["wm"])
        if clock.watermark > stage2.closed_at:
            # a partial always reaches this stage before its partition's watermark passes its window,
            # so nothing can close unless the watermark moved
            stage2.closed_at = clock.watermark
            await _close_ready(clock.watermark, pending, touched)
        else:
            _write(touched)
        series_table[CLOCK_KEY] = orjson.dumps(clock.to_json())
        stage2.ledger.applied(items)
        stage2.ledger.save()


async def _close_ready(watermark: float, pending: set[bytes], touched: set[bytes]) -> None:
    """Close what every partition has finished; send windows and anomalies, then record that they were sent."""
    outputs: list[tuple[Any, Envelope]] = []
    changed = set(touched)
    for sid in list(pending):
        state = stage2.load(sid)
        closed = state.windows.close(watermark, WINDOW)
        if state.windows.dormant(WINDOW):
            pending.discard(sid)
        if not closed:
            continue
        changed.add(sid)
        series = parse_series_id(sid)
        for start, partial in closed:
            window = window_record(series, start, partial, WINDOW)
            started = time.perf_counter_ns()
            anomalies, points = score_window(
                series, start, summarize(partial, WINDOW.size_s), state.detectors, config=WINDOW, threshold=THRESHOLD
            )
            stats.detector_ns += time.perf_counter_ns() - started
            stats.detector_points += points
            stats.windows += 1
            stats.anomalies += len(anomalies)
            outputs.append((windows_topic, window))
            outputs += [(anomalies_topic, anomaly) for anomaly in anomalies]
    sent = [await topic.send(key=sid_key(record), value=to_json(record)) for topic, record in outputs]
    await asyncio.gather(*sent)
    _write(changed)


def _write(sids: set[bytes]) -> None:
    for sid in sids:
        series_table[sid] = pickle.dumps(stage2.load(sid))


def sid_key(record: Envelope) -> bytes:
    return f"{record.tenant_id}/{record.payload.scope}/{record.payload.key}".encode()
