"""A paced consumer on the real broker: its fetches wait longer while idle and the floor again once records come."""

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from flowledger.broker import EmbeddedBroker, ensure_topics
from schemas import topics
from streams.fetch_pacing import FetchPacing, pace_fetches

pytestmark = pytest.mark.integration


class RecordingPacing(FetchPacing):
    def __init__(self, floor_ms: int, ceiling_ms: int) -> None:
        super().__init__(floor_ms, ceiling_ms)
        self.history: list[tuple[bool, int]] = []

    def after(self, found: bool) -> int:
        wait = super().after(found)
        self.history.append((found, wait))
        return wait


async def test_fetches_back_off_while_idle_and_return_to_the_floor_when_a_record_comes():
    tp = TopicPartition(topics.WORKFLOW_COMMANDS, 0)
    with EmbeddedBroker() as broker:
        await ensure_topics(broker.bootstrap)
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
        pacing = RecordingPacing(10, 160)
        pace_fetches(consumer, pacing)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await consumer.start()
        await producer.start()
        try:
            consumer.assign([tp])
            await consumer.seek_to_end(tp)
            deadline = time.monotonic() + 20
            while pacing.wait_ms < 160 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            idle = list(pacing.history)
            await producer.send_and_wait(tp.topic, b"start", partition=tp.partition)
            records = await consumer.getmany(tp, timeout_ms=10_000)
        finally:
            await producer.stop()
            await consumer.stop()
    assert [record.value for record in records[tp]] == [b"start"]
    assert not any(found for found, _ in idle)  # a new topic: nothing to find
    assert [wait for _, wait in idle][:4] == [20, 40, 80, 160]
    assert (True, 10) in pacing.history[len(idle) :]
