"""Running counts of ingested records, per tenant and type (pure).

>>> counts = IngestCounts()
>>> counts.observe([("acme", "RunStarted"), ("acme", "StepFailed")], now=10.0)
>>> counts.observe([("acme", "StepFailed")], now=11.0)
>>> counts.by_type()
{'RunStarted': 1, 'StepFailed': 2}
>>> counts.total
3
"""

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class IngestCounts:
    rate_window_s: float = 60.0
    total: int = 0
    _by_key: Counter[tuple[str, str]] = field(default_factory=Counter)
    _recent: deque[tuple[float, int]] = field(default_factory=deque)

    def observe(self, items: Iterable[tuple[str, str]], *, now: float) -> None:
        batch = Counter(items)
        size = sum(batch.values())
        self._by_key.update(batch)
        self.total += size
        self._recent.append((now, size))
        while self._recent and self._recent[0][0] < now - self.rate_window_s:
            self._recent.popleft()

    def by_type(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for (_, record_type), n in self._by_key.items():
            out[record_type] += n
        return dict(sorted(out.items()))

    def by_tenant(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for (tenant, _), n in self._by_key.items():
            out[tenant] += n
        return dict(sorted(out.items()))

    def rate(self, *, now: float) -> float:
        """Records per second over the rate window."""
        recent = [n for t, n in self._recent if t >= now - self.rate_window_s]
        return sum(recent) / self.rate_window_s if recent else 0.0
