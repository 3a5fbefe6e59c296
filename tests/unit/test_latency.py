import math
import random
import statistics
from pathlib import Path

import pytest

from domain.latency import (
    FALLBACK,
    SHARED_DATA_ENV,
    TRACE_FILE,
    find_shared_data,
    fit_lognormal,
    parse_latency,
    trace_durations_ms,
    trace_model,
)

SHARED = find_shared_data({}, Path(__file__).resolve().parent)
needs_trace = pytest.mark.skipif(
    SHARED is None or not (SHARED / TRACE_FILE).is_file(), reason="shared trace data not present"
)


@pytest.mark.parametrize(("spec", "ms"), [("zero", 0.0), ("fixed:0", 0.0), ("fixed:25", 25.0), ("fixed:2.5", 2.5)])
def test_fixed_models(spec, ms):
    model = parse_latency(spec)
    assert [model.sample_ms(random.Random(s)) for s in range(3)] == [ms] * 3
    assert (model.median_ms, model.p99_ms) == (ms, ms)


@pytest.mark.parametrize("spec", ["", "fast", "fixed:", "fixed:-1", "fixed:abc", "fixed:inf", "Trace"])
def test_invalid_specs(spec):
    with pytest.raises(ValueError, match="latency|fixed"):
        parse_latency(spec)


TINY_TRACE = """task_create_time, task_end_time, job_id, task_id,number_of_instances, status, cpus, memory
100,110,1,1,1,Terminated,50,0.1
100,200,1,2,1,Terminated,50,0.1
100,100,1,3,1,Terminated,50,0.1
100,1100,1,4,1,Failed,50,0.1
100,,1,5,1,Running,,
100,140,1,6,1,Terminated,50,0.1
"""


def test_durations_keep_terminated_positive_tasks_one_trace_second_per_ms(tmp_path):
    path = tmp_path / "batch_task.csv"
    path.write_text(TINY_TRACE)
    assert trace_durations_ms(path) == [10.0, 100.0, 40.0]


def test_fit_is_the_log_moments():
    model = fit_lognormal([10.0, 100.0, 1000.0], "t")
    assert math.isclose(model.median_ms, 100.0) and model.cap_ms == 1000.0
    assert math.isclose(model.sigma, statistics.pstdev([math.log(10), math.log(100), math.log(1000)]))


@pytest.mark.parametrize("durations", [[], [5.0], [0.0, -1.0, 3.0]])
def test_fit_needs_two_positive_durations(durations):
    with pytest.raises(ValueError, match="at least two"):
        fit_lognormal(durations, "t")


@pytest.mark.parametrize(
    ("layout", "environ_dir", "found"),
    [
        ("work/shared/data", None, "work/shared/data"),
        ("elsewhere/data", "elsewhere/data", "elsewhere/data"),
        ("nothing", None, None),
    ],
)
def test_find_shared_data(tmp_path, layout, environ_dir, found):
    (tmp_path / layout).mkdir(parents=True)
    project = tmp_path / "work" / "main"
    project.mkdir(parents=True)
    environ = {SHARED_DATA_ENV: str(tmp_path / environ_dir)} if environ_dir else {}
    located = find_shared_data(environ, project)
    if found is None:
        assert located is None or not str(located).startswith(str(tmp_path))
    else:
        assert located == tmp_path / found


def test_missing_trace_falls_back_to_the_documented_lognormal(tmp_path):
    model = trace_model({SHARED_DATA_ENV: str(tmp_path)}, tmp_path)
    assert model is FALLBACK
    assert (round(model.median_ms), round(model.p99_ms, -2)) == (36, 2500)


@needs_trace
def test_fitted_trace_model_matches_the_trace():
    durations = sorted(trace_durations_ms(SHARED / TRACE_FILE))
    model = parse_latency("trace", environ={SHARED_DATA_ENV: str(SHARED)})
    empirical_median = statistics.median(durations)
    empirical_p99 = durations[int(0.99 * len(durations))]
    assert len(durations) > 60_000
    assert 0.67 < model.median_ms / empirical_median < 1.5
    assert 0.67 < model.p99_ms / empirical_p99 < 1.5
    assert model.cap_ms == durations[-1]
    # the documented fallback is this fit, rounded
    assert math.isclose(model.mu, FALLBACK.mu, abs_tol=0.01) and math.isclose(model.sigma, FALLBACK.sigma, abs_tol=0.01)


@needs_trace
def test_samples_follow_the_fit():
    model = parse_latency("trace", environ={SHARED_DATA_ENV: str(SHARED)})
    rng = random.Random(1)
    samples = [model.sample_ms(rng) for _ in range(20_000)]
    assert 0.9 < statistics.median(samples) / model.median_ms < 1.1
    assert max(samples) <= model.cap_ms
