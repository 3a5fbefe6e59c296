"""Records the consumer skipped are read back from the real broker's log, by offset."""

import asyncio

import pytest
from aiokafka import AIOKafkaProducer

from flowledger.broker import EmbeddedBroker, ensure_topics
from schemas import topics

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bootstrap():
    with EmbeddedBroker() as broker:  # its own: these bytes must not reach the shared stack's workers
        asyncio.run(ensure_topics(broker.bootstrap))
        yield broker.bootstrap


async def test_the_missing_ranges_come_back_in_order_and_nothing_else(bootstrap):
    import streams.app  # noqa: F401 - first: it imports the agents in their order
    from streams import ledger

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for n in range(10):
            await producer.send_and_wait(topics.WORKFLOW_EVENTS, f"record {n}".encode(), partition=1)
    finally:
        await producer.stop()
    before = ledger.stats.records

    got = await ledger.read_missing(topics.WORKFLOW_EVENTS, 1, [(2, 5), (7, 9)], bootstrap=bootstrap)

    assert got == [(n, f"record {n}".encode()) for n in (2, 3, 4, 7, 8)]
    assert ledger.stats.records - before == 5
    # beyond the end of the log: what is there, after the timeout (the caller then counts the rest lost)
    assert await ledger.read_missing(topics.WORKFLOW_EVENTS, 1, [(8, 12)], bootstrap=bootstrap, timeout_s=2) == [
        (8, b"record 8"), (9, b"record 9"),
    ]  # fmt: skip
