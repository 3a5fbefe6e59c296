"""Retry decisions for a failed step attempt (pure; randomness is passed in).

The delay before attempt ``n + 1`` is ``initial * coefficient ** (n - 1)``,
capped at the maximum interval, spread by +/- ``jitter`` (so many runs that
failed together do not retry together), and never shorter than the
``Retry-After`` the service sent. A failure is retried only if its class is
retryable (rate limited, timeout, network, 5xx by default; bad input,
credentials and not-found are not), its type is not in the policy's
``non_retryable_error_types``, attempts remain, and the service's
``Retry-After`` fits within the maximum interval.

>>> import random
>>> from schemas.common import StepError
>>> policy = RetryPolicy(initial_interval_s=1, backoff_coefficient=2, maximum_interval_s=10, jitter=0)
>>> decide_retry(policy, 2, StepError(type="HTTPError", message="503", status_code=503), rng=random.Random(1))
RetryDecision(retry=True, delay_s=2.0, error_class='upstream_5xx', reason='upstream_5xx is retryable')
>>> decide_retry(policy, 1, StepError(type="HTTPError", message="bad", status_code=400), rng=random.Random(1)).retry
False

A step that failed for good goes on with its fallback service, if it has one,
unless the failure says its input was bad (``worth_a_fallback``): another
service would refuse the same input.

>>> worth_a_fallback(StepError(type="HTTPError", message="unavailable", status_code=503))
True
>>> worth_a_fallback(StepError(type="HTTPError", message="unprocessable", status_code=422))
False
"""

import random
from dataclasses import dataclass

from domain.error_classifier import classify_step_error
from domain.error_rules import TRANSIENT, ErrorClass
from schemas.common import StepError
from schemas.workflows import RetryPolicy

RETRYABLE_CLASSES: frozenset[str] = frozenset(TRANSIENT)
BAD_INPUT_STATUS: frozenset[int] = frozenset({400, 422})


def classify(error: StepError) -> ErrorClass:
    """The class of an error from its status code, type and message (see ``domain.error_classifier``)."""
    return classify_step_error(error).error_class


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay_s: float
    error_class: ErrorClass
    reason: str


def backoff_s(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """Jittered exponential delay after failed attempt ``attempt`` (1-based), within the maximum."""
    base = min(policy.initial_interval_s * policy.backoff_coefficient ** (attempt - 1), policy.maximum_interval_s)
    spread = base * policy.jitter * (2 * rng.random() - 1)
    return min(max(base + spread, 0.0), policy.maximum_interval_s)


def decide_retry(policy: RetryPolicy, attempt: int, error: StepError, *, rng: random.Random) -> RetryDecision:
    """Whether failed attempt ``attempt`` is followed by another, and after how long."""
    error_class = classify(error)

    def stop(reason: str) -> RetryDecision:
        return RetryDecision(False, 0.0, error_class, reason)

    if error.type in policy.non_retryable_error_types:
        return stop(f"{error.type} is non-retryable by policy")
    if error.retryable is False:
        return stop(f"{error.type} is permanent")
    if error_class not in RETRYABLE_CLASSES and error.retryable is not True:
        return stop(f"{error_class} is not retryable")
    if attempt >= policy.maximum_attempts:
        return stop(f"attempt {attempt} of {policy.maximum_attempts}: no attempts left")
    retry_after = error.retry_after_s or 0.0
    if retry_after > policy.maximum_interval_s:
        return stop(f"Retry-After {retry_after:g}s exceeds the maximum interval {policy.maximum_interval_s:g}s")
    delay = min(max(round(backoff_s(policy, attempt, rng), 3), retry_after), policy.maximum_interval_s)
    return RetryDecision(True, delay, error_class, f"{error_class} is retryable")


def worth_a_fallback(error: StepError) -> bool:
    """Whether another service may succeed where this error ended a step: any failure but bad input."""
    return error.status_code not in BAD_INPUT_STATUS and classify(error) != "bad_input"
