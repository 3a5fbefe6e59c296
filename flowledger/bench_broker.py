"""``flowledger bench broker``: what a fetch costs the embedded broker as a partition's log grows.

The embedded broker (Tansu, memory storage) keeps a partition's whole log
while it runs, and a fetch that returns new records costs it more the more
batches the partition holds. This bench measures both things the
workers' fetch settings rest on, on one partition of small batches
(``--per-batch`` 300-byte records each, three by default, as a step result
producer writes them):

1. ``fetch_ms``: producing one record and fetching it from the partition's end,
   median of 15, at every ``--step`` batches up to ``--batches``;
   ``us_per_batch`` is the slope between the first and the last.
2. ``polls``: with ``--batches`` batches in the partition and 25 new ones a
   second, one consumer per fetch setting (max wait, min bytes) for
   ``--poll-s`` seconds: the broker's CPU (share of a core) and the time from a
   record's send to its receipt, p50 and p99.
"""

import asyncio
import statistics
import sys
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from flowledger.bench import cpu_seconds, percentile
from flowledger.broker import EmbeddedBroker, ensure_topics

TOPIC = "bench-broker"
RECORD = b"x" * 300
SETTINGS = ((10, 1), (100, 1), (100, 64 * 1024), (250, 1))
"""(fetch max wait ms, fetch min bytes): the executor's, the monitor's, the monitor's before, a slower one."""


async def fill(producer: AIOKafkaProducer, tp: TopicPartition, batches: int, per_batch: int) -> None:
    """``batches`` batches of ``per_batch`` records: sends awaited together go out as one request."""
    for _ in range(batches):
        sent = [await producer.send(tp.topic, RECORD, partition=tp.partition) for _ in range(per_batch)]
        await asyncio.gather(*sent)


async def round_trip_ms(producer: AIOKafkaProducer, consumer: AIOKafkaConsumer, tp: TopicPartition) -> float:
    """Median of 15; the consumer is paused otherwise (a consumer prefetches, and each of its fetches costs too)."""
    consumer.resume(tp)
    await consumer.seek_to_end(tp)
    times = []
    for _ in range(15):
        start = time.perf_counter()
        await producer.send_and_wait(tp.topic, RECORD, partition=tp.partition)
        while not (await consumer.getmany(tp, timeout_ms=1000)).get(tp):
            pass
        times.append((time.perf_counter() - start) * 1000)
    consumer.pause(tp)
    return statistics.median(times)


async def poll(
    broker: EmbeddedBroker, producer: AIOKafkaProducer, tp: TopicPartition, wait_ms: int, min_bytes: int, poll_s: float
) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker.bootstrap, enable_auto_commit=False,
        fetch_max_wait_ms=wait_ms, fetch_min_bytes=min_bytes,
    )  # fmt: skip
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_end(tp)
        stop = asyncio.Event()

        async def trickle() -> None:
            while not stop.is_set():
                await producer.send(tp.topic, RECORD, partition=tp.partition)
                await asyncio.sleep(1 / 25)

        task = asyncio.create_task(trickle())
        assert broker.pid is not None
        cpu0, start, lags = cpu_seconds(broker.pid), time.perf_counter(), []
        while time.perf_counter() - start < poll_s:
            fetched = await consumer.getmany(tp, timeout_ms=1000)
            now = time.time()
            lags += [(now - r.timestamp / 1000) * 1000 for r in fetched.get(tp, [])]
        elapsed = time.perf_counter() - start
        stop.set()
        await task
        return {
            "max_wait_ms": wait_ms,
            "min_bytes": min_bytes,
            "broker_cpu_pct": round((cpu_seconds(broker.pid) - cpu0) / elapsed * 100, 1),
            "latency_p50_ms": round(percentile(lags, 0.5), 1),
            "latency_p99_ms": round(percentile(lags, 0.99), 1),
        }
    finally:
        await consumer.stop()


async def measure(broker: EmbeddedBroker, batches: int, step: int, per_batch: int, poll_s: float) -> dict[str, Any]:
    await ensure_topics(broker.bootstrap, {TOPIC: 1})
    tp = TopicPartition(TOPIC, 0)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=False, linger_ms=0)
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10)
    await producer.start()
    await consumer.start()
    try:
        consumer.assign([tp])
        fetch_ms: dict[int, float] = {}
        held = 0
        while True:
            fetch_ms[held] = round(await round_trip_ms(producer, consumer, tp), 1)
            print(f"{held:>7,} batches: produce + fetch {fetch_ms[held]} ms", file=sys.stderr, flush=True)
            if held >= batches:
                break
            await fill(producer, tp, min(step, batches - held), per_batch)
            held = min(held + step, batches)
        polls = [await poll(broker, producer, tp, wait, least, poll_s) for wait, least in SETTINGS]
        for row in polls:
            print(f"poll {row}", file=sys.stderr, flush=True)
        slope_us = round((fetch_ms[held] - fetch_ms[0]) / held * 1000, 2) if held else 0.0
        return {
            "bench": "broker", "batches": held, "per_batch": per_batch,
            "fetch_ms": fetch_ms, "us_per_batch": slope_us, "polls": polls,
        }  # fmt: skip
    finally:
        await consumer.stop()
        await producer.stop()


def bench_broker(*, batches: int, step: int, per_batch: int = 3, poll_s: float) -> int:
    with EmbeddedBroker() as broker:
        result = asyncio.run(measure(broker, batches, step, per_batch, poll_s))
    print(orjson.dumps(result, option=orjson.OPT_NON_STR_KEYS).decode(), flush=True)
    return 0
