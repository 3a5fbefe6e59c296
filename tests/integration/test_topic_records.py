"""What each topic holds, counted in records from the real broker's fetch high watermarks."""

import asyncio

import pytest
from aiokafka import AIOKafkaProducer

from flowledger.broker import EmbeddedBroker, ensure_topics
from flowledger.lag import topic_records
from schemas import topics

pytestmark = pytest.mark.integration


async def test_records_per_topic_count_records_however_they_were_batched():
    with EmbeddedBroker() as broker:
        await ensure_topics(broker.bootstrap)
        before = await topic_records(broker.bootstrap)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=20, enable_idempotence=False)
        await producer.start()
        try:
            sent = [await producer.send(topics.WORKFLOW_EVENTS, b"x", partition=n % 4) for n in range(30)]
            sent += [await producer.send(topics.METRIC_PANES, b"y", partition=0) for _ in range(7)]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()
        after = await topic_records(broker.bootstrap)
    assert before.get(topics.WORKFLOW_EVENTS, 0) == before.get(topics.METRIC_PANES, 0) == 0
    assert after[topics.WORKFLOW_EVENTS] == 30 and after[topics.METRIC_PANES] == 7
    assert after[topics.ALERTS] == 0
