"""Reading back records Faust's consumer skipped (``domain.holes``).

Around a restart Faust's consumer now and then goes past a record without
delivering it: one in flight when the flow stopped, or the records between a
restored table and a committed offset ahead of it. An agent that stores the
last offset it applied per source partition sees the hole in the next batch
and reads the missing records from the log with a consumer of its own (not
by seeking Faust's, which would race with the records it has in flight).

    ledger = OffsetLedger(table, b"__offsets__")
    items = await ledger.fill([(topic, partition, offset, value), ...])  # arrival order, holes filled
    ... apply items ...
    ledger.save()  # with the agent's other state, after its outputs were acknowledged
"""

import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from domain.holes import holes
from streams.app import settings

log = logging.getLogger(__name__)

Item = tuple[str, int, int, bytes]
"""(topic, partition, offset, value)."""


@dataclass
class RefetchStats:
    holes: int = 0
    """Runs of records the consumer skipped."""
    records: int = 0
    """Records read back from the log to fill them."""


stats = RefetchStats()


async def read_missing(
    topic: str, partition: int, missing: list[tuple[int, int]], *, bootstrap: str | None = None, timeout_s: float = 30.0
) -> list[tuple[int, bytes]]:
    """Read the records in the ``[start, end)`` ranges of a partition from the log.

    Records no longer in the log (expired) are missing from the answer; the
    caller sees the hole again and counts them lost.
    """
    log.warning("%s partition %d: records %s skipped by the consumer: reading them from the log",
                topic, partition, ", ".join(f"{a}-{b - 1}" for a, b in missing))  # fmt: skip
    stats.holes += len(missing)
    tp = TopicPartition(topic, partition)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap or settings.bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest", check_crcs=False)  # fmt: skip
    out: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + timeout_s
    try:
        await consumer.start()
        consumer.assign([tp])
        for start, end in missing:
            consumer.seek(tp, start)
            position = start
            while position < end and time.monotonic() < deadline:
                fetched = await consumer.getmany(tp, timeout_ms=500, max_records=1000)
                for record in fetched.get(tp, []):
                    if record.offset < end and record.value is not None:
                        out.append((record.offset, record.value))
                    position = max(position, record.offset + 1)
            if position < end:
                log.error("%s partition %d: records %d-%d not read back in %.0fs", topic, partition, position, end - 1,
                          timeout_s)  # fmt: skip
    finally:
        await consumer.stop()
    stats.records += len(out)
    return out


class OffsetLedger:
    """The last offset an agent applied per (topic, partition), kept in its table under one key."""

    def __init__(self, table: Any, key: bytes) -> None:
        self.table = table
        self.key = key
        self.last: dict[tuple[str, int], int] | None = None
        self.legacy = False
        """State written before offsets were kept: where the consumer resumes is all there is to go on."""

    def forget(self) -> None:
        """After a rebalance: read from the table again."""
        self.last = None

    def _load(self, items: list[Item], fresh: bool) -> dict[tuple[str, int], int]:
        if self.last is None:
            raw = self.table.get(self.key)
            self.last = {}
            for name, offset in (orjson.loads(raw) if raw else {}).items():
                topic, _, partition = name.rpartition(":")
                self.last[(topic, int(partition))] = offset
            self.legacy = raw is None and not fresh
        for topic, partition, offset, _ in items:
            if (topic, partition) not in self.last:
                self.last[(topic, partition)] = offset - 1 if self.legacy else -1  # else its first record is 0
        return self.last

    async def fill(self, items: list[Item], *, fresh: bool) -> list[Item]:
        """``items`` (arrival order) with the records the consumer skipped, each before the first one beyond it.

        ``fresh``: the agent has no state yet (its partitions start at offset 0); with
        state but no ledger in the table, each partition is trusted to resume
        where the consumer did.
        """
        last = self._load(items, fresh)
        by_tp: dict[tuple[str, int], list[int]] = {}
        for topic, partition, offset, _ in items:
            by_tp.setdefault((topic, partition), []).append(offset)
        fetched: dict[tuple[str, int], list[tuple[int, bytes]]] = {}
        for (topic, partition), offsets in by_tp.items():
            missing = holes(last[(topic, partition)], offsets)
            if missing:
                fetched[(topic, partition)] = await read_missing(topic, partition, missing)
        if not fetched:
            return items
        waiting = {tp: deque(records) for tp, records in fetched.items()}
        out: list[Item] = []
        for topic, partition, offset, value in items:
            queue = waiting.get((topic, partition))
            while queue and queue[0][0] < offset:
                out.append((topic, partition, *queue.popleft()))
            out.append((topic, partition, offset, value))
        return out

    def applied(self, items: list[Item]) -> None:
        """Record the batch as applied (in memory; ``save`` writes it)."""
        assert self.last is not None, "fill() first"
        for topic, partition, offset, _ in items:
            if offset > self.last.get((topic, partition), -1):
                self.last[(topic, partition)] = offset

    def save(self) -> None:
        if self.last is not None:
            self.table[self.key] = orjson.dumps({f"{t}:{p}": o for (t, p), o in self.last.items()})
