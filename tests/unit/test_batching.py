"""A stream's batching waits for its first event before each timed wait, instead of waking every ``within``."""

import asyncio
from typing import Any

from streams.batching import sleep_until_events


class FakeStream:
    """What ``sleep_until_events`` uses of a Faust stream: processors, and a wait that ends on stop."""

    def __init__(self) -> None:
        self.processors: list[Any] = []
        self.stopped = asyncio.Event()
        self.timed_waits: list[float | None] = []

    def add_processor(self, processor: Any) -> None:
        self.processors.append(processor)

    async def deliver(self, value: Any) -> None:
        for processor in self.processors:
            value = await processor(value)

    async def wait_for_stopped(self, *coros: Any, timeout: float | None = None) -> bool:
        if coros and timeout is not None:
            self.timed_waits.append(timeout)
        waits = [asyncio.ensure_future(self.stopped.wait())] + [asyncio.ensure_future(c.wait()) for c in coros]
        done, pending = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return self.stopped.is_set()


async def test_an_idle_stream_sleeps_until_an_event_then_waits_within():
    stream = FakeStream()
    sleep_until_events(stream)
    full = asyncio.Event()
    waiting = asyncio.ensure_future(stream.wait_for_stopped(full, timeout=0.002))
    await asyncio.sleep(0.05)
    assert not waiting.done() and stream.timed_waits == []  # no timed wait while nothing came
    await stream.deliver("command")
    assert await asyncio.wait_for(waiting, 1) is False
    assert stream.timed_waits == [0.002]


async def test_events_that_came_meanwhile_start_the_timed_wait_at_once():
    stream = FakeStream()
    sleep_until_events(stream)
    await stream.deliver("command")
    assert await asyncio.wait_for(stream.wait_for_stopped(asyncio.Event(), timeout=0.002), 1) is False
    assert stream.timed_waits == [0.002]
    nothing_new = asyncio.ensure_future(stream.wait_for_stopped(asyncio.Event(), timeout=0.002))
    await asyncio.sleep(0.05)
    assert not nothing_new.done()  # the event was taken with the last batch
    nothing_new.cancel()


async def test_a_stop_ends_the_wait_for_events():
    stream = FakeStream()
    sleep_until_events(stream)
    waiting = asyncio.ensure_future(stream.wait_for_stopped(asyncio.Event(), timeout=0.002))
    await asyncio.sleep(0.01)
    stream.stopped.set()
    assert await asyncio.wait_for(waiting, 1) is True
    assert stream.timed_waits == []
