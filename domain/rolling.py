"""Rolling windows over short panes (pure): the values alert rules see every second.

Alert rules are evaluated the way Prometheus evaluates them: at every tick
over the last ``span_s`` (the rule's range: the metric window's length unless
the rule names its own), not once per closed tumbling window. A rule then
fires within about a pane of its condition becoming true instead of up to a
whole window later.

Panes are tumbling windows of ``pane_s`` (one second by default), aggregated
per source partition and merged across partitions by the code that builds
metric windows (``domain.windows``). ``Rolling`` keeps one series' panes of the
last ``span_s`` and their running total: each tick adds the newest pane and
takes out the one that left, so a tick costs the same whatever the span. At a
tick that ends a tumbling window (``aligned``) the rolling value equals that
window's value, which is when rules learn their baselines.

A backtest rebuilds the same panes from stored events with ``replay_ticks``
and sees the values the live agent saw, for every event that reached the
agent within the pane grace (a later one is counted in the pane open when it
arrived, live, and in its own pane in a backtest) and within ``live``'s
bounds of the worker's clock.

>>> cfg = pane_config(pane_s=1.0, span_s=3.0, quiet_s=10.0)
>>> wf = ("t", "workflow", "wf", "")
>>> obs = [Observation(wf, t=t, ok=t < 2, duration_ms=10.0, cost=0.0) for t in (0.5, 1.5, 2.5)]
>>> [(at, s.count, round(s.error_rate, 2)) for at, s in replay_ticks(obs, end=6.0, config=cfg, span_s=3.0)[wf]]
[(1.0, 1, 0.0), (2.0, 2, 0.0), (3.0, 3, 0.33), (4.0, 2, 0.5), (5.0, 1, 1.0)]
"""

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from domain.windows import (
    Observation,
    Partial,
    PartitionWindows,
    Series,
    SeriesWindows,
    WindowConfig,
    WindowSummary,
    summarize,
)

PANE_S = 1.0
PANE_GRACE_S = 0.25
PANE_IDLE_S = 1.0
LIVE_BEHIND_S = 600.0
LIVE_AHEAD_S = 5.0
"""Rules watch the present: only events between ``LIVE_BEHIND_S`` before and ``LIVE_AHEAD_S`` after the worker's
clock are cut into panes. Older ones (a backlog after a long outage, a backfill) and ones from a clock far ahead
still count in metric windows and backtests, but they neither flood the rolling windows with thousands of panes at
once nor move the panes' watermark into the future."""


def live(observations: Iterable[Observation], *, now: float) -> list[Observation]:
    """The observations recent enough for the rolling windows of the alert rules."""
    return [o for o in observations if now - LIVE_BEHIND_S <= o.t <= now + LIVE_AHEAD_S]


def pane_config(
    *, pane_s: float = PANE_S, span_s: float, quiet_s: float, grace_s: float = PANE_GRACE_S
) -> WindowConfig:
    """Panes of ``pane_s``; a quiet series keeps being evaluated (on empty panes) for ``quiet_s``.

    ``quiet_s`` is at least one span, so a series that stops still reaches a
    window without events (an error-rate alert resolves, ``throughput == 0``
    holds) before it goes dormant.
    """
    quiet_panes = round(max(quiet_s, span_s) / pane_s)
    return WindowConfig(size_s=pane_s, grace_s=grace_s, idle_s=PANE_IDLE_S, empty_windows=quiet_panes,
                        late_to_current_s=span_s)  # fmt: skip


def aligned(at: float, span_s: float) -> bool:
    """True at a tick that ends a tumbling window of ``span_s`` (epoch-aligned)."""
    ratio = at / span_s
    return abs(ratio - round(ratio)) < 1e-9


@dataclass
class Rolling:
    """The last ``span_s`` of one series' panes and their total."""

    span_s: float
    panes: deque[tuple[float, Partial]] = field(default_factory=deque)
    total: Partial = field(default_factory=Partial)

    def push(self, start: float, partial: Partial, pane_s: float) -> float:
        """Add the pane starting at ``start``; returns the tick it completes (its end)."""
        end = start + pane_s
        self.panes.append((start, partial))
        self.total.merge(partial)
        while self.panes and self.panes[0][0] < end - self.span_s - 1e-9:
            self.total.subtract(self.panes.popleft()[1])
        return end

    def summary(self) -> WindowSummary:
        return summarize(self.total, self.span_s)


@dataclass
class PaneSeries:
    """One series as the alert agent holds it: panes being merged, and a rolling window per range rules use.

    Every rule over the series reads the rolling window of its own range
    (Prometheus's ``[1m]``); ranges no rule uses any more are dropped.
    """

    windows: SeriesWindows
    rollings: dict[float, Rolling]

    @classmethod
    def new(cls, span_s: float) -> "PaneSeries":
        return cls(SeriesWindows(), {span_s: Rolling(span_s)})

    def __setstate__(self, state: dict[str, object]) -> None:
        if "rolling" in state:  # saved when every rule read the metric window's range
            rolling = state.pop("rolling")
            assert isinstance(rolling, Rolling)
            state["rollings"] = {rolling.span_s: rolling}
        self.__dict__.update(state)

    def use_ranges(self, spans: Iterable[float], pane_s: float) -> None:
        """Keep a rolling window for each of ``spans``.

        A new range starts from the panes the longest existing one holds, so a
        range no longer than one already kept is exact from its first tick.
        """
        wanted = set(spans)
        for span in wanted - self.rollings.keys():
            longest = max(self.rollings.values(), key=lambda r: r.span_s, default=None)
            rolling = Rolling(span)
            for start, partial in longest.panes if longest is not None else ():
                rolling.push(start, partial, pane_s)
            self.rollings[span] = rolling
        for span in self.rollings.keys() - wanted:
            del self.rollings[span]

    def advance(self, watermark: float, config: WindowConfig) -> list[tuple[float, dict[float, WindowSummary]]]:
        """Close the panes every partition has finished; per pane, its tick and each range's summary, oldest first."""
        ticks: list[tuple[float, dict[float, WindowSummary]]] = []
        for start, partial in self.windows.close(watermark, config):
            for rolling in self.rollings.values():
                rolling.push(start, partial, config.size_s)
            ticks.append((start + config.size_s, {span: r.summary() for span, r in self.rollings.items()}))
        return ticks


PANE_CHUNK_S = 10.0
"""Closed panes are stored in records of this much time each: a record is written while its panes close, then kept."""


@dataclass
class SavedSeries:
    """A ``PaneSeries`` as stored: its open panes and, per range, the starts of its closed panes.

    The closed panes are stored apart, by chunk of ``PANE_CHUNK_S`` (``split``),
    so saving a series writes its newest chunk, not its whole range again.
    """

    windows: SeriesWindows
    starts: dict[float, list[float]]

    def chunks(self) -> set[float]:
        return {chunk_of(start) for starts in self.starts.values() for start in starts}


def chunk_of(start: float) -> float:
    return math.floor(start / PANE_CHUNK_S) * PANE_CHUNK_S


def split(series: PaneSeries) -> tuple[SavedSeries, dict[float, dict[float, Partial]]]:
    """What to store of a series: its head, and its closed panes by chunk, then by start (each pane once)."""
    chunks: dict[float, dict[float, Partial]] = {}
    for rolling in series.rollings.values():
        for start, partial in rolling.panes:
            chunks.setdefault(chunk_of(start), {})[start] = partial
    starts = {span: [start for start, _ in rolling.panes] for span, rolling in series.rollings.items()}
    return SavedSeries(series.windows, starts), chunks


def join(saved: SavedSeries, panes: dict[float, Partial]) -> PaneSeries:
    """The series ``split`` stored, from its head and its panes by start; each range's total is summed again."""
    rollings: dict[float, Rolling] = {}
    for span, starts in saved.starts.items():
        rolling = Rolling(span, deque((start, panes[start]) for start in starts if start in panes))
        for _start, partial in rolling.panes:
            rolling.total.merge(partial)
        rollings[span] = rolling
    return PaneSeries(saved.windows, rollings)


def replay_ticks(
    observations: Iterable[Observation], *, end: float, config: WindowConfig, span_s: float
) -> dict[Series, list[tuple[float, WindowSummary]]]:
    """The ticks the live agent would have evaluated, from stored observations, up to ``end``.

    Observations go through one partition's panes in time order and then the
    same merge and rolling code as live, with the watermark at ``end``.
    """
    partition = PartitionWindows(0)
    for offset, obs in enumerate(sorted(observations, key=lambda o: o.t)):
        partition.observe(offset, [obs], now=0.0, config=config)
    partition.watermark = max(partition.watermark, end)
    series: dict[Series, PaneSeries] = {}
    for key, start, partial in partition.close_ready(config):
        series.setdefault(key, PaneSeries.new(span_s)).windows.add(0, start, partial)
    return {key: [(at, by_span[span_s]) for at, by_span in state.advance(end, config)]
            for key, state in sorted(series.items())}  # fmt: skip
