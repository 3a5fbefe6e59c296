"""Reading back records Faust's consumer skipped (``domain.holes``).

Around a restart Faust's consumer now and then goes past a record without
delivering it: one in flight when the flow stopped, or the records between a
restored table and a committed offset ahead of it. An agent that stores the
last offset it applied per source partition sees the hole in the next batch
and reads the missing records from the log with a consumer of its own (not
by seeking Faust's, which would race with the records it has in flight).

    ledger = OffsetLedger(table)
    items = await ledger.fill([(topic, partition, offset, value), ...], fresh=lambda: no_state_yet)
    ... apply items ...
    ledger.save()  # with the agent's other state, after its outputs were acknowledged
"""

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

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


LEDGER_PREFIX = b"\x1doffset\x1f"


def ledger_key(topic: str, partition: int) -> bytes:
    """The table key of a partition's last applied offset (``ledger_partition`` routes it)."""
    return LEDGER_PREFIX + f"{topic}\x1f{partition}".encode()


def ledger_partition(key: bytes) -> int:
    return int(key.rsplit(b"\x1f", 1)[1])


class OffsetLedger:
    """The last offset an agent applied per (topic, partition), one table key each (``ledger_key``)."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.last: dict[tuple[str, int], int] = {}
        self.dirty: set[tuple[str, int]] = set()

    def forget(self) -> None:
        """After a rebalance: read from the table again."""
        self.last.clear()
        self.dirty.clear()

    def _last(self, tp: tuple[str, int], first: int, fresh: Callable[[], bool]) -> int:
        if tp not in self.last:
            raw = self.table.get(ledger_key(*tp))
            # no entry: a new agent starts at 0; state written before offsets were kept trusts the consumer
            self.last[tp] = int(raw) if raw else (-1 if fresh() else first - 1)
        return self.last[tp]

    async def fill(self, items: list[Item], *, fresh: Callable[[], bool]) -> list[Item]:
        """``items`` (arrival order) with the records the consumer skipped, each before the first one beyond it.

        ``fresh()``: the agent has no state yet, so a partition without an
        entry starts at offset 0 (with state, it resumes where the consumer did).
        """
        by_tp: dict[tuple[str, int], list[int]] = {}
        for topic, partition, offset, _ in items:
            by_tp.setdefault((topic, partition), []).append(offset)
        fetched: dict[tuple[str, int], list[tuple[int, bytes]]] = {}
        for (topic, partition), offsets in by_tp.items():
            missing = holes(self._last((topic, partition), offsets[0], fresh), offsets)
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

    async def behind(self, resume_at: Mapping[tuple[str, int], int]) -> list[Item]:
        """The records between the last applied offset of each partition and where its consumer resumes.

        A record skipped last in its partition shows no hole until another one
        arrives; an agent calls this once its consumer knows its committed
        offsets. A partition without an entry is trusted.
        """
        out: list[Item] = []
        for (topic, partition), position in sorted(resume_at.items()):
            last = self._last((topic, partition), position, fresh=lambda: False)
            if position > last + 1:
                out += [(topic, partition, *r) for r in await read_missing(topic, partition, [(last + 1, position)])]
        return out

    def applied(self, items: list[Item]) -> None:
        """Record the batch as applied (in memory; ``save`` writes what changed)."""
        for topic, partition, offset, _ in items:
            if offset > self.last.get((topic, partition), -1):
                self.last[(topic, partition)] = offset
                self.dirty.add((topic, partition))

    def save(self) -> None:
        for tp in self.dirty:
            self.table[ledger_key(*tp)] = str(self.last[tp]).encode()
        self.dirty.clear()
