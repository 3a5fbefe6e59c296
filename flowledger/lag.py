"""Consumer lag, read from the broker: each group's committed offsets against the end of each partition.

The end of a partition is the high watermark a fetch response reports. The
embedded broker answers ``ListOffsets`` (``end_offsets``) with a count of
record batches rather than records once producers batch, so it is not used;
fetch high watermarks are exact on both brokers.

>>> from aiokafka import TopicPartition as TP
>>> committed = {"g": {TP("t", 0): 5, TP("t", 1): -1, TP("u", 0): -1}}
>>> lag_by_group_topic(committed, {TP("t", 0): 8, TP("t", 1): 2, TP("u", 0): 4})
{('g', 't'): 5}
"""

import asyncio
import time
from collections.abc import Iterable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

Committed = Mapping[str, Mapping[TopicPartition, int]]
"""group -> partition -> committed offset (``-1``: the group never committed there)."""


def lag_by_group_topic(committed: Committed, ends: Mapping[TopicPartition, int]) -> dict[tuple[str, str], int]:
    """Records behind the end, summed per (group, topic), for topics the group has committed on.

    A partition of such a topic the group never committed on counts from offset 0
    (the groups here start from the earliest offset); a partition whose end is
    unknown is left out.
    """
    consumed = {(group, tp.topic) for group, offsets in committed.items() for tp, at in offsets.items() if at >= 0}
    lag: dict[tuple[str, str], int] = {}
    for group, offsets in committed.items():
        for tp, at in offsets.items():
            if (group, tp.topic) in consumed and tp in ends:
                lag[(group, tp.topic)] = lag.get((group, tp.topic), 0) + max(ends[tp] - max(at, 0), 0)
    return lag


def end_reader(bootstrap: str) -> AIOKafkaConsumer:
    """A consumer for ``high_watermarks``: it reads the high watermark of each fetch response, not its records."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
        # the embedded broker never answers a fetch that may not wait at all (0 ms)
        max_partition_fetch_bytes=1024, fetch_max_wait_ms=10, check_crcs=False,
    )  # fmt: skip


async def consumer_lag(
    bootstrap: str, groups: Iterable[str], topic_names: Iterable[str], *, timeout_s: float = 5.0
) -> dict[tuple[str, str], int]:
    """Lag of every (group, topic) pair in which the group has committed an offset."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    consumer = end_reader(bootstrap)
    try:
        await admin.start()
        await consumer.start()
        await consumer.topics()
        partitions = [TopicPartition(t, p) for t in topic_names for p in sorted(consumer.partitions_for_topic(t) or ())]
        if not partitions:
            return {}
        committed: dict[str, dict[TopicPartition, int]] = {}
        for group in groups:
            offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
            committed[group] = {tp: meta.offset for tp, meta in offsets.items()}
        start = {tp: max((c.get(tp, -1) for c in committed.values()), default=-1) for tp in partitions}
        ends = await high_watermarks(consumer, start, deadline=time.monotonic() + timeout_s)
        return lag_by_group_topic(committed, ends)
    finally:
        await consumer.stop()
        await admin.close()


async def topic_records(bootstrap: str, *, timeout_s: float = 5.0) -> dict[str, int]:
    """Records each topic holds (the ends of its partitions, summed), from fetch high watermarks."""
    consumer = end_reader(bootstrap)
    try:
        await consumer.start()
        names = sorted(await consumer.topics())
        partitions = [TopicPartition(t, p) for t in names for p in sorted(consumer.partitions_for_topic(t) or ())]
        ends = await high_watermarks(consumer, dict.fromkeys(partitions, -1), deadline=time.monotonic() + timeout_s)
    finally:
        await consumer.stop()
    records: dict[str, int] = {}
    for tp, end in ends.items():
        records[tp.topic] = records.get(tp.topic, 0) + end
    return records


async def high_watermarks(
    consumer: AIOKafkaConsumer, start: Mapping[TopicPartition, int], *, deadline: float
) -> dict[TopicPartition, int]:
    """The end of each partition, from fetches starting at ``start`` (``-1``: the beginning).

    Starting at the furthest committed offset keeps each fetch to about one
    small batch. Partitions that did not answer before ``deadline`` are left out.
    """
    consumer.assign(list(start))
    for tp, at in start.items():
        if at >= 0:
            consumer.seek(tp, at)
    never = [tp for tp, at in start.items() if at < 0]
    if never:  # with no argument it would rewind every partition
        await consumer.seek_to_beginning(*never)
    ends: dict[TopicPartition, int] = {}
    while len(ends) < len(start) and time.monotonic() < deadline:
        await consumer.getmany(timeout_ms=100, max_records=1)
        for tp in start:
            if tp not in ends and (end := consumer.highwater(tp)) is not None:
                ends[tp] = end
        await asyncio.sleep(0)
    return ends
