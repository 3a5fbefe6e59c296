"""Root-cause ranking over step attempts (pure).

``rank(attempts)`` looks at the attempts of a time range (successes too: a
cause must explain why these failed and those did not) and scores each
candidate cause in [0, 1]:

====================  =======================================================
cause                 evidence that makes it likely
====================  =======================================================
``service_outage``    one service failing with 5xx, timeouts or network
                      errors, in several workflows or tenants, most of its
                      calls failing since the first of them
``rate_limit``        429s on one service, more of them when it is called
                      more (saturation)
``credentials``       auth failures concentrated on one credential while the
                      service's other credentials work
``change``            a workflow failing from a definition version on, where
                      the version before it did not
``bad_data``          validation failures of one workflow in runs whose input
                      has a value the succeeding runs do not
``step_bug``          one step raising its own exceptions
``downstream``        steps failing only in runs where a step they depend on
                      failed first (the upstream step is the cause)
``transient``         isolated 5xx or timeouts, nothing shared
====================  =======================================================

The best-scored candidate is the cause; a lower candidate whose failures are
mostly the top one's is a *symptom*, any other an *alternative*. Every
candidate carries its evidence: failures and calls, first and last failure,
workflows and tenants, and up to three examples.
"""

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

OUTAGE_CLASSES = frozenset({"upstream_5xx", "timeout", "network"})
DATA_CLASSES = frozenset({"bad_input", "not_found"})
MAX_EXAMPLES = 3
BUCKET_S = 60.0
"""Time buckets for the rate-limit saturation test (calls per bucket against the 429 share)."""


@dataclass(frozen=True)
class Attempt:
    """One finished step attempt (or a step skipped because a dependency failed)."""

    tenant_id: str
    workflow_id: str
    run_id: str
    step_id: str
    service: str
    at: float
    """Epoch seconds."""
    ok: bool
    error_class: str | None = None
    status_code: int | None = None
    message: str = ""
    credential_id: str | None = None
    version: int | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)
    """The run's trigger payload (scalars are compared for ``bad_data``)."""
    upstream_failed: str | None = None
    """The step whose failure made this one fail or be skipped, when the run says so."""


@dataclass(frozen=True)
class Candidate:
    cause: str
    subject: dict[str, Any]
    """What the cause is about: ``{"service": ...}``, ``{"workflow_id", "version"}``, ``{"step_id"}`` ..."""
    error_class: str | None
    confidence: float
    evidence: dict[str, Any]
    failures: frozenset[tuple[str, str]] = field(default=frozenset(), repr=False, compare=False)
    """(run id, step id) of the failures it explains."""
    role: str = "cause"
    """``cause`` (the top one), ``symptom`` or ``alternative``."""

    def to_json(self) -> dict[str, Any]:
        return {"cause": self.cause, "subject": self.subject, "error_class": self.error_class,
                "confidence": self.confidence, "role": self.role, "evidence": self.evidence}  # fmt: skip


def rank(attempts: Iterable[Attempt]) -> list[Candidate]:
    """Every candidate cause the attempts support, the most likely first, each marked cause/symptom/alternative."""
    items = sorted(attempts, key=lambda a: a.at)
    failed = [a for a in items if not a.ok]
    if not failed:
        return []
    found = [
        *_service_causes(items),
        *_credential_causes(items),
        *_change_causes(items),
        *_bad_data_causes(items),
        *_step_bug_causes(failed),
        *_downstream_causes(failed),
        *_transient_causes(failed),
    ]
    found = [c for c in found if c.confidence > 0]
    found.sort(key=lambda c: (-c.confidence, c.cause, sorted(c.subject.items())))
    return _roles(found)


def _roles(found: list[Candidate]) -> list[Candidate]:
    if not found:
        return []
    top = found[0]
    out = [top]
    for c in found[1:]:
        shared = len(c.failures & top.failures) / len(c.failures) if c.failures else 0.0
        out.append(replace(c, role="symptom" if shared >= 0.5 else "alternative"))
    return out


def _evidence(failures: Sequence[Attempt], calls: int, **extra: Any) -> dict[str, Any]:
    examples = []
    seen_messages: set[str] = set()
    for a in failures:  # one example per distinct message
        if a.message in seen_messages:
            continue
        seen_messages.add(a.message)
        examples.append({"run_id": a.run_id, "step_id": a.step_id, "status_code": a.status_code,
                         "message": a.message[:300]})  # fmt: skip
        if len(examples) >= MAX_EXAMPLES:
            break
    return {
        "failures": len(failures),
        "calls": calls,
        "first_failure_at": failures[0].at,
        "last_failure_at": failures[-1].at,
        "workflows": len({(a.tenant_id, a.workflow_id) for a in failures}),
        "tenants": len({a.tenant_id for a in failures}),
        "examples": examples,
        **extra,
    }


def _keys(failures: Iterable[Attempt]) -> frozenset[tuple[str, str]]:
    return frozenset((a.run_id, a.step_id) for a in failures)


def _spread(workflows: int) -> float:
    """1 workflow: 0.5; 2: 0.75; 3: 0.875 ... a shared cause explains many."""
    return 1 - 0.5**workflows


def _service_causes(items: Sequence[Attempt]) -> list[Candidate]:
    by_service: dict[str, list[Attempt]] = defaultdict(list)
    for a in items:
        if a.upstream_failed is None:
            by_service[a.service].append(a)
    out = []
    for service, calls in by_service.items():
        outage = [a for a in calls if not a.ok and a.error_class in OUTAGE_CLASSES]
        if outage:
            share = len(outage) / len(_since(calls, outage[0].at))
            workflows = len({(a.tenant_id, a.workflow_id) for a in outage})
            classes = Counter(a.error_class for a in outage)
            out.append(Candidate(
                "service_outage", {"service": service}, classes.most_common(1)[0][0],
                round(share * _spread(workflows) * _spread(len(outage) - 1), 3),  # one failure is no outage
                _evidence(outage, len(calls), failure_share=round(share, 3), classes=dict(classes)),
                _keys(outage),
            ))  # fmt: skip
        limited = [a for a in calls if not a.ok and a.error_class == "rate_limited"]
        if limited:
            share = len(limited) / len(_since(calls, limited[0].at))
            saturation = _load_correlation(calls)
            confidence = share * (0.6 + 0.4 * max(saturation, 0.0))
            out.append(Candidate(
                "rate_limit", {"service": service}, "rate_limited", round(min(1.0, 0.3 + confidence), 3),
                _evidence(limited, len(calls), failure_share=round(share, 3), load_correlation=round(saturation, 3)),
                _keys(limited),
            ))  # fmt: skip
    return out


def _since(calls: Sequence[Attempt], start: float) -> list[Attempt]:
    """The calls from the first failure of a kind on: a service that breaks now fails all of those."""
    return [a for a in calls if a.at >= start]


def _load_correlation(calls: Sequence[Attempt]) -> float:
    """Pearson correlation between calls per minute and the share of them answered 429 (0 if too few minutes)."""
    buckets: dict[int, list[Attempt]] = defaultdict(list)
    for a in calls:
        buckets[int(a.at // BUCKET_S)].append(a)
    if len(buckets) < 3:
        return 0.0
    xs = [float(len(b)) for b in buckets.values()]
    ys = [sum(1 for a in b if a.error_class == "rate_limited") / len(b) for b in buckets.values()]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sx = math.sqrt(sum((x - mx) ** 2 for x in xs))
    sy = math.sqrt(sum((y - my) ** 2 for y in ys))
    if sx == 0 or sy == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / (sx * sy)


def _credential_causes(items: Sequence[Attempt]) -> list[Candidate]:
    auth = [a for a in items if not a.ok and a.error_class == "credentials"]
    if not auth:
        return []
    out = []
    by_credential: dict[tuple[str, str], list[Attempt]] = defaultdict(list)
    for a in auth:
        by_credential[(a.service, a.credential_id or "")].append(a)
    for (service, credential), failures in by_credential.items():
        calls = _since([a for a in items if a.service == service and (a.credential_id or "") == credential],
                       failures[0].at)  # fmt: skip
        others = _since([a for a in items if a.service == service and (a.credential_id or "") != credential],
                        failures[0].at)  # fmt: skip
        share = len(failures) / len(calls)
        others_ok = sum(a.ok for a in others) / len(others) if others else 0.5
        subject = {"service": service, **({"credential_id": credential} if credential else {})}
        out.append(Candidate(
            "credentials", subject, "credentials", round(share * (0.6 + 0.4 * others_ok), 3),
            _evidence(failures, len(calls), failure_share=round(share, 3),
                      other_credentials_success=round(others_ok, 3) if others else None),
            _keys(failures),
        ))  # fmt: skip
    return out


def _change_causes(items: Sequence[Attempt]) -> list[Candidate]:
    by_workflow: dict[tuple[str, str], list[Attempt]] = defaultdict(list)
    for a in items:
        if a.version is not None:
            by_workflow[(a.tenant_id, a.workflow_id)].append(a)
    out = []
    for (tenant, workflow), calls in by_workflow.items():
        versions = sorted({a.version for a in calls if a.version is not None})
        for before, after in zip(versions, versions[1:], strict=False):
            old = _run_failure_rate([a for a in calls if a.version is not None and a.version <= before])
            new_calls = [a for a in calls if a.version is not None and a.version >= after]
            new = _run_failure_rate(new_calls)
            if new - old <= 0.2:
                continue
            failures = [a for a in new_calls if not a.ok]
            out.append(Candidate(
                "change", {"workflow_id": workflow, "tenant_id": tenant, "version": after}, _top_class(failures),
                round(new - old, 3),
                _evidence(failures, len(new_calls), run_failure_rate_before=round(old, 3),
                          run_failure_rate_after=round(new, 3)),
                _keys(failures),
            ))  # fmt: skip
    return out


def _run_failure_rate(calls: Sequence[Attempt]) -> float:
    runs: dict[str, bool] = {}
    for a in calls:
        runs[a.run_id] = runs.get(a.run_id, False) or not a.ok
    return sum(runs.values()) / len(runs) if runs else 0.0


def _scalars(inputs: Mapping[str, Any], prefix: str = "") -> set[tuple[str, Any]]:
    out: set[tuple[str, Any]] = set()
    for key, value in inputs.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out |= _scalars(value, f"{path}.")
        elif isinstance(value, str | int | float | bool) or value is None:
            out.add((path, value))
    return out


def _bad_data_causes(items: Sequence[Attempt]) -> list[Candidate]:
    by_workflow: dict[tuple[str, str], list[Attempt]] = defaultdict(list)
    for a in items:
        by_workflow[(a.tenant_id, a.workflow_id)].append(a)
    out = []
    for (tenant, workflow), calls in by_workflow.items():
        failed_runs = {a.run_id: a for a in calls if not a.ok and a.error_class in DATA_CLASSES}
        if not failed_runs:
            continue
        ok_runs = {a.run_id: a for a in calls if a.ok and a.run_id not in failed_runs}
        in_failed = Counter(pair for a in failed_runs.values() for pair in _scalars(a.inputs))
        in_ok = Counter(pair for a in ok_runs.values() for pair in _scalars(a.inputs))
        best: tuple[float, tuple[str, Any]] | None = None
        for pair, n in in_failed.items():
            score = n / len(failed_runs) * (1 - (in_ok[pair] / len(ok_runs) if ok_runs else 0.5))
            if best is None or score > best[0]:
                best = (score, pair)
        failures = [a for a in calls if not a.ok and a.error_class in DATA_CLASSES]
        # A value in most failing runs and few succeeding ones is named; without one the data is still
        # the likeliest suspect of validation failures, less surely.
        telling = best is not None and best[0] >= 0.5
        values = {best[1][0]: best[1][1]} if best and telling else {}
        confidence = max(best[0] if best else 0.0, 0.35)
        out.append(Candidate(
            "bad_data", {"workflow_id": workflow, "tenant_id": tenant, "inputs": values}, _top_class(failures),
            round(confidence, 3), _evidence(failures, len(calls), runs_failed=len(failed_runs)), _keys(failures),
        ))  # fmt: skip
    return out


def _step_bug_causes(failed: Sequence[Attempt]) -> list[Candidate]:
    by_step: dict[tuple[str, str, str], list[Attempt]] = defaultdict(list)
    for a in failed:
        if a.error_class == "step_bug":
            by_step[(a.tenant_id, a.workflow_id, a.step_id)].append(a)
    return [
        Candidate(
            "step_bug",
            {"workflow_id": w, "tenant_id": t, "step_id": s},
            "step_bug",
            round(0.5 + 0.5 * len(f) / len(failed), 3),
            _evidence(f, len(f)),
            _keys(f),
        )  # fmt: skip
        for (t, w, s), f in by_step.items()
    ]


def _downstream_causes(failed: Sequence[Attempt]) -> list[Candidate]:
    """The upstream step behind failures and skips that name it; its own failures are the evidence."""
    by_upstream: dict[tuple[str, str, str], list[Attempt]] = defaultdict(list)
    for a in failed:
        if a.upstream_failed:
            by_upstream[(a.tenant_id, a.workflow_id, a.upstream_failed)].append(a)
    out = []
    for (tenant, workflow, step), dependents in by_upstream.items():
        runs = {a.run_id for a in dependents}
        upstream = [a for a in failed if a.workflow_id == workflow and a.step_id == step and a.run_id in runs]
        if not upstream:
            continue
        out.append(Candidate(
            "downstream", {"workflow_id": workflow, "tenant_id": tenant, "step_id": step},
            _top_class(upstream), round(0.4 * len(runs) / max(len(runs), 1), 3),
            _evidence(upstream, len(upstream), dependents_failed=len(dependents),
                      dependents=sorted({a.step_id for a in dependents})),
            _keys(upstream) | _keys(dependents),
        ))  # fmt: skip
    return out


def _transient_causes(failed: Sequence[Attempt]) -> list[Candidate]:
    transient = [a for a in failed if a.error_class in OUTAGE_CLASSES and a.upstream_failed is None]
    if not transient:
        return []
    return [Candidate("transient", {}, _top_class(transient), 0.2, _evidence(transient, len(transient)),
                      _keys(transient))]  # fmt: skip


def _top_class(failures: Sequence[Attempt]) -> str | None:
    classes = Counter(a.error_class for a in failures if a.error_class)
    return classes.most_common(1)[0][0] if classes else None
