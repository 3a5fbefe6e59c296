import random

import pytest

from domain.whatif import (
    RecordedRun,
    RecordedStep,
    Resample,
    StepChange,
    StepTimes,
    cache_hits,
    compare,
    quantile,
    record,
    replay_run,
)

CHAIN = {"a": frozenset(), "b": frozenset({"a"}), "c": frozenset({"b"})}
FLAT = {"a": frozenset(), "b": frozenset(), "c": frozenset()}


def step(step_id, span, *, lag=10.0, status="succeeded", service=None, **extra):
    return RecordedStep(step_id, service or f"svc-{step_id}", "get_thing", status, lag_ms=lag, span_ms=span, **extra)


def run(run_id="r1", *, spans=(100, 200, 300), status="succeeded", started=0.0, tail=5.0, **per_step):
    steps = {sid: per_step.get(sid) or step(sid, span) for sid, span in zip("abc", spans, strict=True)}
    duration = sum(s.lag_ms + s.span_ms for s in steps.values()) + tail
    return RecordedRun(run_id, started, status, duration, steps, tail_ms=tail)


@pytest.mark.parametrize(
    ("dependencies", "changes", "expected_ms"),
    [
        (CHAIN, {}, 635.0),  # the recorded graph replays to the recorded duration
        (FLAT, {}, 315.0),  # side by side: the longest step, its lag, the tail
        ({"a": frozenset(), "b": frozenset({"a"}), "c": frozenset({"a"})}, {}, 425.0),
        (CHAIN, {"b": StepChange(dropped=True)}, 425.0),  # c starts when a ends
        (FLAT, {"c": StepChange(dropped=True)}, 215.0),
    ],
)
def test_replay_moves_each_step_to_when_its_new_dependencies_end(dependencies, changes, expected_ms):
    replayed = replay_run(run(), dependencies, changes)
    assert replayed.duration_ms == expected_ms
    assert replayed.succeeded


def test_a_cache_hit_costs_a_millisecond_and_no_call():
    r = run(c=step("c", 300, cost=0.5))
    miss = replay_run(r, CHAIN, {"c": StepChange(cache_ttl_s=60)})
    hit = replay_run(r, CHAIN, {"c": StepChange(cache_ttl_s=60)}, cache_hits=frozenset({"c"}))
    assert miss.duration_ms - hit.duration_ms == 299.0
    assert (miss.cost, hit.cost, miss.calls - hit.calls) == (0.5, 0.0, 1)


def test_steps_after_a_failed_step_do_not_run_and_the_run_fails():
    r = run(status="failed", b=step("b", 200, status="failed", error_class="bad_input"))
    replayed = replay_run(r, CHAIN, {})
    assert not replayed.succeeded
    assert replayed.calls == 2


def test_more_attempts_rescue_transient_failures_in_proportion_to_their_rate():
    failed = step("b", 200, status="failed", error_class="upstream_5xx", attempts=3, transient_failures=3)
    runs = [run(f"r{i}", status="failed", b=failed) for i in range(400)]
    resample = Resample(spans_ms={"svc-b": [50.0]})
    for rate, expected in [(0.0, 1.0), (0.5, 0.75), (0.9, 0.19)]:  # two more attempts: 1 - rate ** 2
        change = {"b": StepChange(max_attempts=5, attempt_failure_rate=rate)}
        ok = sum(replay_run(r, CHAIN, change, resample=resample).succeeded for r in runs) / len(runs)
        assert ok == pytest.approx(expected, abs=0.06)


def test_a_fallback_takes_over_a_failed_call_with_its_own_latency():
    r = run(status="failed", b=step("b", 200, status="failed", error_class="upstream_5xx"))
    resample = Resample(spans_ms={"backup": [40.0]}, success_rate={"backup": 1.0})
    replayed = replay_run(r, CHAIN, {"b": StepChange(fallback_service="backup")}, resample=resample)
    assert replayed.succeeded
    assert replayed.duration_ms == 635.0 + 10 + 40  # the median lag of the run, then the fallback's call


def test_replay_is_deterministic_for_a_seed():
    resample = Resample(spans_ms={"new": [10.0, 20.0, 30.0, 40.0]})
    changes = {"a": StepChange(service="new")}
    first = [replay_run(run(f"r{i}"), CHAIN, changes, resample=resample).duration_ms for i in range(20)]
    again = [replay_run(run(f"r{i}"), CHAIN, changes, resample=resample).duration_ms for i in range(20)]
    assert first == again
    assert len(set(first)) > 1


def test_cache_hits_follow_time_and_ttl():
    def at(run_id, started, digest, status="succeeded"):
        return run(run_id, started=started, a=step("a", 100, params_digest=digest, status=status))

    runs = [at("r1", 0, "x"), at("r2", 30, "x"), at("r3", 100, "x"), at("r4", 101, "y"), at("r5", 102, "y"),
            at("r6", 200, "z", "failed"), at("r7", 201, "z")]  # fmt: skip
    assert cache_hits(runs, "a", ttl_s=60) == {
        "r1": False, "r2": True, "r3": False, "r4": False, "r5": True, "r6": False, "r7": False,
    }  # fmt: skip


def test_record_measures_lag_from_the_last_dependency():
    steps = [
        StepTimes("a", "s", "get", "succeeded", first_ms=5, last_ms=105),
        StepTimes("b", "s", "get", "succeeded", first_ms=8, last_ms=58),
        StepTimes("c", "s", "post", "succeeded", first_ms=120, last_ms=220),
    ]
    r = record("r", 0.0, "succeeded", 230.0, steps, {"c": frozenset({"a", "b"})})
    assert (r.steps["c"].lag_ms, r.steps["c"].span_ms, r.tail_ms) == (15.0, 100.0, 10.0)
    assert replay_run(r, {"a": frozenset(), "b": frozenset(), "c": frozenset({"a", "b"})}, {}).duration_ms == 230.0


def test_compare_gives_paired_gains_with_an_interval():
    rng = random.Random(3)
    runs = [run(f"r{i}", spans=(rng.uniform(50, 150), rng.uniform(50, 150), rng.uniform(50, 150))) for i in range(60)]
    before = [replay_run(r, CHAIN, {}) for r in runs]
    after = [replay_run(r, FLAT, {}) for r in runs]
    c = compare(before, after)
    assert 0.5 < c.gain_p50 < 0.7
    low, high = c.gain_p50_interval
    assert low < c.gain_p50 < high
    assert c.success_change == 0 and c.before.runs == 60
    same = compare(before, before)
    assert same.gain_p50 == 0 and same.gain_p50_interval == (0.0, 0.0)


def test_quantile_interpolates():
    assert quantile([1, 2, 3, 4], 0.5) == 2.5
    assert quantile([5], 0.95) == 5
