"""Fan-out of live summaries to in-process subscribers (the API's event stream).

The projector publishes the summaries of every slice it committed; each
subscriber has a bounded queue of its own. Publishing never waits: a
subscriber that falls behind loses its oldest summaries and is told how many
it lost (``Batch.dropped``), so one slow client can neither block the
projector nor grow without bound. Everything runs on the event loop thread
that hosts the projector and the API.
"""

import asyncio
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

OPERATOR = "*"
"""The tenant of operator keys: it sees every tenant's summaries."""
DEFAULT_QUEUE = 1_000


@dataclass(frozen=True)
class Batch:
    items: list[dict[str, Any]]
    dropped: int = 0
    """Summaries lost since the previous batch because the queue was full."""


@dataclass(eq=False)
class Subscription:
    tenant: str
    max_queue: int = DEFAULT_QUEUE
    queue: deque[dict[str, Any]] = field(init=False)
    dropped: int = 0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.queue = deque(maxlen=self.max_queue)

    def wants(self, summary: dict[str, Any]) -> bool:
        return self.tenant == OPERATOR or summary.get("tenant_id") == self.tenant

    def offer(self, summary: dict[str, Any]) -> bool:
        """Queue ``summary``; False when that pushed the oldest one out."""
        full = len(self.queue) == self.max_queue
        if full:
            self.dropped += 1  # the deque drops the oldest item itself
        self.queue.append(summary)
        self._wake.set()
        return not full

    def wake(self) -> None:
        self._wake.set()

    def take(self) -> Batch:
        """Everything queued, and how much was lost before it; never waits."""
        batch = Batch(list(self.queue), self.dropped)
        self.queue.clear()
        self.dropped = 0
        self._wake.clear()
        return batch

    async def next(self, timeout_s: float) -> Batch:
        """What arrived, waiting up to ``timeout_s`` for something (an empty batch when nothing did)."""
        if not self.queue and not self.dropped:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout_s)
            except TimeoutError:
                pass
        return self.take()


class LiveHub:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()
        self.published = 0
        self.dropped = 0
        """Summaries pushed out of slow subscribers' queues, over all subscribers."""
        self.closed = False
        """Set when the process stops: readers finish instead of waiting for more."""

    def close(self) -> None:
        """Wake every subscriber for the last time (``closed`` tells their readers to end)."""
        self.closed = True
        for subscription in self._subscribers:
            subscription.wake()

    @property
    def active(self) -> bool:
        """Whether anyone listens (the projector skips building summaries otherwise)."""
        return bool(self._subscribers)

    def __len__(self) -> int:
        return len(self._subscribers)

    @contextmanager
    def subscribe(self, tenant: str, max_queue: int = DEFAULT_QUEUE) -> Iterator[Subscription]:
        subscription = Subscription(tenant, max_queue)
        self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)

    def publish(self, summaries: Iterable[dict[str, Any]]) -> None:
        items = list(summaries)
        self.published += len(items)
        for subscription in self._subscribers:
            for summary in items:
                if subscription.wants(summary) and not subscription.offer(summary):
                    self.dropped += 1
