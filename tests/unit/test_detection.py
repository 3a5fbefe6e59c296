import random

import pytest

from domain.anomaly import SeriesDetector
from domain.detection import LIVE_DETECTOR, score_window, window_record, workflow_of
from domain.windows import Observation, Partial, WindowConfig, summarize
from schemas.registry import decode, to_json

CFG = WindowConfig(size_s=60, grace_s=5)
STEP = ("acme", "step", "wf-1/notify", "slack")


def partial_of(durations, failures=0):
    part = Partial()
    for i, ms in enumerate(durations):
        part.add(Observation(STEP, float(i), i >= failures, ms, 0.01))
    return part


@pytest.mark.parametrize(
    ("series", "workflow"),
    [
        (("t", "workflow", "wf-1", ""), "wf-1"),
        (("t", "step", "wf-1/send", "slack"), "wf-1"),
        (("t", "service", "slack", "slack"), "all"),
        (("t", "tenant", "*", ""), "all"),
    ],
)
def test_records_name_their_workflow(series, workflow):
    assert workflow_of(series) == workflow


def test_window_record_is_valid_stable_and_carries_its_sketch():
    part = partial_of([100.0] * 18 + [900.0, 1000.0], failures=2)
    record = window_record(STEP, 120.0, part, CFG)
    again = window_record(STEP, 120.0, partial_of([100.0] * 18 + [900.0, 1000.0], failures=2), CFG)
    assert record.event_id == again.event_id
    assert record.event_id != window_record(STEP, 180.0, part, CFG).event_id
    p = record.payload
    assert (p.scope, p.key, p.service, p.count, p.failures, p.error_rate) == (
        "step",
        "wf-1/notify",
        "slack",
        20,
        2,
        0.1,
    )
    assert p.window_end.timestamp() - p.window_start.timestamp() == 60
    assert sum(p.latency_sketch.values()) == 20
    good, bad = decode(to_json(record))  # the record survives the wire and the registry's validation
    assert not bad and good[0] == record


def test_a_latency_shift_is_an_anomaly_with_an_explanation_and_a_steady_series_is_not():
    rng = random.Random(3)
    detectors: dict[str, SeriesDetector] = {}
    flagged = []
    for w in range(70):
        level = 100.0 if w < 50 else 1000.0
        part = partial_of([rng.lognormvariate(0, 0.1) * level for _ in range(30)])
        anomalies, points = score_window(STEP, w * 60.0, summarize(part, 60), detectors, config=CFG)
        assert points == 4  # p50, p95, error rate, throughput
        flagged += [(w, a) for a in anomalies]
    assert set(detectors) == {"latency_p50_ms", "latency_p95_ms", "error_rate", "throughput_per_s"}
    assert flagged and all(w >= 50 for w, _ in flagged)
    first_w, first = min(flagged, key=lambda x: x[0])
    assert first_w <= 51
    assert first.payload.metric.startswith("latency")
    assert "expected" in first.payload.explanation and "wf-1/notify" in first.payload.explanation
    assert first.payload.expected_high is not None and first.payload.value > first.payload.expected_high


def test_live_detectors_warm_up_for_half_an_hour_of_windows():
    assert LIVE_DETECTOR.warmup == 30
    detectors: dict[str, SeriesDetector] = {}
    for w in range(LIVE_DETECTOR.warmup):
        part = partial_of([100.0 * (10 if w == 20 else 1)] * 10)
        anomalies, _ = score_window(STEP, w * 60.0, summarize(part, 60), detectors, config=CFG)
        assert anomalies == []
