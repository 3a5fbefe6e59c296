import math
import random
import uuid

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.sketch import RELATIVE_ACCURACY, QuantileSketch
from domain.windows import (
    Clock,
    Observation,
    Partial,
    PartitionWindows,
    SeriesWindows,
    WindowConfig,
    closable_through,
    observations,
    roll_up,
    summarize,
    window_start,
)
from schemas.registry import decode

CFG = WindowConfig(size_s=60, grace_s=10, idle_s=5)
SERIES = ("acme", "service", "slack", "slack")


def obs(t, ok=True, duration_ms=100.0, cost=0.0, series=SERIES):
    return Observation(series, t, ok, duration_ms, cost)


@pytest.mark.parametrize(
    ("t", "size", "expected"),
    [
        (0.0, 60, 0.0),
        (59.999, 60, 0.0),
        (60.0, 60, 60.0),
        (1_700_000_061.5, 60, 1_700_000_040.0),
        (-1.0, 60, -60.0),
        (299.0, 300, 0.0),
    ],
)
def test_window_assignment(t, size, expected):
    assert window_start(t, size) == expected


@pytest.mark.parametrize(
    ("events", "closed", "late_total"),
    [
        # in order: the window closes once an event passes end + grace
        ([10, 20, 71], [(0.0, 2)], 0),
        # end + grace not yet passed: nothing closes
        ([10, 20, 69], [], 0),
        # out of order within grace: the late event still counts in its window
        ([10, 65, 50, 75], [(0.0, 2)], 0),
        # beyond grace: counted as late, not added to the closed window
        ([10, 75, 30, 140], [(0.0, 1), (60.0, 1)], 1),
    ],
)
def test_partition_windows_lateness(events, closed, late_total):
    part = PartitionWindows(partition=0)
    emitted = []
    for offset, t in enumerate(events):
        part.observe(offset, [obs(float(t))], now=0.0, config=CFG)
        emitted += [(start, p.count) for _, start, p in part.close_ready(CFG)]
    assert emitted == closed
    assert part.late_total == late_total


def test_late_event_is_reported_with_the_current_window():
    part = PartitionWindows(partition=0)
    for offset, t in enumerate([10.0, 75.0, 30.0, 140.0]):
        part.observe(offset, [obs(t)], now=0.0, config=CFG)
        if offset == 1:
            part.close_ready(CFG)
    closed = {start: p for _, start, p in part.close_ready(CFG)}
    assert closed[60.0].late == 1 and closed[60.0].count == 1


def test_replayed_offsets_are_not_counted_twice():
    part = PartitionWindows(partition=0)
    for offset in (0, 1, 2, 1, 2, 3):
        part.observe(offset, [obs(float(offset))], now=0.0, config=CFG)
    assert part.open[(SERIES, 0.0)].count == 4


def test_idle_partition_advances_to_wall_time():
    part = PartitionWindows(partition=0)
    part.observe(0, [obs(100.0)], now=1000.0, config=CFG)
    assert not part.idle_advance(now=1003.0, config=CFG)
    assert part.idle_advance(now=1006.0, config=CFG)
    assert part.watermark == 1001.0
    assert [start for _, start, _ in part.close_ready(CFG)] == [60.0]


def test_partition_state_round_trips_through_json():
    part = PartitionWindows(partition=3)
    part.observe(7, [obs(10.0, duration_ms=12.5, cost=0.25), obs(11.0, ok=False)], now=5.0, config=CFG)
    again = PartitionWindows.from_json(part.to_json())
    assert again == part
    assert PartitionWindows.from_json(PartitionWindows(partition=1).to_json()).watermark == -math.inf


def test_series_merges_each_partition_once_and_closes_on_the_slowest_watermark():
    clock = Clock(partitions=2)
    series = SeriesWindows()
    a = Partial()
    a.add(obs(1.0))
    b = Partial()
    b.add(obs(2.0, ok=False))
    assert series.add(0, 0.0, a)
    assert not series.add(0, 0.0, a)  # the same partial re-sent after a crash
    clock.report(0, 200.0)
    assert series.close(clock.watermark, CFG) == []  # partition 1 has not reported
    assert series.add(1, 0.0, b)
    clock.report(1, 75.0)
    clock.report(1, 20.0)  # watermarks never go back
    [(start, merged)] = series.close(clock.watermark, CFG)
    assert (start, merged.count, merged.failures) == (0.0, 2, 1)
    assert not series.add(1, 0.0, b)  # re-sent after a restart: already in the closed window
    assert series.pending == {}


@pytest.mark.parametrize(
    ("watermark", "size", "grace", "expected"),
    [
        (-math.inf, 60, 10, -math.inf),  # no watermark yet
        (69.999, 60, 10, -60.0),  # window 0 needs 70
        (70.0, 60, 10, 0.0),
        (129.999, 60, 10, 0.0),
        (130.0, 60, 10, 60.0),
        (1.0, 0.5, 0.25, 0.0),  # a half-second pane with a quarter-second grace
        (1.2, 0.5, 0.25, 0.0),
        (1.25, 0.5, 0.25, 0.5),
    ],
)
def test_closable_through_is_the_last_window_a_watermark_closes(watermark, size, grace, expected):
    assert closable_through(watermark, WindowConfig(size_s=size, grace_s=grace)) == expected


@given(
    st.lists(st.floats(0, 600), min_size=1, max_size=20),
    st.floats(0, 900),
    st.floats(0, 30),
    st.sampled_from([0.5, 1.0, 10.0, 60.0]),
)
def test_a_watermark_that_keeps_closable_through_closes_nothing_more(events, watermark, step, size):
    cfg = WindowConfig(size_s=size, grace_s=size / 4, empty_windows=1000)
    series = SeriesWindows()
    for t in events:
        part = Partial()
        part.add(obs(t))
        series.add(0, window_start(t, size), part)
    series.close(watermark, cfg)
    later = watermark + step
    more = series.close(later, cfg)
    if closable_through(later, cfg) == closable_through(watermark, cfg):
        assert more == []  # so stage 1 need not send that watermark


def test_summary_of_a_window():
    part = Partial()
    for i in range(100):
        part.add(obs(float(i), ok=i % 10 != 0, duration_ms=float(i + 1), cost=0.01))
    summary = summarize(part, 60)
    assert (summary.count, summary.successes, summary.failures) == (100, 90, 10)
    assert summary.error_rate == pytest.approx(0.1)
    assert summary.latency_p50_ms == pytest.approx(50, rel=0.03)
    assert summary.latency_p99_ms == pytest.approx(99, rel=0.03)
    assert summary.cost_sum == pytest.approx(1.0)
    assert summary.throughput_per_s == pytest.approx(100 / 60)


def test_empty_window_has_no_latency():
    summary = summarize(Partial(count=3, failures=3), 60)
    assert summary.latency_p95_ms is None and summary.error_rate == 1.0


def test_roll_up_views_merge_base_windows():
    base = {}
    for start in (0.0, 60.0, 120.0, 180.0, 240.0):
        part = Partial()
        part.add(obs(start, duration_ms=start + 1))
        base[start] = part
    views = dict(roll_up(base, 60, 300))
    assert views[0.0].count == 5
    assert views[-60.0].count == 4
    assert views[0.0].sketch.quantile(1.0) == pytest.approx(241, rel=RELATIVE_ACCURACY)


def _record(kind, **fields):
    base = {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "schema_version": 1,
        "tenant_id": "t",
        "workflow_id": "wf",
        "occurred_at": "2026-01-01T00:00:00Z",
    }
    good, bad = decode(orjson.dumps({**base, **fields}))
    assert not bad, bad
    return good[0]


@pytest.mark.parametrize(
    ("kind", "fields", "expected"),
    [
        (
            "StepSucceeded",
            {
                "run_id": "r",
                "step_id": "s1",
                "payload": {"service": "slack", "action": "post", "duration_ms": 5, "cost": 0.1},
            },
            [("step", "wf/s1", "slack", True, 5.0, 0.1), ("service", "slack", "slack", True, 5.0, 0.1)],
        ),
        (
            "StepSucceeded",
            {
                "run_id": "r",
                "step_id": "s1",
                "payload": {"service": "crm", "action": "lookup", "duration_ms": 0.1, "cached": True},
            },
            [("step", "wf/s1", "crm", True, 0.1, 0.0)],
        ),
        (
            "StepFailed",
            {
                "run_id": "r",
                "step_id": "s1",
                "payload": {
                    "service": "slack",
                    "action": "post",
                    "duration_ms": 7,
                    "error": {"type": "http_500", "message": "boom"},
                },
            },
            [("step", "wf/s1", "slack", False, 7.0, 0.0), ("service", "slack", "slack", False, 7.0, 0.0)],
        ),
        (
            "RunFailed",
            {"run_id": "r", "payload": {}},
            [("workflow", "wf", "", False, None, 0.0), ("tenant", "*", "", False, None, 0.0)],
        ),
        (
            "RunSucceeded",
            {"run_id": "r", "payload": {"duration_ms": 40}},
            [("workflow", "wf", "", True, 40.0, 0.0), ("tenant", "*", "", True, 40.0, 0.0)],
        ),
        ("StepStarted", {"run_id": "r", "step_id": "s1", "payload": {"service": "slack", "action": "post"}}, []),
        ("RunCancelled", {"run_id": "r", "payload": {}}, []),
    ],
)
def test_observations_of_records(kind, fields, expected):
    got = [
        (o.series[1], o.series[2], o.series[3], o.ok, o.duration_ms, o.cost)
        for o in observations(_record(kind, **fields))
    ]
    assert got == expected
    assert all(o.t == 1767225600.0 for o in observations(_record(kind, **fields)))


@given(st.lists(st.floats(min_value=0.01, max_value=1e6), min_size=1, max_size=300), st.integers(1, 5))
def test_sketch_merge_equals_sketch_of_union(values, parts):
    whole = QuantileSketch()
    pieces = [QuantileSketch() for _ in range(parts)]
    for i, v in enumerate(values):
        whole.add(v)
        pieces[i % parts].add(v)
    merged = QuantileSketch()
    for piece in pieces:
        merged.merge(piece)
    assert merged == whole


@given(st.lists(st.floats(min_value=0.01, max_value=1e6), min_size=1, max_size=300), st.sampled_from([0, 0.5, 0.95, 1]))
def test_sketch_quantile_within_relative_accuracy(values, q):
    sketch = QuantileSketch()
    for v in values:
        sketch.add(v)
    ordered = sorted(values)
    exact = ordered[int(q * (len(ordered) - 1))]
    assert sketch.quantile(q) == pytest.approx(exact, rel=RELATIVE_ACCURACY * 1.01)


def test_sketch_is_small_for_a_long_tailed_distribution():
    rng = random.Random(1)
    sketch = QuantileSketch()
    for _ in range(100_000):
        sketch.add(rng.lognormvariate(3.6, 1.8))
    assert len(sketch.buckets) < 1200
    assert QuantileSketch().quantile(0.5) is None


@pytest.mark.parametrize(
    ("events", "watermark", "expected"),
    [
        # a gap between two active windows is filled with empty windows
        ([0.0, 180.0], 300.0, [(0.0, 1), (60.0, 0), (120.0, 0), (180.0, 1)]),
        # after the last event: empty windows up to the watermark ...
        ([0.0], 249.0, [(0.0, 1), (60.0, 0), (120.0, 0)]),
        # ... but no more than `empty_windows` of them (then the series is dormant)
        ([0.0], 10_000.0, [(0.0, 1), (60.0, 0), (120.0, 0), (180.0, 0)]),
        # a long gap is filled only that far too, then the next active window
        ([0.0, 600.0], 700.0, [(0.0, 1), (60.0, 0), (120.0, 0), (180.0, 0), (600.0, 1)]),
    ],
)
def test_quiet_series_get_empty_windows_until_dormant(events, watermark, expected):
    cfg = WindowConfig(size_s=60, grace_s=10, empty_windows=3)
    series = SeriesWindows()
    for t in events:
        part = Partial()
        part.add(obs(t))
        series.add(0, window_start(t, 60), part)
    got = series.close(watermark, cfg)
    assert [(start, p.count) for start, p in got] == expected
    series.close(watermark + 10_000, cfg)
    assert series.dormant(cfg)


def test_empty_windows_are_emitted_once_as_the_watermark_advances():
    cfg = WindowConfig(size_s=60, grace_s=10, empty_windows=5)
    series = SeriesWindows()
    part = Partial()
    part.add(obs(5.0))
    series.add(0, 0.0, part)
    starts = []
    for watermark in (75.0, 100.0, 140.0, 200.0, 200.0, 1000.0):
        starts += [start for start, _ in series.close(watermark, cfg)]
    assert starts == [0.0, 60.0, 120.0, 180.0, 240.0, 300.0]
    assert not series.add(0, 120.0, Partial())  # closed already
