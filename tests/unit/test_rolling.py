"""Rolling windows over panes: running totals equal a recount, replays equal a brute-force oracle."""

import pickle
import random

import pytest

from domain.rolling import (
    PaneSeries,
    Rolling,
    aligned,
    chunk_of,
    join,
    live,
    pane_config,
    replay_ticks,
    split,
)
from domain.sketch import QuantileSketch
from domain.windows import Observation, Partial, PartitionWindows, WindowConfig

WF = ("acme", "workflow", "wf-1", "")


def obs(t: float, ok: bool = True, ms: float = 100.0) -> Observation:
    return Observation(WF, t, ok, ms, 0.0)


def brute_force(items: list[Observation], tick: float, span_s: float) -> tuple[int, int, float | None]:
    inside = [o for o in items if tick - span_s <= o.t < tick]
    sketch = QuantileSketch()
    for o in inside:
        sketch.add(o.duration_ms or 0.0)
    return len(inside), sum(not o.ok for o in inside), sketch.quantile(0.95)


def test_sketch_subtract_undoes_merge_exactly():
    a, b = QuantileSketch(), QuantileSketch()
    for v in (1.0, 5.0, 5.0, 80.0):
        a.add(v)
    for v in (5.0, 300.0):
        b.add(v)
    merged = QuantileSketch.from_buckets(a.to_buckets())
    merged.merge(b)
    merged.subtract(b)
    assert merged.buckets == a.buckets and merged.count == a.count


def test_rolling_total_equals_a_recount_of_its_panes():
    rng = random.Random(3)
    rolling, panes = Rolling(span_s=10.0), []
    for start in range(100):
        part = Partial()
        for _ in range(rng.randrange(0, 4)):
            part.add(obs(start + 0.5, ok=rng.random() > 0.3, ms=rng.uniform(1, 500)))
        panes.append((float(start), part))
        tick = rolling.push(float(start), part, 1.0)
        expected = Partial()
        for s, p in panes:
            if tick - 10.0 <= s < tick:
                expected.merge(p)
        got = rolling.total
        assert (got.count, got.failures, got.sketch.buckets) == (expected.count, expected.failures,
                                                                 expected.sketch.buckets)  # fmt: skip


@pytest.mark.parametrize("span_s", [1.0, 5.0, 60.0])
def test_replayed_ticks_equal_a_brute_force_oracle(span_s):
    rng = random.Random(int(span_s))
    items = [obs(1000 + rng.uniform(0, 120), ok=rng.random() > 0.2, ms=rng.uniform(5, 900)) for _ in range(400)]
    config = pane_config(span_s=span_s, quiet_s=span_s)
    ticks = replay_ticks(items, end=1200.0, config=config, span_s=span_s)[WF]
    assert ticks[0][0] == 1001.0 and [b - a for (a, _), (b, _) in zip(ticks, ticks[1:], strict=False)] == [1.0] * (
        len(ticks) - 1
    )
    for tick, summary in ticks:
        count, failures, p95 = brute_force(items, tick, span_s)
        assert (summary.count, summary.failures) == (count, failures), tick
        if p95 is not None:
            assert summary.latency_p95_ms == pytest.approx(p95, rel=1e-3)


def test_a_quiet_series_ticks_until_one_span_without_events_then_stops():
    config = pane_config(span_s=5.0, quiet_s=5.0)
    ticks = replay_ticks([obs(100.2, ok=False)], end=200.0, config=config, span_s=5.0)[WF]
    assert [(at, s.count, s.error_rate) for at, s in ticks] == [
        (101.0, 1, 1.0), (102.0, 1, 1.0), (103.0, 1, 1.0), (104.0, 1, 1.0), (105.0, 1, 1.0), (106.0, 0, 0.0),
    ]  # fmt: skip


def test_panes_merge_across_partitions_and_wait_for_the_slowest():
    config = pane_config(span_s=3.0, quiet_s=3.0)
    series = PaneSeries.new(3.0)
    series.windows.add(0, 10.0, Partial(count=2, successes=2))
    series.windows.add(1, 10.0, Partial(count=1, failures=1))
    assert not series.windows.add(1, 10.0, Partial(count=1, failures=1))  # sent again after a restart
    [(at, summaries)] = series.advance(11.5, config)
    assert (at, summaries[3.0].count, summaries[3.0].failures) == (11.0, 3, 1)
    assert series.advance(11.6, config) == []  # nothing new: the next pane is not finished


def ticks_of(series: PaneSeries, panes: list[tuple[float, bool]], config) -> list[tuple[float, dict[float, int]]]:
    """Feed one pane per (start, ok) and advance past it; per tick, each range's failure count."""
    out = []
    for start, ok in panes:
        series.windows.add(0, start, Partial(count=1, successes=int(ok), failures=int(not ok)))
        out += [(at, {span: s.failures for span, s in by.items()}) for at, by in series.advance(start + 1.5, config)]
    return out


def test_each_range_sums_its_own_panes():
    config = pane_config(span_s=6.0, quiet_s=6.0)
    series = PaneSeries.new(6.0)
    series.use_ranges({6.0, 2.0}, pane_s=1.0)
    ticks = ticks_of(series, [(t, t < 13) for t in range(10, 16)], config)
    # failures in panes 13, 14, 15: the 2 s range counts the last two panes, the 6 s range all of them
    assert ticks[-3:] == [(14.0, {6.0: 1, 2.0: 1}), (15.0, {6.0: 2, 2.0: 2}), (16.0, {6.0: 3, 2.0: 2})]


@pytest.mark.parametrize(
    ("added", "expected_failures"),
    [
        (2.0, 2),  # shorter than the range kept: exact from its first tick
        (6.0, 4),  # as long: the same panes
        (30.0, 4),  # longer: starts with the panes the longest range still holds, and fills up from there
    ],
)
def test_a_range_added_later_starts_from_the_kept_panes(added, expected_failures):
    config = pane_config(span_s=6.0, quiet_s=30.0)
    series = PaneSeries.new(6.0)
    ticks_of(series, [(t, t % 2 == 0) for t in range(0, 12)], config)  # failures in odd panes: 1, 3, ... 11
    series.use_ranges({6.0, added}, pane_s=1.0)
    [(_at, failures)] = ticks_of(series, [(12, False)], config)
    assert failures[added] == expected_failures


def test_a_range_no_rule_reads_is_dropped():
    series = PaneSeries.new(6.0)
    series.use_ranges({6.0, 2.0}, pane_s=1.0)
    series.use_ranges({6.0}, pane_s=1.0)
    assert set(series.rollings) == {6.0}


def test_state_saved_with_a_single_rolling_window_still_loads():
    """Series saved before rules had their own ranges carried one ``rolling`` attribute."""
    series = PaneSeries.new(6.0)
    ticks_of(series, [(10, False), (11, True)], pane_config(span_s=6.0, quiet_s=6.0))
    old = PaneSeries.__new__(PaneSeries)
    old.__dict__.update(windows=series.windows, rolling=series.rollings[6.0])
    restored = pickle.loads(pickle.dumps(old))
    assert set(restored.rollings) == {6.0} and restored.rollings[6.0].total.failures == 1
    assert not hasattr(restored, "rolling")


@pytest.mark.parametrize(
    ("t", "joins_current"),
    [
        (99.9, True),  # a little late: counted in the open pane, so no failure is missed
        (45.0, True),  # within a span of the watermark
        (30.0, False),  # older than a span: a backfill, only counted as late
    ],
)
def test_late_events_join_the_open_pane_only_when_recent(t, joins_current):
    config = pane_config(span_s=60.0, quiet_s=60.0)
    part = PartitionWindows(0)
    part.observe(0, [obs(101.0)], now=0.0, config=config)
    part.observe(1, [obs(t, ok=False)], now=0.0, config=config)
    current = part.open[(WF, 101.0)]
    assert current.late == 1 and current.failures == (1 if joins_current else 0)


def test_windows_never_move_late_events():
    config = WindowConfig(size_s=60, grace_s=5)
    part = PartitionWindows(0)
    part.observe(0, [obs(200.0)], now=0.0, config=config)
    part.observe(1, [obs(100.0, ok=False)], now=0.0, config=config)
    assert part.open[(WF, 180.0)].failures == 0 and part.late_total == 1


@pytest.mark.parametrize(("at", "span", "expected"), [(120.0, 60.0, True), (121.0, 60.0, False), (30.0, 10.0, True)])
def test_aligned_ticks_end_a_tumbling_window(at, span, expected):
    assert aligned(at, span) is expected


@pytest.mark.parametrize(
    ("t", "kept"),
    [(1000.0, True), (1004.0, True), (1006.0, False), (401.0, True), (399.0, False)],
)
def test_only_events_near_the_present_feed_the_rolling_windows(t, kept):
    assert (live([obs(t)], now=1000.0) != []) is kept


def test_a_split_series_joins_back_to_the_same_ranges_and_totals():
    config = pane_config(span_s=6.0, quiet_s=6.0)
    series = PaneSeries.new(6.0)
    series.use_ranges({6.0, 2.0}, pane_s=1.0)
    ticks_of(series, [(t, t % 3 != 0) for t in range(10, 20)], config)
    series.windows.add(0, 20.0, Partial(count=1, failures=1))  # an open pane travels with the head
    head, chunks = split(series)
    # each pane once, though two ranges hold some, in the chunk of PANE_CHUNK_S it starts in
    assert {c: sorted(p) for c, p in chunks.items()} == {10.0: [14.0, 15.0, 16.0, 17.0, 18.0, 19.0]}
    assert head.chunks() == {10.0}
    stored = pickle.loads(pickle.dumps(chunks))
    joined = join(pickle.loads(pickle.dumps(head)), {s: p for panes in stored.values() for s, p in panes.items()})
    for span in (6.0, 2.0):
        a, b = series.rollings[span], joined.rollings[span]
        assert [s for s, _ in a.panes] == [s for s, _ in b.panes]
        assert (a.total.count, a.total.failures, a.total.sketch.buckets) == (
            b.total.count, b.total.failures, b.total.sketch.buckets)  # fmt: skip
    [(at, by_span)] = joined.advance(21.5, config)
    assert (at, by_span[2.0].failures, by_span[6.0].failures) == (21.0, 1, 3)  # panes 15, 18 and the one open at 20


@pytest.mark.parametrize(("start", "chunk"), [(0.0, 0.0), (9.5, 0.0), (10.0, 10.0), (1_700_000_003.5, 1_700_000_000.0)])
def test_panes_are_stored_by_chunk_of_ten_seconds(start, chunk):
    assert chunk_of(start) == chunk


def test_a_pane_missing_from_the_store_is_left_out_not_invented():
    series = PaneSeries.new(6.0)
    ticks_of(series, [(10, False), (11, True)], pane_config(span_s=6.0, quiet_s=6.0))
    head, chunks = split(series)
    joined = join(head, {11.0: chunks[10.0][11.0]})
    assert [s for s, _ in joined.rollings[6.0].panes] == [11.0] and joined.rollings[6.0].total.failures == 0
