"""A mergeable quantile sketch with a relative-error guarantee (pure).

Values are counted in logarithmic buckets: bucket ``i`` holds values in
``(gamma**(i-1), gamma**i]`` with ``gamma = (1 + a) / (1 - a)``, so any
quantile it reports is within relative error ``a`` of a value that really sat
at that rank (the DDSketch construction). Two sketches with the same accuracy
merge by adding bucket counts, which is exact: the merge of the sketches of
two windows is the sketch of their union. That is what lets per-partition
partial windows be combined, and 1-minute windows be rolled into 5- and
15-minute views at query time.

Durations are positive; values at or below ``MIN_VALUE`` go to a zero bucket.

>>> s = QuantileSketch()
>>> for v in range(1, 101):
...     s.add(float(v))
>>> round(s.quantile(0.5)), round(s.quantile(0.99)), s.count
(50, 99, 100)
>>> t = QuantileSketch.from_buckets(s.to_buckets())
>>> t.merge(s); t.count, round(t.quantile(0.5))
(200, 50)
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

RELATIVE_ACCURACY = 0.01
MIN_VALUE = 1e-3
ZERO_BUCKET = -(2**15)
"""Key of the bucket of values at or below ``MIN_VALUE`` (an int, so buckets serialize as one map)."""

_GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)


def bucket_of(value: float) -> int:
    if value <= MIN_VALUE:
        return ZERO_BUCKET
    return math.ceil(math.log(value) / _LOG_GAMMA)


def bucket_value(index: int) -> float:
    """The value a bucket reports: the point of its range with the least relative error."""
    if index == ZERO_BUCKET:
        return 0.0
    return 2 * _GAMMA**index / (_GAMMA + 1)


@dataclass
class QuantileSketch:
    buckets: dict[int, int] = field(default_factory=dict)
    count: int = 0

    def add(self, value: float, weight: int = 1) -> None:
        index = bucket_of(value)
        self.buckets[index] = self.buckets.get(index, 0) + weight
        self.count += weight

    def merge(self, other: "QuantileSketch") -> None:
        for index, n in other.buckets.items():
            self.buckets[index] = self.buckets.get(index, 0) + n
        self.count += other.count

    def subtract(self, other: "QuantileSketch") -> None:
        """Take out a sketch merged in before (a pane leaving a rolling window); exact, like merge."""
        for index, n in other.buckets.items():
            left = self.buckets.get(index, 0) - n
            if left > 0:
                self.buckets[index] = left
            else:
                self.buckets.pop(index, None)
        self.count -= other.count

    def quantile(self, q: float) -> float | None:
        """The value at rank ``q`` (0..1), None when empty."""
        if not self.count:
            return None
        rank = q * (self.count - 1)
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen > rank:
                return bucket_value(index)
        return bucket_value(max(self.buckets))

    def to_buckets(self) -> dict[int, int]:
        return dict(self.buckets)

    @classmethod
    def from_buckets(cls, buckets: Mapping[int | str, int]) -> "QuantileSketch":
        """From ``to_buckets`` output, also after a JSON round trip (string keys)."""
        parsed = {int(k): int(n) for k, n in buckets.items() if int(n) > 0}
        return cls(parsed, sum(parsed.values()))
