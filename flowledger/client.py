"""The Python producer client: publish Flowledger records to Kafka.

Records are grouped by topic and partition key (the run id), and each group
travels as one Kafka message holding a JSON array: the per-message cost of
the broker and of stream processors is paid once per group, and per-run order
holds because a group stays in one partition. ``send`` returns only once the
broker acknowledged every message, so a record it accepted is never lost.

    async with Producer("127.0.0.1:9092") as producer:
        await producer.send([RunStarted(...), StepStarted(...)])
"""

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType

from aiokafka import AIOKafkaProducer

from schemas.envelope import Envelope
from schemas.registry import TOPIC_BY_TYPE, to_json

MAX_RECORDS_PER_MESSAGE = 500
MAX_MESSAGE_BYTES = 512 * 1024


def pack(records: Iterable[Envelope]) -> list[tuple[str, bytes, bytes]]:
    """Group records into ``(topic, key, value)`` messages, keeping order per key."""
    groups: dict[tuple[str, str], list[bytes]] = defaultdict(list)
    for record in records:
        groups[(TOPIC_BY_TYPE[record.type], record.partition_key)].append(to_json(record))
    messages = []
    for (topic, key), encoded in groups.items():
        chunk: list[bytes] = []
        size = 0
        for item in encoded:
            if chunk and (len(chunk) >= MAX_RECORDS_PER_MESSAGE or size + len(item) > MAX_MESSAGE_BYTES):
                messages.append((topic, key.encode(), b"[" + b",".join(chunk) + b"]"))
                chunk, size = [], 0
            chunk.append(item)
            size += len(item) + 1
        messages.append((topic, key.encode(), b"[" + b",".join(chunk) + b"]"))
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

    async def send(self, records: Sequence[Envelope]) -> int:
        """Publish and wait for every acknowledgement; returns messages sent."""
        return await self.send_messages(pack(records))

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
