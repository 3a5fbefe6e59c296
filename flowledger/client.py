"""The Python producer client: publish Flowledger records to Kafka.

Records are grouped by topic and by the partition their key (the run id)
hashes to, and each group travels as one Kafka message holding a JSON array
(at most 500 records or 512 KiB). The per-message cost of the broker and of
the stream processors is then paid once per group, not once per run: a batch
of 3,000 results of 500 runs over four partitions is about six messages, not
500. Per-run order holds because every record of a run hashes to the same
partition and keeps its place in the group. A message is keyed by its first
record's key, so it lands where a producer sending that record alone would
put it. ``send`` returns only once the broker acknowledged every message, so
a record it accepted is never lost.

    async with Producer("127.0.0.1:9092") as producer:
        await producer.send([RunStarted(...), StepStarted(...)])
"""

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from schemas.envelope import Envelope
from schemas.registry import TOPIC_BY_TYPE, to_json

MAX_RECORDS_PER_MESSAGE = 500
MAX_MESSAGE_BYTES = 512 * 1024


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2) gives ``key`` among ``partitions``."""
    return int(DefaultPartitioner()(key, list(range(partitions)), None))


def pack(records: Iterable[Envelope], partitions: Mapping[str, int] | None = None) -> list[tuple[str, bytes, bytes]]:
    """Group records into ``(topic, key, value)`` messages, keeping order per key.

    With ``partitions`` (topic -> its partition count) records whose keys hash
    to the same partition share messages; without it, records share a message
    only with records of the same key.
    """
    return pack_encoded(((TOPIC_BY_TYPE[r.type], r.partition_key, to_json(r)) for r in records), partitions)


def pack_encoded(
    items: Iterable[tuple[str, str, bytes]], partitions: Mapping[str, int] | None = None
) -> list[tuple[str, bytes, bytes]]:
    """``pack`` for records already encoded: ``(topic, partition key, JSON)`` in order."""
    groups: dict[tuple[str, int | str], tuple[bytes, list[bytes]]] = {}
    slots: dict[tuple[str, str], int | str] = {}
    for topic, key, encoded in items:
        slot = slots.get((topic, key))
        if slot is None:
            count = partitions.get(topic) if partitions else None
            slot = slots[(topic, key)] = partition_of(key.encode(), count) if count else key
        group = groups.get((topic, slot))
        if group is None:
            group = groups[(topic, slot)] = (key.encode(), [])
        group[1].append(encoded)
    messages: list[tuple[str, bytes, bytes]] = []
    for (topic, _slot), (first_key, members) in groups.items():
        chunk: list[bytes] = []
        size = 0
        for item in members:
            if chunk and (len(chunk) >= MAX_RECORDS_PER_MESSAGE or size + len(item) > MAX_MESSAGE_BYTES):
                messages.append((topic, first_key, b"[" + b",".join(chunk) + b"]"))
                chunk, size = [], 0
            chunk.append(item)
            size += len(item) + 1
        messages.append((topic, first_key, b"[" + b",".join(chunk) + b"]"))
    return messages


class Producer:
    def __init__(self, bootstrap_servers: str, *, linger_ms: int = 5) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            acks="all",
            # Idempotent producers need InitProducerId, which the embedded broker
            # lacks; duplicates are absorbed downstream by event_id instead.
            enable_idempotence=False,
            linger_ms=linger_ms,
            max_batch_size=1 << 20,
            max_request_size=4 << 20,
        )
        self._partitions: dict[str, int] = {}
        """Topic -> partition count, read once: Flowledger's topics never change theirs while it runs."""

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def __aenter__(self) -> "Producer":
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def pack(self, records: Sequence[Envelope]) -> list[tuple[str, bytes, bytes]]:
        """``pack`` with the partition counts of the topics the records go to."""
        wanted = {TOPIC_BY_TYPE[record.type] for record in records}
        missing = wanted - self._partitions.keys()
        for topic in sorted(missing):
            self._partitions[topic] = len(await self._producer.partitions_for(topic))
        return pack(records, self._partitions)

    async def send(self, records: Sequence[Envelope]) -> int:
        """Publish and wait for every acknowledgement; returns messages sent."""
        return await self.send_messages(await self.pack(records))

    async def send_messages(
        self,
        messages: Sequence[tuple[str, bytes, bytes]],
        on_sent: Callable[[int], None] | None = None,
    ) -> int:
        """Publish pre-packed messages; ``on_sent(i)`` runs as message ``i`` is handed over."""
        futures = []
        for index, (topic, key, value) in enumerate(messages):
            futures.append(await self._producer.send(topic, value, key=key))
            if on_sent:
                on_sent(index)
        await asyncio.gather(*futures)
        return len(messages)

    async def send_raw(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        """Publish bytes as they are (tests and tools that must write bad data)."""
        await self._producer.send_and_wait(topic, value, key=key)
