"""Event-time windows over step and run results (pure).

Two stages, as in any partitioned stream aggregation:

1. ``PartitionWindows`` aggregates the events of one source partition into
   per-series, per-window ``Partial`` aggregates. Its watermark is the latest
   event time it has seen; a window is final for the partition once the
   watermark passes ``window end + grace``. An event for a window already
   final is *late*: it is not added to that window but counted, and the count
   is reported with the series' current window. A partition that has seen no
   event for ``idle_s`` (wall time) moves its watermark to ``now - idle_s`` so
   windows close when traffic stops.
2. ``SeriesWindows`` merges the partials of one series from every partition
   and closes a window when the slowest partition's watermark has passed it.
   Each (partition, window) partial is applied once, so a partial re-sent
   after a crash changes nothing.

Stage 1 records the last source offset it applied; replayed events at or
below it are skipped. Together the two stages count every event once.

>>> cfg = WindowConfig(size_s=60, grace_s=5)
>>> part = PartitionWindows(partition=0)
>>> obs = Observation(("acme", "service", "slack", "slack"), t=30.0, ok=True, duration_ms=120.0, cost=0.0)
>>> part.observe(0, [obs], now=0.0, config=cfg)
>>> part.observe(1, [obs._replace(t=66.0)], now=0.0, config=cfg)
>>> [(s[2], w, p.count) for s, w, p in part.close_ready(cfg)]
[('slack', 0.0, 1)]
"""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from domain.sketch import QuantileSketch
from schemas.envelope import Envelope
from schemas.runs import RunFailed, RunSucceeded, StepFailed, StepSucceeded

Series = tuple[str, str, str, str]
"""(tenant, scope, key, service): scope is tenant | workflow | step | service; service is '' unless one applies."""


@dataclass(frozen=True)
class WindowConfig:
    size_s: float = 60.0
    grace_s: float = 5.0
    idle_s: float = 5.0
    empty_windows: int = 60
    """Empty windows reported after a series' last event before it is considered dormant."""
    late_to_current_s: float = 0.0
    """A late event at most this far behind the watermark joins the window open at the watermark (and is counted as
    late there) instead of only being counted: for short panes, where a second of disorder must not hide a failure
    from the alert rules, while a backfill of old events does not look like the present."""


def window_start(t: float, size_s: float) -> float:
    """Start of the tumbling window holding event time ``t`` (epoch seconds)."""
    return float(math.floor(t / size_s) * size_s)


def closable_through(watermark: float, config: WindowConfig) -> float:
    """Start of the last window a watermark lets close (-inf if none).

    Two watermarks with the same value close the same windows, so a watermark
    that does not change it tells the next stage nothing new.
    """
    if not math.isfinite(watermark):
        return -math.inf
    return window_start(watermark - config.grace_s - config.size_s, config.size_s)


class Observation(NamedTuple):
    series: Series
    t: float
    ok: bool
    duration_ms: float | None
    cost: float


def observations(record: Envelope) -> list[Observation]:
    """What one validated event contributes, by series.

    A step attempt counts for its step and its service (an output reused from the
    cache for its step only); a finished run for its workflow and its tenant.
    Cancelled runs are neither successes nor failures.
    """
    if isinstance(record, StepSucceeded | StepFailed):
        payload = record.payload
        t = record.occurred_at.timestamp()
        ok = isinstance(record, StepSucceeded)
        cost = payload.cost or 0.0
        tenant, service = record.tenant_id, payload.service
        step = Observation(
            (tenant, "step", f"{record.workflow_id}/{record.step_id}", service), t, ok, payload.duration_ms, cost
        )
        if isinstance(record, StepSucceeded) and record.payload.cached:
            return [step]  # a reused output says nothing of how the service answers now
        return [step, Observation((tenant, "service", service, service), t, ok, payload.duration_ms, cost)]
    if isinstance(record, RunSucceeded | RunFailed):
        t = record.occurred_at.timestamp()
        ok = isinstance(record, RunSucceeded)
        duration = record.payload.duration_ms
        return [
            Observation((record.tenant_id, "workflow", record.workflow_id, ""), t, ok, duration, 0.0),
            Observation((record.tenant_id, "tenant", "*", ""), t, ok, duration, 0.0),
        ]
    return []


@dataclass
class Partial:
    """Aggregate of one series over one window, mergeable with others of the same window."""

    count: int = 0
    successes: int = 0
    failures: int = 0
    cost_sum: float = 0.0
    late: int = 0
    sketch: QuantileSketch = field(default_factory=QuantileSketch)

    def add(self, obs: Observation) -> None:
        self.count += 1
        if obs.ok:
            self.successes += 1
        else:
            self.failures += 1
        self.cost_sum += obs.cost
        if obs.duration_ms is not None:
            self.sketch.add(obs.duration_ms)

    def merge(self, other: "Partial") -> None:
        self.count += other.count
        self.successes += other.successes
        self.failures += other.failures
        self.cost_sum += other.cost_sum
        self.late += other.late
        self.sketch.merge(other.sketch)

    def subtract(self, other: "Partial") -> None:
        """Undo ``merge(other)``."""
        self.count -= other.count
        self.successes -= other.successes
        self.failures -= other.failures
        self.cost_sum -= other.cost_sum
        self.late -= other.late
        self.sketch.subtract(other.sketch)

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.count,
            "ok": self.successes,
            "err": self.failures,
            "cost": self.cost_sum,
            "late": self.late,
            "sk": {str(k): n for k, n in self.sketch.buckets.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Partial":
        return cls(
            count=data["n"],
            successes=data["ok"],
            failures=data["err"],
            cost_sum=data["cost"],
            late=data["late"],
            sketch=QuantileSketch.from_buckets(data["sk"]),
        )


@dataclass
class PartitionWindows:
    """Stage 1: the open windows of one source partition."""

    partition: int
    watermark: float = -math.inf
    last_offset: int = -1
    last_event_wall: float = 0.0
    open: dict[tuple[Series, float], Partial] = field(default_factory=dict)
    late_total: int = 0

    def observe(self, offset: int, items: Iterable[Observation], *, now: float, config: WindowConfig) -> None:
        """Apply the observations of the record at ``offset``; a record at or below the last one is a replay."""
        if offset <= self.last_offset:
            return
        self.last_offset = offset
        self.last_event_wall = now
        size_s = config.size_s
        for obs in items:
            start = window_start(obs.t, size_s)
            if start + size_s + config.grace_s <= self.watermark:
                self._count_late(obs.series, size_s)
                if obs.t >= self.watermark - config.late_to_current_s:
                    self.open[(obs.series, window_start(self.watermark, size_s))].add(obs)
                continue
            key = (obs.series, start)
            partial = self.open.get(key)
            if partial is None:
                partial = self.open[key] = Partial()
            partial.add(obs)
            if obs.t > self.watermark:
                self.watermark = obs.t

    def _count_late(self, series: Series, size_s: float) -> None:
        self.late_total += 1
        key = (series, window_start(self.watermark, size_s))
        partial = self.open.get(key)
        if partial is None:
            partial = self.open[key] = Partial()
        partial.late += 1

    def close_ready(self, config: WindowConfig) -> list[tuple[Series, float, Partial]]:
        """Remove and return the windows that are final for this partition, oldest first."""
        ready = [key for key in self.open if key[1] + config.size_s + config.grace_s <= self.watermark]
        ready.sort(key=lambda k: k[1])
        return [(series, start, self.open.pop((series, start))) for series, start in ready]

    def idle_advance(self, *, now: float, config: WindowConfig) -> bool:
        """Move the watermark to wall time when the partition has been quiet; True if it moved."""
        if now - self.last_event_wall < config.idle_s or now - config.idle_s <= self.watermark:
            return False
        self.watermark = now - config.idle_s
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "p": self.partition,
            "wm": None if self.watermark == -math.inf else self.watermark,
            "off": self.last_offset,
            "wall": self.last_event_wall,
            "late": self.late_total,
            "open": [[list(series), start, partial.to_json()] for (series, start), partial in self.open.items()],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "PartitionWindows":
        open_ = {(_series(s), float(start)): Partial.from_json(p) for s, start, p in data["open"]}
        wm = data["wm"]
        return cls(data["p"], -math.inf if wm is None else wm, data["off"], data["wall"], open_, data["late"])


def _series(items: Iterable[str]) -> Series:
    tenant, scope, key, service = items
    return (tenant, scope, key, service)


@dataclass
class Clock:
    """Stage 2: the watermark each source partition has reported; the slowest one rules."""

    partitions: int
    watermarks: dict[int, float] = field(default_factory=dict)

    def report(self, partition: int, watermark: float) -> None:
        if watermark > self.watermarks.get(partition, -math.inf):
            self.watermarks[partition] = watermark

    @property
    def watermark(self) -> float:
        if len(self.watermarks) < self.partitions:
            return -math.inf
        return min(self.watermarks.values())

    def to_json(self) -> dict[str, float]:
        return {str(p): wm for p, wm in self.watermarks.items()}

    @classmethod
    def from_json(cls, partitions: int, data: Mapping[str, float] | None) -> "Clock":
        """From ``to_json`` output; None: a clock nobody has reported to yet."""
        return cls(partitions, {int(p): wm for p, wm in (data or {}).items()})


@dataclass
class SeriesWindows:
    """Stage 2: one series' windows being merged across partitions."""

    closed_through: float = -math.inf
    pending: dict[float, tuple[Partial, set[int]]] = field(default_factory=dict)
    quiet: int = 0
    """Empty windows emitted since the series' last event."""

    def add(self, partition: int, start: float, partial: Partial) -> bool:
        """Merge one partition's final partial; False if it was already applied.

        A window closes only after every partition has sent its partial for
        it, so a partial of a closed window is one sent again after a restart.
        """
        if start < self.closed_through:
            return False
        merged, seen = self.pending.get(start) or (Partial(), set())
        if partition in seen:
            return False
        merged.merge(partial)
        seen.add(partition)
        self.pending[start] = (merged, seen)
        return True

    def close(self, watermark: float, config: WindowConfig) -> list[tuple[float, Partial]]:
        """Windows every partition has finished, oldest first, with empty ones in the gaps.

        A series that has gone quiet gets empty windows (count 0) for up to
        ``config.empty_windows`` windows after its last event, so a drop to
        zero throughput is a value that rules and detectors see; after that it
        is dormant and costs nothing until it has events again.
        """
        if not math.isfinite(watermark):
            return []
        size = config.size_s
        last_closable = closable_through(watermark, config)
        ready = sorted(s for s in self.pending if s <= last_closable)
        closed: list[tuple[float, Partial]] = []
        cursor = self.closed_through
        for start in ready:
            closed += self._empty(cursor, start, config)
            closed.append((start, self.pending.pop(start)[0]))
            self.quiet = 0
            cursor = start + size
        closed += self._empty(cursor, last_closable + size, config)
        if closed:
            self.closed_through = max(self.closed_through, closed[-1][0] + size)
        return closed

    def _empty(self, start: float, end: float, config: WindowConfig) -> list[tuple[float, Partial]]:
        """Empty windows for the gap ``[start, end)``, while the series is not yet dormant."""
        if not math.isfinite(start) or start >= end:
            return []
        room = max(0, config.empty_windows - self.quiet)
        count = min(room, round((end - start) / config.size_s))
        self.quiet += count
        return [(start + i * config.size_s, Partial()) for i in range(count)]

    def dormant(self, config: WindowConfig) -> bool:
        """Nothing pending and every empty window it is owed already emitted."""
        return not self.pending and (self.quiet >= config.empty_windows or not math.isfinite(self.closed_through))


@dataclass(frozen=True)
class WindowSummary:
    count: int
    successes: int
    failures: int
    error_rate: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    cost_sum: float
    throughput_per_s: float
    late_events: int


def summarize(partial: Partial, size_s: float) -> WindowSummary:
    sketch = partial.sketch
    return WindowSummary(
        count=partial.count,
        successes=partial.successes,
        failures=partial.failures,
        error_rate=partial.failures / partial.count if partial.count else 0.0,
        latency_p50_ms=_round(sketch.quantile(0.5)),
        latency_p95_ms=_round(sketch.quantile(0.95)),
        latency_p99_ms=_round(sketch.quantile(0.99)),
        cost_sum=round(partial.cost_sum, 6),
        throughput_per_s=partial.count / size_s,
        late_events=partial.late,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def roll_up(windows: Mapping[float, Partial], base_s: float, view_s: float) -> list[tuple[float, Partial]]:
    """Hopping views of ``view_s`` that advance by ``base_s``, merged from tumbling windows of ``base_s``.

    A view is reported for every base window that ends one; it holds the base
    windows inside ``[end - view_s, end)``. Exact, because sketches merge exactly.

    >>> base = {0.0: Partial(count=1), 60.0: Partial(count=2), 120.0: Partial(count=4)}
    >>> [(start, p.count) for start, p in roll_up(base, 60, 120)]
    [(-60.0, 1), (0.0, 3), (60.0, 6)]
    """
    views = []
    span = round(view_s / base_s)
    for start in sorted(windows):
        view_start = start + base_s - view_s
        merged = Partial()
        for k in range(span):
            part = windows.get(view_start + k * base_s)
            if part is not None:
                merged.merge(part)
        views.append((view_start, merged))
    return views
