"""Performance insights (pure): recommendations from aggregated step, run and service statistics.

Each rule reads one kind of aggregate over a period and says what to look at,
with the numbers that made it say so:

* ``latency_regression``: a step's p95 grew by ``REGRESSION_RATIO`` (2x) or
  more from one definition version to the next (each version with at least
  ``MIN_SAMPLES`` attempts).
* ``rate_limited``: a service answered 429 on ``RATE_LIMIT_SHARE`` (5%) or
  more of its calls: lower the concurrency or add backoff.
* ``permanent_errors``: a step failed at least ``PERMANENT_MIN_FAILURES`` times
  and on ``PERMANENT_MIN_SHARE`` (5%) or more of its attempts with an error
  that retrying cannot fix (bad input, credentials, not found: 400, 401, 403,
  404): check its configuration or credentials.
* ``largest_share``: in each workflow with several steps, the step that takes
  the largest share of the time its steps take (summed over attempts), if
  that share is at least ``LARGEST_SHARE_MIN``: where to look first.
* ``retries``: a step that needed a retry in more than ``RETRY_RUN_SHARE``
  (10%) of the runs it ran in.

Rates need at least ``MIN_SAMPLES`` calls, attempts or runs. Insights come out
most severe first.

>>> calls = [ServiceCalls(service="slack", calls=100, rate_limited=12)]
>>> [i.message for i in insights(services=calls)]
['service `slack` answers 429 on 12% of calls: lower concurrency or add backoff']
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from domain.retry import RETRYABLE_CLASSES, classify
from schemas.common import StepError

Severity = Literal["info", "warning", "critical"]
Kind = Literal["latency_regression", "rate_limited", "permanent_errors", "largest_share", "retries"]
Evidence = Mapping[str, float | int | str | None]

MIN_SAMPLES = 10
"""Fewest calls, attempts or runs a rate or a p95 is judged on."""
REGRESSION_RATIO = 2.0
REGRESSION_CRITICAL_RATIO = 5.0
RATE_LIMIT_SHARE = 0.05
RATE_LIMIT_CRITICAL_SHARE = 0.25
PERMANENT_MIN_FAILURES = 3
PERMANENT_MIN_SHARE = 0.05
PERMANENT_CRITICAL_SHARE = 0.25
LARGEST_SHARE_MIN = 0.4
RETRY_RUN_SHARE = 0.10
RETRY_CRITICAL_RUN_SHARE = 0.5

_SEVERITY_RANK: Mapping[str, int] = {"critical": 0, "warning": 1, "info": 2}
_PERMANENT_ADVICE: Mapping[str, str] = {
    "credentials": "check its credentials and their permissions",
    "not_found": "check the resource it points at (ids, URLs) in its configuration",
    "bad_input": "check its configuration and the parameters it sends",
}


@dataclass(frozen=True)
class Subject:
    workflow_id: str | None = None
    step_id: str | None = None
    service: str | None = None

    def label(self) -> str:
        parts = [f"workflow `{self.workflow_id}`"] if self.workflow_id else []
        parts += [f"step `{self.step_id}`"] if self.step_id else []
        parts += [f"service `{self.service}`"] if self.service else []
        return ", ".join(parts)


@dataclass(frozen=True)
class Insight:
    kind: Kind
    severity: Severity
    subject: Subject
    message: str
    evidence: Evidence = field(default_factory=dict)


# ---------------------------------------------------------------- aggregates (one row of a query each)


@dataclass(frozen=True)
class StepVersionLatency:
    """Finished attempts of one step under one definition version."""

    workflow_id: str
    step_id: str
    version: int
    attempts: int
    p95_ms: float
    first_at: str = ""
    last_at: str = ""


@dataclass(frozen=True)
class ServiceCalls:
    service: str
    calls: int
    rate_limited: int
    """Calls answered 429."""


@dataclass(frozen=True)
class StepErrors:
    """Failed attempts of a step with one error type and status code, out of all its attempts."""

    workflow_id: str
    step_id: str
    service: str
    error_type: str
    status_code: int | None
    failures: int
    attempts: int
    example: str = ""


@dataclass(frozen=True)
class StepTime:
    """A step over the runs it ran in: time summed over attempts, and runs that needed a retry."""

    workflow_id: str
    step_id: str
    service: str
    runs: int
    runs_retried: int
    total_ms: float
    p95_ms: float | None = None


# ---------------------------------------------------------------- rules


def _grew(ratio: float) -> str:
    words = {2: "doubled", 3: "tripled", 4: "quadrupled"}
    nearest = round(ratio)
    if nearest in words and abs(ratio - nearest) < 0.25:
        return words[nearest]
    return f"grew {ratio:.1f}x"


def latency_regressions(rows: Iterable[StepVersionLatency]) -> list[Insight]:
    """Consecutive definition versions (with enough attempts) where a step's p95 grew by REGRESSION_RATIO."""
    by_step: dict[tuple[str, str], list[StepVersionLatency]] = {}
    for row in rows:
        if row.attempts >= MIN_SAMPLES:
            by_step.setdefault((row.workflow_id, row.step_id), []).append(row)
    found = []
    for (workflow_id, step_id), versions in sorted(by_step.items()):
        versions.sort(key=lambda r: r.version)
        for before, after in zip(versions, versions[1:], strict=False):
            if before.p95_ms <= 0 or after.p95_ms / before.p95_ms < REGRESSION_RATIO:
                continue
            ratio = after.p95_ms / before.p95_ms
            found.append(
                Insight(
                    kind="latency_regression",
                    severity="critical" if ratio >= REGRESSION_CRITICAL_RATIO else "warning",
                    subject=Subject(workflow_id=workflow_id, step_id=step_id),
                    message=f"step `{step_id}` of workflow `{workflow_id}`: p95 {_grew(ratio)} since definition "
                    f"v{before.version} ({before.p95_ms:,.0f} ms -> {after.p95_ms:,.0f} ms in v{after.version})",
                    evidence={
                        "ratio": round(ratio, 3),
                        "from_version": before.version,
                        "from_p95_ms": before.p95_ms,
                        "from_attempts": before.attempts,
                        "from_first_at": before.first_at,
                        "from_last_at": before.last_at,
                        "to_version": after.version,
                        "to_p95_ms": after.p95_ms,
                        "to_attempts": after.attempts,
                        "to_first_at": after.first_at,
                        "to_last_at": after.last_at,
                    },
                )  # fmt: skip
            )
    return found


def rate_limits(rows: Iterable[ServiceCalls]) -> list[Insight]:
    found = []
    for row in sorted(rows, key=lambda r: r.service):
        if row.calls < MIN_SAMPLES or row.rate_limited / row.calls < RATE_LIMIT_SHARE:
            continue
        share = row.rate_limited / row.calls
        found.append(
            Insight(
                kind="rate_limited",
                severity="critical" if share >= RATE_LIMIT_CRITICAL_SHARE else "warning",
                subject=Subject(service=row.service),
                message=f"service `{row.service}` answers 429 on {share:.0%} of calls: "
                "lower concurrency or add backoff",
                evidence={"calls": row.calls, "rate_limited": row.rate_limited, "share": round(share, 4)},
            )
        )
    return found


def permanent_errors(rows: Iterable[StepErrors]) -> list[Insight]:
    found = []
    for row in sorted(rows, key=lambda r: (r.workflow_id, r.step_id, -r.failures, r.error_type)):
        error_class = classify(StepError(type=row.error_type or "unknown", message="", status_code=row.status_code))
        if error_class in RETRYABLE_CLASSES or error_class == "unknown":
            continue
        share = row.failures / row.attempts if row.attempts else 0.0
        if row.failures < PERMANENT_MIN_FAILURES or row.attempts < MIN_SAMPLES or share < PERMANENT_MIN_SHARE:
            continue
        code = f" {row.status_code}" if row.status_code is not None else ""
        found.append(
            Insight(
                kind="permanent_errors",
                severity="critical" if share >= PERMANENT_CRITICAL_SHARE else "warning",
                subject=Subject(workflow_id=row.workflow_id, step_id=row.step_id, service=row.service),
                message=f"step `{row.step_id}` of workflow `{row.workflow_id}` fails on {share:.0%} of attempts "
                f"with `{row.error_type}`{code}, which retrying cannot fix: {_PERMANENT_ADVICE[error_class]}",
                evidence={
                    "error_type": row.error_type,
                    "status_code": row.status_code,
                    "error_class": error_class,
                    "failures": row.failures,
                    "attempts": row.attempts,
                    "share": round(share, 4),
                    "example_message": row.example,
                },
            )  # fmt: skip
        )
    return found


def largest_shares(rows: Iterable[StepTime]) -> list[Insight]:
    by_workflow: dict[str, list[StepTime]] = {}
    for row in rows:
        by_workflow.setdefault(row.workflow_id, []).append(row)
    found = []
    for workflow_id, steps in sorted(by_workflow.items()):
        total = sum(s.total_ms for s in steps)
        if len(steps) < 2 or total <= 0:
            continue
        top = max(steps, key=lambda s: (s.total_ms, s.step_id))
        share = top.total_ms / total
        if share < LARGEST_SHARE_MIN or top.runs < MIN_SAMPLES:
            continue
        found.append(
            Insight(
                kind="largest_share",
                severity="info",
                subject=Subject(workflow_id=workflow_id, step_id=top.step_id, service=top.service or None),
                message=f"step `{top.step_id}` takes {share:.0%} of the time the steps of workflow `{workflow_id}` "
                "take: look there first to make runs faster",
                evidence={
                    "share": round(share, 4),
                    "step_ms": round(top.total_ms, 3),
                    "all_steps_ms": round(total, 3),
                    "runs": top.runs,
                    "steps": len(steps),
                    "p95_ms": top.p95_ms,
                },
            )  # fmt: skip
        )
    return found


def retries(rows: Iterable[StepTime]) -> list[Insight]:
    found = []
    for row in sorted(rows, key=lambda r: (r.workflow_id, r.step_id)):
        if row.runs < MIN_SAMPLES or row.runs_retried / row.runs <= RETRY_RUN_SHARE:
            continue
        share = row.runs_retried / row.runs
        found.append(
            Insight(
                kind="retries",
                severity="critical" if share >= RETRY_CRITICAL_RUN_SHARE else "warning",
                subject=Subject(workflow_id=row.workflow_id, step_id=row.step_id, service=row.service or None),
                message=f"step `{row.step_id}` of workflow `{row.workflow_id}` needs retries in {share:.0%} of runs "
                f"({row.runs_retried:,} of {row.runs:,}): find out why its first attempts fail",
                evidence={"runs": row.runs, "runs_retried": row.runs_retried, "share": round(share, 4)},
            )
        )
    return found


def insights(
    *,
    versions: Iterable[StepVersionLatency] = (),
    services: Iterable[ServiceCalls] = (),
    errors: Iterable[StepErrors] = (),
    steps: Sequence[StepTime] = (),
) -> list[Insight]:
    """Every rule over its aggregates, most severe first (stable within a severity)."""
    found = [
        *latency_regressions(versions),
        *rate_limits(services),
        *permanent_errors(errors),
        *retries(steps),
        *largest_shares(steps),
    ]
    return sorted(found, key=lambda i: _SEVERITY_RANK[i.severity])
