"""The NAB scoring rule on hand-computed cases.

A 200-record file (probation: the first 30 records) with one window over
records 40..59 (width 20). Expected values are written from the rule's
definition, with ``2 / (1 + exp(5x)) - 1 == tanh(-2.5x)``.
"""

import math
from datetime import datetime, timedelta

import pytest

from domain.nab import (
    PROFILES,
    Labelled,
    Profile,
    normalise,
    probation_length,
    profiles_from_json,
    scaled_sigmoid,
    score_corpus,
    score_file,
    sweep_threshold,
    window_spans,
)

STANDARD = PROFILES["standard"]
ROWS = 200
SPAN = (40, 59)
MAX_TP = math.tanh(2.5)


def detections_at(*indices: int) -> list[float]:
    return [1.0 if i in indices else 0.0 for i in range(ROWS)]


CASES = [
    # (what, detections, raw score)
    ("null detector: the window is missed", (), -1.0),
    ("detection at the window start earns the full tp weight", (40,), 1.0),
    ("detection at the window end earns little", (59,), math.tanh(2.5 / 20) / MAX_TP),
    ("halfway into the window", (50,), math.tanh(2.5 * 10 / 20) / MAX_TP),
    ("only the earliest detection in the window counts", (40, 45, 59), 1.0),
    ("a later detection does not lower an earlier one", (59, 50), math.tanh(2.5 * 10 / 20) / MAX_TP),
    ("false positive right after the window is nearly free", (60,), -1.0 - 0.11 * math.tanh(2.5 / 19)),
    ("false positive before any window costs the fp weight", (35,), -1.0 - 0.11),
    ("false positive three window lengths past the end costs the fp weight", (59 + 57,), -1.0 - 0.11),
    ("false positive far past the end", (199,), -1.0 - 0.11),
    ("detection in the probation period is ignored", (5, 29), -1.0),
    ("first record after probation counts", (30,), -1.0 - 0.11),
    ("tp plus an fp after", (40, 70), 1.0 - 0.11 * math.tanh(2.5 * 11 / 19)),
]


@pytest.mark.parametrize(("what", "detected", "raw"), CASES, ids=[c[0] for c in CASES])
def test_file_score(what, detected, raw):
    result = score_file(Labelled("f", detections_at(*detected), [SPAN]), STANDARD, threshold=0.5)
    assert result.raw == pytest.approx(raw, abs=1e-12)


def test_counts():
    result = score_file(Labelled("f", detections_at(5, 35, 41, 42, 60, 61), [SPAN]), STANDARD, threshold=0.5)
    assert (result.detected, result.missed, result.false_positives, result.windows) == (1, 0, 3, 1)


@pytest.mark.parametrize(
    ("profile", "raw_missed"),
    [(STANDARD, -1.0), (PROFILES["reward_low_FN_rate"], -2.0), (PROFILES["reward_low_FP_rate"], -1.0)],
)
def test_normalised_null_is_0_and_perfect_is_100(profile, raw_missed):
    missed = score_corpus([Labelled("f", detections_at(), [SPAN])], profile, threshold=0.5)
    perfect = score_corpus([Labelled("f", detections_at(40), [SPAN])], profile, threshold=0.5)
    assert missed.raw == raw_missed
    assert (missed.normalised, perfect.normalised) == (0.0, 100.0)


def test_normalise_midpoint_and_no_windows():
    assert normalise(0.0, 2, STANDARD) == 50.0
    assert math.isnan(normalise(-0.11, 0, STANDARD))


def test_sweep_picks_the_best_corpus_wide_threshold():
    # File a: window record scores 0.9, one fp at 0.95 before the window.
    # File b: window record scores 0.6, fps at 0.7 and 0.8 before its window.
    a = [0.0] * ROWS
    a[40], a[35] = 0.9, 0.95
    b = [0.0] * ROWS
    b[40], b[33], b[34] = 0.6, 0.7, 0.8
    items = [Labelled("a", a, [SPAN]), Labelled("b", b, [SPAN])]
    # thresholds: inf -> -2; 0.95 -> -2.11; 0.9 -> -0.11; 0.8 -> -0.22; 0.7 -> -0.33; 0.6 -> 1.67
    threshold, raw = sweep_threshold(items, STANDARD)
    assert threshold == 0.6
    assert raw == pytest.approx(2 - 0.33)
    assert score_corpus(items, STANDARD).raw == pytest.approx(raw)
    # with costlier false positives no threshold beats detecting nothing but 0.9 on file a alone
    threshold, raw = sweep_threshold(items, Profile("strict", 1.0, 1.0, 1.0))
    assert (threshold, raw) == (0.9, pytest.approx(-1.0))


def test_sweep_with_no_detection_worth_it_keeps_infinite_threshold():
    scores = [0.0] * ROWS
    scores[35] = 1.0  # a false positive only
    threshold, raw = sweep_threshold([Labelled("f", scores, [SPAN])], STANDARD)
    assert (threshold, raw) == (math.inf, -1.0)


def test_probation_is_15_percent_capped_at_750_records():
    assert [probation_length(n) for n in (0, 10, 199, 200, 5000, 22_695)] == [0, 1, 29, 30, 750, 750]


def test_scaled_sigmoid_edges():
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(2.999) > -1.0
    assert scaled_sigmoid(3.0) == -1.0


def test_window_spans_by_timestamp():
    t0 = datetime(2014, 4, 1)
    stamps = [t0 + timedelta(minutes=5 * i) for i in range(100)]
    windows = [
        (stamps[70], stamps[79]),
        (stamps[10] - timedelta(minutes=2), stamps[19] + timedelta(minutes=2)),  # between records
        (datetime(2020, 1, 1), datetime(2020, 1, 2)),  # no record inside: dropped
    ]
    assert window_spans(stamps, windows) == [(10, 19), (70, 79)]


def test_profiles_from_json():
    doc = {"p": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 2.0, "fpWeight": 0.11, "tnWeight": 1.0}}}
    assert profiles_from_json(doc) == {"p": Profile("p", 1.0, 0.11, 2.0)}
