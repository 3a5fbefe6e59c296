"""Outputs of ``cache: true`` steps reused by this worker, and identical calls in flight made once.

``StepCache.fetch`` answers with a fresh stored output (``domain.step_cache``)
when there is one; else, when the same call is already in flight, it waits
for that call and reuses its output; else it makes the call and stores the
output if the call succeeded. A failure is never stored nor shared: each
step that waited for a failed call makes its own.

The cache is per worker and in memory. A cache is an optimization: losing it
on a restart, or two workers each calling once for the same parameters,
costs calls, not correctness, since every output it holds came from a call
whose ``StepSucceeded`` is on the log.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.step_cache import OutputCache
from schemas.common import StepError


@dataclass(frozen=True)
class Outcome:
    """What an attempt got: the output or why it failed, how long that took, whether the output was reused."""

    result: dict[str, Any] | StepError
    duration_ms: float
    cached: bool = False


class StepCache:
    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.outputs = OutputCache(max_entries, clock)
        self.clock = clock
        self.flights: dict[str, asyncio.Future[Mapping[str, Any] | None]] = {}
        """Key -> the output of the call in flight (None when it failed or was cancelled)."""

    async def fetch(self, key: str, ttl_s: float, call: Callable[[], Awaitable[Outcome]]) -> Outcome:
        """A stored output, else the output of the same call in flight, else what ``call()`` gets."""
        started = self.clock()
        while True:
            output = self.outputs.get(key)
            if output is None:
                flight = self.flights.get(key)
                if flight is None:
                    return await self._lead(key, ttl_s, call)
                output = await asyncio.shield(flight)  # our cancellation must not cancel the others' wait
            if output is not None:
                return Outcome(dict(output), (self.clock() - started) * 1000, cached=True)

    async def _lead(self, key: str, ttl_s: float, call: Callable[[], Awaitable[Outcome]]) -> Outcome:
        flight = self.flights[key] = asyncio.get_running_loop().create_future()
        output: dict[str, Any] | None = None
        try:
            outcome = await call()
            if isinstance(outcome.result, dict):
                output = outcome.result
                self.outputs.put(key, output, ttl_s=ttl_s)
            return outcome
        finally:
            del self.flights[key]
            flight.set_result(output)
