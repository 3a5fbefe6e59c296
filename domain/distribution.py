"""A running distribution over fixed bucket bounds: what a Prometheus histogram exposes.

>>> sizes = Distribution((10.0, 100.0))
>>> for n in (3, 40, 40, 500):
...     sizes.observe(n)
>>> sizes.cumulative()
[(10.0, 1), (100.0, 3), (inf, 4)]
>>> sizes.count, sizes.total
(4, 583.0)
"""

import bisect
from dataclasses import dataclass, field


@dataclass
class Distribution:
    bounds: tuple[float, ...]
    """Upper bounds of the buckets, ascending; a last bucket catches everything above."""
    counts: list[int] = field(init=False)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if list(self.bounds) != sorted(set(self.bounds)):
            raise ValueError(f"bucket bounds must ascend strictly: {self.bounds}")
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations at or below it), ending with ``inf``."""
        out, running = [], 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out
