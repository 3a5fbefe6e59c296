import pytest

from domain.insights import (
    MIN_SAMPLES,
    ServiceCalls,
    StepErrors,
    StepTime,
    StepVersionLatency,
    Subject,
    insights,
    largest_shares,
    latency_regressions,
    permanent_errors,
    rate_limits,
    retries,
)


def version(v, p95, attempts=40, step="create-task", wf="wf-1"):
    return StepVersionLatency(workflow_id=wf, step_id=step, version=v, attempts=attempts, p95_ms=p95)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([version(3, 100.0), version(4, 300.0)], [("warning", "tripled since definition v3 (100 ms -> 300 ms in v4)")]),
        ([version(1, 100.0), version(2, 200.0)], [("warning", "doubled since definition v1 (100 ms -> 200 ms in v2)")]),
        ([version(1, 100.0), version(2, 260.0)],
         [("warning", "grew 2.6x since definition v1 (100 ms -> 260 ms in v2)")]),
        ([version(1, 100.0), version(2, 1000.0)],
         [("critical", "grew 10.0x since definition v1 (100 ms -> 1,000 ms in v2)")]),
        ([version(1, 100.0), version(2, 190.0)], []),  # below 2x
        ([version(2, 400.0), version(1, 100.0)],
         [("warning", "quadrupled since definition v1 (100 ms -> 400 ms in v2)")]),
        ([version(1, 300.0), version(2, 100.0)], []),  # faster
        ([version(1, 100.0, attempts=MIN_SAMPLES - 1), version(2, 500.0)], []),  # too few to judge v1
        ([version(1, 100.0)], []),  # one version
        ([version(1, 100.0, step="a"), version(2, 300.0, step="b")], []),  # different steps
    ],
)  # fmt: skip
def test_latency_regression_between_definition_versions(rows, expected):
    found = latency_regressions(rows)
    prefix = "step `create-task` of workflow `wf-1`: p95 "
    assert [(i.severity, i.message) for i in found] == [(severity, prefix + text) for severity, text in expected]
    for insight in found:
        assert insight.kind == "latency_regression"
        assert insight.subject == Subject(workflow_id="wf-1", step_id="create-task")
        assert insight.evidence["to_p95_ms"] / insight.evidence["from_p95_ms"] == pytest.approx(
            insight.evidence["ratio"], rel=1e-3
        )


def test_regression_compares_consecutive_versions_with_data():
    found = latency_regressions([version(1, 100.0), version(2, 110.0), version(3, 330.0, attempts=3),
                                 version(4, 400.0)])  # fmt: skip
    assert [(i.evidence["from_version"], i.evidence["to_version"]) for i in found] == [(2, 4)]


@pytest.mark.parametrize(
    ("calls", "rate_limited", "expected"),
    [
        (100, 12, ("warning", "service `slack` answers 429 on 12% of calls: lower concurrency or add backoff")),
        (100, 5, ("warning", "service `slack` answers 429 on 5% of calls: lower concurrency or add backoff")),
        (100, 4, None),
        (100, 30, ("critical", "service `slack` answers 429 on 30% of calls: lower concurrency or add backoff")),
        (MIN_SAMPLES - 1, 5, None),  # too few calls
        (0, 0, None),
    ],
)
def test_rate_limited_services(calls, rate_limited, expected):
    found = rate_limits([ServiceCalls("slack", calls, rate_limited)])
    assert [(i.severity, i.message) for i in found] == ([expected] if expected else [])
    if expected:
        assert found[0].subject == Subject(service="slack")
        assert found[0].evidence == {"calls": calls, "rate_limited": rate_limited, "share": rate_limited / calls}


def errors(error_type, status_code, failures=5, attempts=50):
    return StepErrors("wf-1", "notify", "slack", error_type, status_code, failures, attempts, example="boom")


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (errors("invalid_auth", 401), ("warning", "`invalid_auth` 401", "check its credentials and their permissions")),
        (errors("Forbidden", 403), ("warning", "`Forbidden` 403", "credentials")),
        (errors("NotFound", 404), ("warning", "`NotFound` 404", "check the resource it points at")),
        (errors("BadRequest", 400, failures=20), ("critical", "`BadRequest` 400", "check its configuration")),
        (errors("ValidationError", None), ("warning", "`ValidationError`,", "check its configuration")),
        (errors("RateLimited", 429, failures=40), None),  # retryable: another insight's business
        (errors("HTTPError", 503, failures=40), None),
        (errors("Mystery", None, failures=40), None),  # unknown class: no advice to give
        (errors("invalid_auth", 401, failures=2), None),  # too few failures
        (errors("invalid_auth", 401, failures=3, attempts=100), None),  # too small a share
        (errors("invalid_auth", 401, failures=3, attempts=5), None),  # too few attempts
    ],
)  # fmt: skip
def test_errors_retrying_cannot_fix(row, expected):
    found = permanent_errors([row])
    if expected is None:
        assert found == []
        return
    severity, error_text, advice = expected
    (insight,) = found
    assert (insight.kind, insight.severity) == ("permanent_errors", severity)
    assert error_text in insight.message and advice in insight.message
    assert insight.message.startswith(f"step `notify` of workflow `wf-1` fails on {row.failures / row.attempts:.0%}")
    assert insight.evidence["failures"] == row.failures and insight.evidence["example_message"] == "boom"


def step_time(step, total_ms, runs=20, retried=0, wf="wf-1"):
    return StepTime(wf, step, "svc", runs, retried, total_ms)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([step_time("fetch", 100.0), step_time("create-task", 700.0), step_time("notify", 200.0)],
         [("create-task", 0.7)]),
        ([step_time("a", 100.0), step_time("b", 100.0), step_time("c", 100.0)], []),  # none above 40%
        ([step_time("a", 500.0)], []),  # a single step is the whole run: nothing to compare
        ([step_time("a", 100.0, runs=5), step_time("b", 900.0, runs=5)], []),  # too few runs
        ([step_time("a", 0.0), step_time("b", 0.0)], []),
        ([step_time("a", 10.0), step_time("b", 90.0), step_time("x", 60.0, wf="wf-2"), step_time("y", 40.0, wf="wf-2")],
         [("b", 0.9), ("x", 0.6)]),
    ],
)  # fmt: skip
def test_largest_share_of_step_time(rows, expected):
    found = largest_shares(rows)
    assert [(i.subject.step_id, i.evidence["share"]) for i in found] == expected
    assert all(i.severity == "info" and "look there first" in i.message for i in found)


@pytest.mark.parametrize(
    ("runs", "retried", "expected"),
    [(100, 10, None), (100, 11, "warning"), (100, 50, "critical"), (MIN_SAMPLES - 1, 9, None), (20, 0, None)],
)
def test_steps_that_need_retries(runs, retried, expected):
    found = retries([step_time("create-task", 100.0, runs=runs, retried=retried)])
    assert [i.severity for i in found] == ([expected] if expected else [])
    if expected:
        assert found[0].message == (
            f"step `create-task` of workflow `wf-1` needs retries in {retried / runs:.0%} of runs "
            f"({retried} of {runs}): find out why its first attempts fail"
        )


def test_all_rules_together_most_severe_first():
    found = insights(
        versions=[version(1, 100.0), version(2, 300.0)],
        services=[ServiceCalls("slack", 100, 40), ServiceCalls("asana", 100, 0)],
        errors=[errors("invalid_auth", 401)],
        steps=[step_time("create-task", 900.0, retried=4), step_time("notify", 100.0)],
    )
    assert [(i.severity, i.kind) for i in found] == [
        ("critical", "rate_limited"),
        ("warning", "latency_regression"),
        ("warning", "permanent_errors"),
        ("warning", "retries"),
        ("info", "largest_share"),
    ]
    assert insights() == []
