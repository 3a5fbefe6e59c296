"""Batches that sleep while no event comes.

Faust's ``take_events(max_, within)`` wakes every ``within`` to look at its
buffer, whether or not an event came: at the executor's 2 ms, five hundred
times a second, which kept an idle executor at about 5% of a core.
``sleep_until_events`` makes the stream's batching wait for the first event
(or the stream's stop) before each of those waits, so an idle stream sleeps,
and a batch still goes out ``within`` after its first event or when full.
"""

import asyncio
from typing import Any


def sleep_until_events(stream: Any) -> None:
    """Call before ``stream.take_events``: its wait for a batch starts with the first event."""
    arrived = asyncio.Event()

    async def mark(value: Any) -> Any:
        arrived.set()
        return value

    stream.add_processor(mark)  # runs before the batch's own, which is added when it starts
    wait_for_stopped = stream.wait_for_stopped

    async def wait_for_events_then(*coros: Any, timeout: Any = None) -> bool:
        if not arrived.is_set() and await wait_for_stopped(arrived):
            return True
        arrived.clear()
        stopped: bool = await wait_for_stopped(*coros, timeout=timeout)
        return stopped

    stream.wait_for_stopped = wait_for_events_then
