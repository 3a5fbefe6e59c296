import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.retry import classify, decide_retry
from schemas.common import StepError
from schemas.workflows import RetryPolicy


@pytest.mark.parametrize(
    ("type_", "status", "expected"),
    [
        ("HTTPError", 429, "rate_limited"),
        ("HTTPError", 503, "upstream_5xx"),
        ("HTTPError", 500, "upstream_5xx"),
        ("HTTPError", 504, "timeout"),
        ("HTTPError", 401, "credentials"),
        ("HTTPError", 403, "credentials"),
        ("HTTPError", 404, "not_found"),
        ("HTTPError", 400, "bad_input"),
        ("HTTPError", 422, "bad_input"),
        ("ReadTimeout", None, "timeout"),
        ("asyncio.TimeoutError", None, "timeout"),
        ("ConnectError", None, "network"),
        ("ratelimited", None, "rate_limited"),
        ("invalid_auth", None, "credentials"),
        ("ValidationError", None, "bad_input"),
        ("ZeroDivisionError", None, "step_bug"),
        ("E", None, "unknown"),
    ],
)
def test_classify(type_, status, expected):
    assert classify(StepError(type=type_, message="m", status_code=status)) == expected


@pytest.mark.parametrize(
    ("status", "message", "expected", "retry"),
    [
        (403, "Daily Limit Exceeded", "quota_exhausted", False),
        (403, "User Rate Limit Exceeded", "rate_limited", True),
        (None, '{"ok": false, "error": "ratelimited"}', "rate_limited", True),
        (None, "getaddrinfo failed: Name or service not known", "network", True),
    ],
)
def test_the_message_decides_when_the_status_does_not(status, message, expected, retry):
    decision = decide_retry(
        RetryPolicy(), 1, StepError(type="E", message=message, status_code=status), rng=random.Random(0)
    )
    assert (decision.error_class, decision.retry) == (expected, retry)


@pytest.mark.parametrize(
    ("error", "policy", "attempt", "retry", "reason_part"),
    [
        (StepError(type="E", message="m", status_code=400), RetryPolicy(), 1, False, "bad_input"),
        (StepError(type="E", message="m", status_code=429), RetryPolicy(maximum_attempts=3), 3, False, "no attempts"),
        (StepError(type="Quota", message="m", status_code=503), RetryPolicy(non_retryable_error_types=("Quota",)),
         1, False, "non-retryable by policy"),
        (StepError(type="E", message="m", status_code=429, retry_after_s=500), RetryPolicy(maximum_interval_s=60),
         1, False, "exceeds the maximum"),
        (StepError(type="E", message="m", status_code=429, retry_after_s=5), RetryPolicy(), 1, True, "rate_limited"),
        (StepError(type="SMTPTransient", message="m", retryable=True), RetryPolicy(), 1, True, "unknown is retryable"),
        (StepError(type="E", message="m", status_code=503, retryable=False), RetryPolicy(), 1, False, "permanent"),
    ],
)  # fmt: skip
def test_decisions(error, policy, attempt, retry, reason_part):
    decision = decide_retry(policy, attempt, error, rng=random.Random(0))
    assert decision.retry is retry and reason_part in decision.reason


def test_retry_after_wins_over_a_shorter_backoff():
    error = StepError(type="E", message="m", status_code=429, retry_after_s=7)
    decision = decide_retry(RetryPolicy(initial_interval_s=1, jitter=0), 1, error, rng=random.Random(0))
    assert decision.delay_s == 7


policies = st.builds(
    RetryPolicy,
    initial_interval_s=st.floats(0.01, 100),
    backoff_coefficient=st.floats(1, 10),
    maximum_interval_s=st.floats(0.01, 1000),
    maximum_attempts=st.integers(1, 20),
    jitter=st.floats(0, 1),
)
errors = st.builds(
    StepError,
    type=st.sampled_from(["HTTPError", "Timeout", "ConnectError", "Oops"]),
    message=st.just("m"),
    status_code=st.sampled_from([None, 429, 500, 503, 504, 400, 401, 404]),
    retry_after_s=st.one_of(st.none(), st.floats(0, 2000)),
)


@given(policy=policies, error=errors, attempt=st.integers(1, 30), seed=st.integers(0, 2**32))
def test_delays_stay_within_maximum_and_respect_retry_after(policy, error, attempt, seed):
    decision = decide_retry(policy, attempt, error, rng=random.Random(seed))
    if decision.retry:
        assert decision.delay_s <= policy.maximum_interval_s + 1e-3
        assert decision.delay_s >= (error.retry_after_s or 0) - 1e-3
        assert decision.delay_s >= 0


@given(policy=policies, error=errors, seed=st.integers(0, 2**32))
def test_attempts_stop_at_the_maximum(policy, error, seed):
    rng = random.Random(seed)
    attempts = 1
    while decide_retry(policy, attempts, error, rng=rng).retry:
        attempts += 1
        assert attempts <= policy.maximum_attempts
    assert attempts <= policy.maximum_attempts
