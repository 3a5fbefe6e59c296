"""How long the broker may hold a worker's next fetch: short while records come, longer while none do.

A fetch that finds nothing is held by the broker for the consumer's
``fetch_max_wait_ms``, then answered empty, and the consumer sends the next
one at once. The embedded broker does not answer a held fetch as soon as a
record arrives, so the wait bounds how long a new record can sit unread; but
a short wait also makes an idle worker ask all the time (the executor, at 10 ms:
819 fetches in 10 s), and each empty fetch costs the broker and the worker CPU.

``FetchPacing`` keeps the short wait (the floor) while fetches return records
and doubles it with each empty one, up to a ceiling, as a poller backs off:
a record after a quiet spell waits at most about the ceiling, the records
behind it about the floor.

>>> pacing = FetchPacing(floor_ms=10, ceiling_ms=100)
>>> [pacing.after(found) for found in (False, False, False, False, False, True, False)]
[20, 40, 80, 100, 100, 10, 20]

``pace_fetches`` puts a pacing on an aiokafka consumer: each fetch its fetcher
sends waits what the pacing said after the previous one.
"""

from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.consumer.fetcher import Fetcher


@dataclass
class FetchPacing:
    floor_ms: int
    ceiling_ms: int
    wait_ms: int = field(init=False)
    """The wait of the next fetch."""

    def __post_init__(self) -> None:
        if not 0 < self.floor_ms <= self.ceiling_ms:
            msg = f"need 0 < floor_ms <= ceiling_ms, got {self.floor_ms} and {self.ceiling_ms}"
            raise ValueError(msg)
        self.wait_ms = self.floor_ms

    def after(self, found: bool) -> int:
        """The wait of the next fetch, given whether the last one returned records."""
        self.wait_ms = self.floor_ms if found else min(self.ceiling_ms, self.wait_ms * 2)
        return self.wait_ms


def pace_fetches(consumer: AIOKafkaConsumer, pacing: FetchPacing) -> None:
    """Let ``pacing`` set the wait of every fetch ``consumer`` sends, from its start on."""
    consumer._fetch_max_wait_ms = pacing.floor_ms
    start = consumer.start

    async def start_paced() -> None:
        await start()
        consumer._fetcher.pacing = pacing

    consumer.start = start_paced


async def _proc_fetch_request(self: Fetcher, assignment: Any, node_id: int, request: Any) -> bool:
    found: bool = await _original_proc_fetch_request(self, assignment, node_id, request)
    pacing: FetchPacing | None = getattr(self, "pacing", None)
    if pacing is not None:  # the fetcher builds each request from this attribute
        self._fetch_max_wait_ms = pacing.after(found)
    return found


_original_proc_fetch_request = Fetcher._proc_fetch_request
Fetcher._proc_fetch_request = _proc_fetch_request
