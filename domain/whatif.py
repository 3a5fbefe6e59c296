"""What-if replay: recorded runs of a workflow, replayed under another shape of it.

A recorded run says, for each step, when it could have started (its
dependencies had ended, or the run had begun), how long it then waited to be
dispatched (``lag_ms``: the executor's reaction and the log round trip), and
how long it took from its first attempt to its last event (``span_ms``: the
calls, and any retries with their backoff). Replaying a run under a new
dependency graph keeps each step's lag and span and recomputes when it could
start::

    end(s) = max(end(d) for d in new_dependencies(s), default=0) + lag(s) + span(s)

so the original graph replays every run to its recorded duration, and a
graph with fewer edges finishes as soon as its longest remaining path. A
``StepChange`` says what else differs for a step: dropped, answered from the
cache, retried more, or moved to another service; where the new shape needs a
figure no run recorded (a fallback's latency, a retry's outcome) it is drawn
from ``Resample`` with a seeded generator, so a replay is deterministic.

>>> a = RecordedStep("a", "gmail", "get_message", "succeeded", lag_ms=5, span_ms=100)
>>> b = RecordedStep("b", "slack", "post_message", "succeeded", lag_ms=5, span_ms=50)
>>> run = RecordedRun("r1", 0.0, "succeeded", 170.0, {"a": a, "b": b}, tail_ms=10)
>>> replay_run(run, {"a": frozenset(), "b": frozenset({"a"})}, {}).duration_ms
170.0
>>> replay_run(run, {"a": frozenset(), "b": frozenset()}, {}).duration_ms
115.0
"""

import hashlib
import math
import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

CACHED_SPAN_MS = 1.0
"""A cache hit's span when no recorded hit says otherwise: the executor answers from memory."""


@dataclass(frozen=True)
class RecordedStep:
    step_id: str
    service: str
    action: str
    status: str
    """succeeded, failed or skipped (how the step ended in this run)."""
    lag_ms: float
    span_ms: float
    attempts: int = 1
    cost: float = 0.0
    params_digest: str | None = None
    cached: bool = False
    error_class: str | None = None
    """The class of the step's last error (``domain.error_rules``), when it had one."""
    transient_failures: int = 0
    """Attempts that failed with a transient error (rate limited, timeout, network, 5xx)."""
    retry_after_s: float | None = None
    priced: bool = False
    """``cost`` was reported by the step's events (else it is the catalog's price per call)."""


@dataclass(frozen=True)
class RecordedRun:
    run_id: str
    started_s: float
    """Start time (seconds since the epoch): orders runs and times the cache."""
    status: str
    duration_ms: float
    steps: Mapping[str, RecordedStep]
    tail_ms: float = 0.0
    """From the last step's end to the run's end."""


@dataclass(frozen=True)
class StepChange:
    """How a step of the new shape differs from the recorded one (all optional)."""

    dropped: bool = False
    cache_ttl_s: float | None = None
    """The step is now cached: calls with a digest seen within the TTL are hits."""
    max_attempts: int | None = None
    """A retry policy allowing this many attempts (transient failures get more tries)."""
    retry_interval_s: float = 1.0
    attempt_failure_rate: float = 0.5
    """Chance that one more attempt fails too (the step's share of transient failures across the history)."""
    fallback_service: str | None = None
    """Calls that failed for good go to this service instead."""
    service: str | None = None
    """The step now calls this service (a substitution): its latency and outcome are resampled."""
    merged_into: str | None = None
    """The step is batched into another: it costs nothing of its own and ends with it."""


@dataclass
class Resample:
    """Figures for what no run recorded: per service, spans and outcomes seen anywhere in the history."""

    spans_ms: dict[str, list[float]] = field(default_factory=dict)
    success_rate: dict[str, float] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)
    default_span_ms: dict[str, float] = field(default_factory=dict)
    """Catalog latency per service, used only when the history has no span of it."""

    def span(self, service: str, rng: random.Random) -> float:
        seen = self.spans_ms.get(service)
        if seen:
            return rng.choice(seen)
        return self.default_span_ms.get(service, 500.0)

    def succeeds(self, service: str, rng: random.Random) -> bool:
        return rng.random() < self.success_rate.get(service, 0.99)


@dataclass(frozen=True)
class ReplayedRun:
    run_id: str
    duration_ms: float
    succeeded: bool
    cost: float
    calls: int


def replay_run(
    run: RecordedRun,
    dependencies: Mapping[str, frozenset[str]],
    changes: Mapping[str, StepChange],
    *,
    resample: Resample | None = None,
    cache_hits: frozenset[str] = frozenset(),
    seed: int = 0,
) -> ReplayedRun:
    """One recorded run under ``dependencies`` (step -> the steps it waits for), with ``changes``.

    ``cache_hits`` names the steps whose call this run would have answered from
    the cache (see ``cache_hits``). Steps of ``dependencies`` the run never
    recorded take their lag from the run's median and their span from ``resample``.
    """
    resample = resample or Resample()
    rng = random.Random(_seed(run.run_id, seed))
    lags = [s.lag_ms for s in run.steps.values()]
    median_lag = statistics.median(lags) if lags else 0.0
    ends: dict[str, float] = {}
    succeeded, cost, calls = run.status == "succeeded" or not run.steps, 0.0, 0
    failed_steps: set[str] = set()
    for step_id in _order(dependencies):
        change = changes.get(step_id, StepChange())
        start = max((ends[d] for d in dependencies[step_id] if d in ends), default=0.0)
        if change.dropped:
            ends[step_id] = start
            continue
        if dependencies[step_id] & failed_steps:
            failed_steps.add(step_id)  # never ran: its dependency failed
            ends[step_id] = start
            continue
        recorded = run.steps.get(step_id)
        if change.service or recorded is None:
            service = change.service or (recorded.service if recorded else "")
            ok = resample.succeeds(service, rng)
            lag, span = (recorded.lag_ms if recorded else median_lag), resample.span(service, rng)
            step_cost, attempts = resample.cost.get(service, 0.0), 1
        else:
            ok, lag, span = recorded.status != "failed", recorded.lag_ms, recorded.span_ms
            step_cost, attempts = recorded.cost, recorded.attempts if recorded.status != "skipped" else 0
        if change.merged_into:
            ends[step_id] = start
            continue
        if step_id in cache_hits and ok:
            span, step_cost, attempts = CACHED_SPAN_MS, 0.0, 0
        if not ok and recorded is not None and change.max_attempts and recorded.transient_failures:
            ok, extra_ms, extra_attempts = _more_attempts(recorded, change, resample, rng)
            span += extra_ms
            attempts += extra_attempts
            step_cost += extra_attempts * resample.cost.get(recorded.service, 0.0)
        if not ok and change.fallback_service:
            fallback = change.fallback_service
            ok = resample.succeeds(fallback, rng)
            span += median_lag + resample.span(fallback, rng)
            step_cost += resample.cost.get(fallback, 0.0)
            attempts += 1
        ends[step_id] = start + lag + span
        cost += step_cost
        calls += attempts
        if not ok:
            failed_steps.add(step_id)
    if failed_steps:
        succeeded = False
    elif run.status == "failed" and not any(s.status == "failed" for s in run.steps.values()):
        succeeded = False  # failed for a reason outside the steps (a timeout of the run, a cancel)
    else:
        succeeded = True
    duration = max(ends.values(), default=0.0) + run.tail_ms
    return ReplayedRun(run.run_id, round(duration, 3), succeeded, round(cost, 6), calls)


def _more_attempts(
    recorded: RecordedStep, change: StepChange, resample: Resample, rng: random.Random
) -> tuple[bool, float, int]:
    """A step that failed for good on transient errors, given the attempts the new policy adds."""
    extra = (change.max_attempts or 0) - recorded.attempts
    wait_ms, interval = 0.0, max(change.retry_interval_s, recorded.retry_after_s or 0.0)
    for n in range(max(extra, 0)):
        wait_ms += interval * 1000 * 2**n + resample.span(recorded.service, rng)
        if rng.random() >= change.attempt_failure_rate:
            return True, wait_ms, n + 1
    return False, wait_ms, max(extra, 0)


def _order(dependencies: Mapping[str, frozenset[str]]) -> list[str]:
    order: list[str] = []
    placed: set[str] = set()
    while len(order) < len(dependencies):
        ready = [s for s in dependencies if s not in placed and dependencies[s] & dependencies.keys() <= placed]
        if not ready:
            raise ValueError(f"dependency cycle among {sorted(set(dependencies) - placed)}")
        order += ready
        placed |= set(ready)
    return order


def _seed(run_id: str, seed: int) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}:{run_id}".encode(), digest_size=8).digest(), "big")


def cache_hits(runs: Sequence[RecordedRun], step_id: str, ttl_s: float) -> dict[str, bool]:
    """Run id -> whether a cache of ``ttl_s`` would have answered the step's call, runs taken in time order.

    A call is a hit when an earlier successful call with the same parameters
    (``params_digest``) was made within the TTL; a recorded step without a digest is a miss.
    """
    last_success: dict[str, float] = {}
    hits: dict[str, bool] = {}
    for run in sorted(runs, key=lambda r: r.started_s):
        step = run.steps.get(step_id)
        if step is None or step.params_digest is None or step.status == "skipped":
            continue
        at = run.started_s + step.lag_ms / 1000
        seen = last_success.get(step.params_digest)
        hits[run.run_id] = seen is not None and at - seen <= ttl_s
        if step.status == "succeeded" and not hits[run.run_id]:
            last_success[step.params_digest] = at
    return hits


@dataclass(frozen=True)
class Summary:
    """Predicted figures over replayed runs, each with a bootstrap interval (5th-95th percentile)."""

    runs: int
    p50_ms: float
    p95_ms: float
    success_rate: float
    cost_per_run: float
    p50_interval: tuple[float, float]
    p95_interval: tuple[float, float]
    success_interval: tuple[float, float]

    def to_json(self) -> dict[str, object]:
        return {
            "runs": self.runs, "p50_ms": round(self.p50_ms, 1), "p95_ms": round(self.p95_ms, 1),
            "success_rate": round(self.success_rate, 4), "cost_per_run": round(self.cost_per_run, 6),
            "p50_interval_ms": [round(v, 1) for v in self.p50_interval],
            "p95_interval_ms": [round(v, 1) for v in self.p95_interval],
            "success_interval": [round(v, 4) for v in self.success_interval],
        }  # fmt: skip


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of ``values`` (``q`` in [0, 1])."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _duration_quantile(runs: Sequence[ReplayedRun], q: float) -> float:
    """Quantile of the durations of the runs that succeeded (of all runs when none did)."""
    ok = [r.duration_ms for r in runs if r.succeeded] or [r.duration_ms for r in runs]
    return quantile(ok, q)


@dataclass(frozen=True)
class Comparison:
    before: Summary
    after: Summary
    gain_p50: float
    """Relative reduction of the p50 duration: 1 - after / before."""
    gain_p50_interval: tuple[float, float]
    gain_p95: float
    cost_change: float
    """Relative reduction of the cost per run."""
    success_change: float
    """After minus before (share of runs that succeed)."""

    def to_json(self) -> dict[str, object]:
        return {
            "before": self.before.to_json(), "after": self.after.to_json(),
            "gain_p50": round(self.gain_p50, 4), "gain_p50_interval": [round(v, 4) for v in self.gain_p50_interval],
            "gain_p95": round(self.gain_p95, 4), "cost_reduction": round(self.cost_change, 4),
            "success_change": round(self.success_change, 4),
        }  # fmt: skip


def compare(before: Sequence[ReplayedRun], after: Sequence[ReplayedRun], *, resamples: int = 200) -> Comparison:
    """Before and after over the same recorded runs (paired), with bootstrap intervals over the runs."""
    if len(before) != len(after) or not before:
        raise ValueError("compare needs the same runs replayed twice, at least one")
    rng = random.Random(0)
    n = len(before)
    draws = [[rng.randrange(n) for _ in range(n)] for _ in range(resamples)]
    boot_b = [_point([before[i] for i in d]) for d in draws]
    boot_a = [_point([after[i] for i in d]) for d in draws]
    gains = [_gain(b[0], a[0]) for b, a in zip(boot_b, boot_a, strict=True)]
    b, a = _summary(before, boot_b), _summary(after, boot_a)
    return Comparison(
        before=b, after=a,
        gain_p50=_gain(b.p50_ms, a.p50_ms), gain_p50_interval=(quantile(gains, 0.05), quantile(gains, 0.95)),
        gain_p95=_gain(b.p95_ms, a.p95_ms),
        cost_change=_gain(b.cost_per_run, a.cost_per_run) if b.cost_per_run > 0 else 0.0,
        success_change=a.success_rate - b.success_rate,
    )  # fmt: skip


def _gain(before: float, after: float) -> float:
    return 1 - after / before if before > 0 else 0.0


def _point(runs: Sequence[ReplayedRun]) -> tuple[float, float, float, float]:
    return (
        _duration_quantile(runs, 0.5),
        _duration_quantile(runs, 0.95),
        sum(r.succeeded for r in runs) / len(runs),
        sum(r.cost for r in runs) / len(runs),
    )


def _summary(runs: Sequence[ReplayedRun], boot: list[tuple[float, float, float, float]]) -> Summary:
    p50, p95, success, cost = _point(runs)

    def interval(i: int) -> tuple[float, float]:
        return quantile([b[i] for b in boot], 0.05), quantile([b[i] for b in boot], 0.95)

    return Summary(len(runs), p50, p95, success, cost, interval(0), interval(1), interval(2))


@dataclass(frozen=True)
class StepTimes:
    """One step of one recorded run, as the projections hold it (times in ms since the run began)."""

    step_id: str
    service: str
    action: str
    status: str
    first_ms: float
    last_ms: float
    attempts: int = 1
    cost: float = 0.0
    params_digest: str | None = None
    cached: bool = False
    error_class: str | None = None
    transient_failures: int = 0
    retry_after_s: float | None = None
    priced: bool = False


def record(
    run_id: str, started_s: float, status: str, duration_ms: float, steps: Sequence[StepTimes],
    dependencies: Mapping[str, frozenset[str]],
) -> RecordedRun:  # fmt: skip
    """A run as the replay needs it: each step's lag after the last of its recorded dependencies ended."""
    ends = {s.step_id: s.last_ms for s in steps}
    recorded: dict[str, RecordedStep] = {}
    for s in steps:
        ready = max((ends[d] for d in dependencies.get(s.step_id, ()) if d in ends), default=0.0)
        recorded[s.step_id] = RecordedStep(
            s.step_id, s.service, s.action, s.status, lag_ms=max(s.first_ms - ready, 0.0),
            span_ms=max(s.last_ms - max(s.first_ms, ready), 0.0), attempts=s.attempts, cost=s.cost,
            params_digest=s.params_digest, cached=s.cached, error_class=s.error_class,
            transient_failures=s.transient_failures, retry_after_s=s.retry_after_s, priced=s.priced,
        )  # fmt: skip
    tail = max(duration_ms - max(ends.values(), default=0.0), 0.0)
    return RecordedRun(run_id, started_s, status, duration_ms, recorded, tail_ms=tail)
