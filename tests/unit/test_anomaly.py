"""The online detector on synthetic series."""

import math
import random

import pytest

from domain.anomaly import ALERT_THRESHOLD, DetectorConfig, Score, SeriesDetector, explain

STEP = 300.0  # five-minute points: 288 a day


def noisy(n: int, seed: int = 7, mean: float = 100.0, sd: float = 5.0) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mean, sd) for _ in range(n)]


def feed(detector: SeriesDetector, values: list[float], start: int = 0) -> list[Score]:
    return [detector.score_one((start + i) * STEP, v) for i, v in enumerate(values)]


def test_step_shift_alerts_within_a_few_points():
    detector = SeriesDetector()
    feed(detector, noisy(1000))
    after = feed(detector, [v + 60.0 for v in noisy(20, seed=8)], start=1000)
    assert max(s.score for s in after[:3]) > 0.6


def test_stationary_noise_stays_below_the_alert_threshold():
    scores = [s.score for s in feed(SeriesDetector(), noisy(3000))]
    assert max(scores) < ALERT_THRESHOLD


def test_broken_daily_pattern_alerts():
    day = 288
    pattern = [50.0 + 20.0 * math.sin(2 * math.pi * i / day) for i in range(day)]
    rng = random.Random(3)
    values = [pattern[i % day] + rng.gauss(0, 0.5) for i in range(5 * day)]
    flat = [50.0 + rng.gauss(0, 0.5) for _ in range(day // 2)]  # inside the usual range
    detector = SeriesDetector()
    before = [s.score for s in feed(detector, values)]
    during = [s.score for s in feed(detector, flat, start=len(values))]
    assert max(before[2 * day :]) < ALERT_THRESHOLD
    assert max(during) > ALERT_THRESHOLD


def test_a_daily_habit_is_mostly_not_news():
    day = 288
    rng = random.Random(5)
    values = noisy(9 * day, seed=5, mean=10.0, sd=0.5)
    habit = [d * day + 100 + rng.randint(-6, 6) for d in range(8)]  # a daily job, give or take half an hour
    for i in habit:
        values[i] += 20.0
    elsewhere = 8 * day + 200  # the same spike at a new time of day
    values[elsewhere] += 20.0
    scores = [s.score for s in feed(SeriesDetector(), values)]
    repeats = [scores[i] > ALERT_THRESHOLD for i in habit[1:]]
    assert sum(repeats) < len(repeats) / 2
    assert scores[elsewhere] > ALERT_THRESHOLD


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_a_spike_repeated_half_a_day_later_is_not_news(seed):
    day = 288
    rng = random.Random(seed)
    values = noisy(9 * day, seed=seed, mean=10.0, sd=0.5)
    firsts = [k * day + rng.randrange(day // 2) for k in (2, 4, 6)]  # a new time of day each time
    repeats = [i + day // 2 + rng.randint(-6, 6) for i in firsts]  # twelve hours later, give or take half an hour
    for i in firsts + repeats:
        values[i] += 20.0
    larger = 7 * day + day // 2 + 50  # half a day after a repeat, but three times as large
    values[larger - day // 2] += 20.0
    values[larger] += 60.0
    scores = [s.score for s in feed(SeriesDetector(), values)]
    assert all(scores[i] > ALERT_THRESHOLD for i in firsts)
    assert not any(scores[i] > ALERT_THRESHOLD for i in repeats)
    assert scores[larger] > ALERT_THRESHOLD


def test_an_episode_alerts_once():
    detector = SeriesDetector()
    feed(detector, noisy(1000))
    after = [s.score for s in feed(detector, [v + 60.0 for v in noisy(50, seed=9)], start=1000)]
    assert sum(s > ALERT_THRESHOLD for s in after) <= 2


def test_restored_detector_scores_exactly_like_the_original():
    values = noisy(900, seed=11)
    for i in (180, 326, 470):  # a twice-daily spike: restored, the detector still remembers the earlier ones
        values[i] += 60.0
    values[500] += 80.0
    original = SeriesDetector()
    feed(original, values[:400])
    restored = SeriesDetector.from_state(original.to_state())
    assert feed(restored, values[400:], start=400) == feed(original, values[400:], start=400)


def test_from_state_rejects_other_objects():
    import pickle

    with pytest.raises(TypeError):
        SeriesDetector.from_state(pickle.dumps({"not": "a detector"}))


@pytest.mark.parametrize(
    "values",
    [
        [0.0] * 200 + [5.0] + [0.0] * 50,  # a move off a flat line
        [1e12 * (i % 3) for i in range(300)],
        [(-1) ** i * 1e-9 for i in range(300)],
        [random.Random(5).expovariate(0.01) ** 2 for _ in range(500)],
    ],
    ids=["flat-then-move", "huge", "tiny", "heavy-tailed"],
)
def test_scores_are_in_0_1(values):
    scores = [s.score for s in feed(SeriesDetector(), values)]
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_expected_range_brackets_typical_values():
    scores = feed(SeriesDetector(), noisy(2000, seed=13))
    assert all(s.expected_low is None for s in scores[:40])
    later = list(zip(noisy(2000, seed=13)[500:], scores[500:], strict=True))
    inside = sum(s.expected_low <= v <= s.expected_high for v, s in later)
    assert inside / len(later) > 0.97


def test_config_defaults_are_the_tuned_values():
    assert SeriesDetector().config == DetectorConfig()


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (("p95 latency", 2800.0, Score(0.97, 400.0, 900.0), "ms"), "p95 latency 2800 ms, expected 400-900 ms"),
        (("error rate", 0.0512, Score(0.5, 0.00123, 0.0201)), "error rate 0.0512, expected 0.00123-0.0201"),
        (("queue depth", 12.0, Score(0.0, None, None)), "queue depth 12"),
    ],
)
def test_explain(args, text):
    assert explain(*args).startswith(text)
    assert explain(*args).endswith(f"(anomaly score {args[2].score:.2f})")


LIVE = DetectorConfig(warmup=30)  # what the stream workers run on one-minute windows


def test_live_config_alerts_on_a_tenfold_latency_step_within_two_points():
    rng = random.Random(21)
    baseline = [rng.gauss(200.0, 15.0) for _ in range(40)]
    detector = SeriesDetector(LIVE)
    before = [detector.score_one(60.0 * i, v).score for i, v in enumerate(baseline)]
    after = [detector.score_one(60.0 * (40 + i), 2000.0 + rng.gauss(0, 30.0)).score for i in range(5)]
    assert max(before) < ALERT_THRESHOLD
    assert max(after[:2]) > ALERT_THRESHOLD


def test_live_config_on_a_mostly_zero_error_rate():
    values = [0.0] * 500 + [0.02] + [0.0] * 300 + [0.5] * 3 + [0.0] * 2000
    detector = SeriesDetector(LIVE)
    scores = [detector.score_one(60.0 * i, v) for i, v in enumerate(values)]
    assert all(0.0 <= s.score <= 1.0 for s in scores)
    assert scores[500].score > ALERT_THRESHOLD  # the first error off a clean line
    assert max(s.score for s in scores[801:804]) > ALERT_THRESHOLD
    assert all(s.expected_low is None or s.expected_low <= s.expected_high for s in scores)


@pytest.mark.parametrize("n", [1, 2, 3, 31, 32])
def test_live_config_on_short_series(n):
    detector = SeriesDetector(LIVE)
    scores = [detector.score_one(60.0 * i, float(i % 2)) for i in range(n)]
    assert all(0.0 <= s.score <= 1.0 for s in scores)
