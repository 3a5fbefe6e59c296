"""Optimization: changes to a workflow, each justified by its recorded runs and priced by replaying them.

``analyze`` looks at a definition and the runs recorded under it and proposes
changes of eight kinds:

* ``parallelize``: a step waits (explicit ``needs``) for a step whose output
  it never reads. The edge goes, unless both steps write to the same service
  (an update after a create) -- data flow is read from the templates and
  conditions (``domain.dag``), not guessed.
* ``drop_redundant``: a read whose output nobody reads and which never failed
  (a read that sometimes fails may be guarding what follows), or a read
  repeating another read's call exactly.
* ``cache``: a read whose calls repeat their parameters within the cache's
  TTL often enough (the history's ``params_digest``; a read with constant
  parameters repeats by construction).
* ``retry``: a step that failed for good on transient errors, with a policy
  allowing enough attempts for the observed share of transient failures.
* ``timeout``: a read without a timeout whose slowest calls run far past
  its usual ones.
* ``substitute``: another service of the same category with the same action,
  cheaper (catalog price) or more reliable (the tenant's history).
* ``batch``: several independent calls of one action of one service.
* ``fallback``: a step failing for good on outages gets a service of the
  same category to fall back to.

Every candidate is priced by replaying the recorded runs under the changed
workflow (``domain.whatif``) and kept only if the strategy's score of the
replay (``WEIGHTS``: relative p50 reduction, relative cost reduction and
success-rate change) reaches ``MIN_SCORE``, so a workflow with nothing to
gain gets no recommendation. ``substitute`` and ``batch`` need a person (an
account on the other service, a batch endpoint) and are never applied to the
returned definition; the rest are, together, and the whole is replayed
again for the prediction.
"""

import json
import math
import random
import re
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from domain.catalog import Catalog
from domain.dag import DefinitionError, plan_definition
from domain.error_rules import TRANSIENT
from domain.templates import referenced_steps
from domain.whatif import (
    Comparison,
    RecordedRun,
    RecordedStep,
    Resample,
    StepChange,
    cache_hits,
    compare,
    quantile,
    replay_run,
)
from schemas.workflows import WorkflowDefinition

WEIGHTS: dict[str, dict[str, float]] = {
    "performance": {"duration": 1.0},
    "cost": {"cost": 1.0},
    "reliability": {"success": 1.0},
    "hybrid": {"duration": 0.5, "cost": 0.25, "success": 0.25},
}
"""Score of a replay = sum of weight x effect: duration = relative p50 reduction, cost = relative
cost reduction, success = change in the share of runs that succeed."""
MIN_SCORE = 0.03
"""Below this a change is not worth a new version of the workflow."""
MIN_RUNS = 10
"""Fewer recorded runs than this and the figures come from the catalog (marked so)."""
CACHE_TTL_S = 300.0
MIN_CACHE_HIT_RATE = 0.2
READ_VERBS = frozenset({
    "get", "find", "search", "list", "lookup", "fetch", "read", "retrieve", "query", "enrich", "check",
    "look", "download", "count", "describe", "scan", "detect", "verify", "validate", "estimate",
})  # fmt: skip


def is_read(action: str) -> bool:
    """Whether an action only reads (its first word is a reading verb): safe to cache, reorder or drop."""
    return re.split(r"[_\-\s]", action.lower(), maxsplit=1)[0] in READ_VERBS


@dataclass(frozen=True)
class Candidate:
    kind: str
    step_ids: tuple[str, ...]
    rationale: str
    evidence: dict[str, Any]
    edit: Callable[[dict[str, Any]], dict[str, Any]]
    """The definition (as JSON) -> the changed definition."""
    changes: Mapping[str, StepChange] = field(default_factory=dict)
    applies: bool = True
    """False: needs a person (a credential for another service, a batch endpoint); advisory only."""


@dataclass(frozen=True)
class Recommendation:
    kind: str
    step_ids: tuple[str, ...]
    rationale: str
    evidence: dict[str, Any]
    estimated_effect: dict[str, Any]
    applied: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "step_ids": list(self.step_ids), "rationale": self.rationale,
            "evidence": self.evidence, "estimated_effect": self.estimated_effect, "applied": self.applied,
        }  # fmt: skip


@dataclass(frozen=True)
class Analysis:
    strategy: str
    weights: Mapping[str, float]
    recommendations: tuple[Recommendation, ...]
    optimized_definition: dict[str, Any] | None
    """The definition with every applied recommendation; None when nothing applies."""
    prediction: dict[str, Any]
    history: str
    """``recorded`` (replayed runs) or ``catalog`` (too few runs: catalog latencies and prices)."""


# -- the analysis --------------------------------------------------------------------------------------


def analyze(
    definition: WorkflowDefinition,
    runs: Sequence[RecordedRun],
    resample: Resample,
    catalog: Catalog,
    *,
    strategy: str = "performance",
    weights: Mapping[str, float] | None = None,
    history: str = "recorded",
) -> Analysis:
    """Recommendations for ``definition`` from ``runs`` (recorded under it), scored for ``strategy``."""
    weights = dict(weights or WEIGHTS[strategy])
    base = definition.model_dump(mode="json", exclude_none=True)
    base_deps = plan_definition(definition).dependencies
    baseline = [replay_run(r, base_deps, {}, resample=resample) for r in runs]
    scored: list[tuple[float, Candidate, Comparison, dict[str, Any]]] = []
    for candidate in candidates(definition, runs, resample, catalog):
        priced = _price(base, candidate.edit(base), candidate.changes, runs, resample, baseline, candidate)
        if priced is None:
            continue
        comparison, changed = priced
        score = _score(comparison, weights)
        if score >= MIN_SCORE and _credible(comparison, weights):
            scored.append((score, candidate, comparison, changed))
    scored.sort(key=lambda item: -item[0])
    optimized, applied, changes = base, [], dict[str, StepChange]()
    superseded: list[Candidate] = []
    for _, candidate, _, _ in scored:
        if not candidate.applies:
            continue
        try:
            trial = candidate.edit(optimized)
            plan_definition(WorkflowDefinition.model_validate(trial))
        except (DefinitionError, ValueError):
            trial = optimized
        if trial == optimized:  # an earlier change already did this one's work (a dropped step needs no cache)
            superseded.append(candidate)
            continue
        optimized = trial
        applied.append(candidate)
        changes = _merge_changes(changes, candidate.changes)
    scored = [item for item in scored if item[1] not in superseded]
    recommendations = tuple(
        Recommendation(
            c.kind, c.step_ids, c.rationale, c.evidence,
            {**comparison.to_json(), "score": round(score, 4), "replayed_runs": len(runs), "history": history},
            applied=c in applied,
        )
        for score, c, comparison, _d in scored
    )  # fmt: skip
    prediction: dict[str, Any] = {"replayed_runs": len(runs), "history": history, "cost_source": _cost_source(runs)}
    if baseline:
        prediction["recorded_p50_ms"] = round(quantile([r.duration_ms for r in runs], 0.5), 1)
        if applied:
            after_deps = plan_definition(WorkflowDefinition.model_validate(optimized)).dependencies
            after = [replay_run(r, after_deps, changes, resample=resample, cache_hits=_hits(r, changes, runs))
                     for r in runs]  # fmt: skip
            prediction.update(compare(baseline, after).to_json())
        else:
            prediction.update(compare(baseline, baseline).to_json())
    return Analysis(strategy, weights, recommendations, optimized if applied else None, prediction, history)


def _price(
    base: dict[str, Any], edited: dict[str, Any], changes: Mapping[str, StepChange], runs: Sequence[RecordedRun],
    resample: Resample, baseline: list[Any], candidate: Candidate,
) -> tuple[Comparison, dict[str, Any]] | None:  # fmt: skip
    try:
        deps = plan_definition(WorkflowDefinition.model_validate(edited)).dependencies
    except (DefinitionError, ValueError):
        return None
    if not runs:
        return None
    after = [replay_run(r, deps, changes, resample=resample, cache_hits=_hits(r, changes, runs)) for r in runs]
    return compare(baseline, after), edited


_HIT_CACHE: dict[tuple[int, str, float], dict[str, bool]] = {}


def _hits(run: RecordedRun, changes: Mapping[str, StepChange], runs: Sequence[RecordedRun]) -> frozenset[str]:
    hits = set()
    for step_id, change in changes.items():
        if change.cache_ttl_s is None:
            continue
        key = (id(runs), step_id, change.cache_ttl_s)
        if key not in _HIT_CACHE:
            if len(_HIT_CACHE) > 256:
                _HIT_CACHE.clear()
            _HIT_CACHE[key] = cache_hits(runs, step_id, change.cache_ttl_s)
        if _HIT_CACHE[key].get(run.run_id):
            hits.add(step_id)
    return frozenset(hits)


def _score(c: Comparison, weights: Mapping[str, float]) -> float:
    effects = {"duration": c.gain_p50, "cost": c.cost_change, "success": c.success_change}
    return sum(weights.get(k, 0.0) * v for k, v in effects.items())


def _credible(c: Comparison, weights: Mapping[str, float]) -> bool:
    """A duration gain counts only if the bootstrap interval of the gain stays above zero."""
    if weights.get("duration", 0) and c.gain_p50 > 0 and c.cost_change <= 0 and c.success_change <= 0:
        return c.gain_p50_interval[0] > 0
    return True


def _merge_changes(a: Mapping[str, StepChange], b: Mapping[str, StepChange]) -> dict[str, StepChange]:
    merged = dict(a)
    for step_id, change in b.items():
        if step_id in merged:
            fields = {k: v for k, v in change.__dict__.items() if v != getattr(StepChange(), k)}
            merged[step_id] = replace(merged[step_id], **fields)
        else:
            merged[step_id] = change
    return merged


# -- candidates ----------------------------------------------------------------------------------------


def candidates(
    definition: WorkflowDefinition, runs: Sequence[RecordedRun], resample: Resample, catalog: Catalog
) -> list[Candidate]:
    found = [*_parallelize(definition, runs), *_redundant(definition, runs), *_cache(definition, runs)]
    found += [*_retry(definition, runs), *_timeout(definition, runs), *_batch(definition)]
    found += [*_substitute(definition, resample, catalog), *_fallback(definition, runs, resample, catalog)]
    return found


def data_dependencies(definition: WorkflowDefinition) -> dict[str, frozenset[str]]:
    """Step -> the steps whose outputs its params, condition or fallback read (no explicit ``needs``)."""
    without_needs = WorkflowDefinition.model_validate(
        {**definition.model_dump(mode="json", exclude_none=True),
         "steps": [{**s.model_dump(mode="json", exclude_none=True), "needs": []} for s in definition.steps]}
    )  # fmt: skip
    return plan_definition(without_needs).dependencies


def removable_edges(definition: WorkflowDefinition) -> dict[str, tuple[str, ...]]:
    """Step -> explicit ``needs`` it may lose: it reads nothing from them, and they are not two writes to
    one service (whose order the service may depend on)."""
    data = data_dependencies(definition)
    steps = {s.id: s for s in definition.steps}
    removable: dict[str, tuple[str, ...]] = {}
    for step in definition.steps:
        loose = tuple(
            n for n in step.needs
            if n not in data[step.id]
            and not (steps[n].service == step.service and not is_read(step.action) and not is_read(steps[n].action))
        )  # fmt: skip
        if loose:
            removable[step.id] = loose
    return removable


def _steps_json(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(s) for s in d["steps"]]


def _parallelize(definition: WorkflowDefinition, runs: Sequence[RecordedRun]) -> list[Candidate]:
    loose = removable_edges(definition)
    if not loose:
        return []

    def edit(d: dict[str, Any]) -> dict[str, Any]:
        steps = _steps_json(d)
        for s in steps:
            drop = set(loose.get(s["id"], ()))
            if drop and "needs" in s:
                s["needs"] = [n for n in s["needs"] if n not in drop]
        return {**d, "steps": steps}

    waits = {
        f"{step} after {', '.join(needs)}": _median([r.steps[step].lag_ms + r.steps[step].span_ms
                                                     for r in runs if step in r.steps])
        for step, needs in loose.items()
    }  # fmt: skip
    edges = [f"{step} -> {n}" for step, needs in loose.items() for n in needs]
    return [Candidate(
        "parallelize", tuple(sorted({*loose, *(n for ns in loose.values() for n in ns)})),
        f"{len(edges)} dependenc{'y' if len(edges) == 1 else 'ies'} ({'; '.join(edges)}) order steps that exchange "
        "no data: the steps can run side by side.",
        {"edges": edges, "median_step_ms": {k: round(v, 1) for k, v in waits.items() if not math.isnan(v)}},
        edit,
    )]  # fmt: skip


def _referenced_by_others(definition: WorkflowDefinition) -> set[str]:
    data = data_dependencies(definition)
    return {d for deps in data.values() for d in deps}


def _redundant(definition: WorkflowDefinition, runs: Sequence[RecordedRun]) -> list[Candidate]:
    if len(definition.steps) < 2:
        return []
    read_by_others = _referenced_by_others(definition)
    found: list[Candidate] = []
    for step in definition.steps:
        if not is_read(step.action) or step.id in read_by_others:
            continue
        recorded = [r.steps[step.id] for r in runs if step.id in r.steps]
        failures = sum(s.status == "failed" for s in recorded)
        if failures:
            continue  # a read that fails sometimes may be guarding what follows
        found.append(Candidate(
            "drop_redundant", (step.id,),
            f"step {step.id} reads {step.service}.{step.action} and no step uses what it reads; it never failed "
            f"in {len(recorded)} recorded runs, so it guards nothing.",
            {"recorded_calls": len(recorded), "median_span_ms": round(_median([s.span_ms for s in recorded]), 1)
             if recorded else None, "cost_per_run": round(_mean([s.cost for s in recorded]), 6)},
            _drop_step(step.id), {step.id: StepChange(dropped=True)},
        ))  # fmt: skip
    seen: dict[str, str] = {}
    for step in definition.steps:
        if not is_read(step.action):
            continue
        key = f"{step.service}|{step.action}|{_canonical(step.params)}|{step.credential_id}"
        first = seen.setdefault(key, step.id)
        if first != step.id and step.id in read_by_others:  # an unused one is dropped above
            found.append(Candidate(
                "drop_redundant", (step.id, first),
                f"step {step.id} repeats step {first}'s call ({step.service}.{step.action} with the same "
                f"parameters); its readers can read {first}.",
                {"same_call_as": first}, _merge_duplicate(step.id, first), {step.id: StepChange(dropped=True)},
            ))  # fmt: skip
    return found


def _drop_step(step_id: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def edit(d: dict[str, Any]) -> dict[str, Any]:
        steps = _steps_json(d)
        dropped = next(s for s in steps if s["id"] == step_id)
        inherited = list(dropped.get("needs", []))
        kept = []
        for s in steps:
            if s["id"] == step_id:
                continue
            if step_id in s.get("needs", []):  # keep the order the dropped step imposed
                s["needs"] = [n for n in s["needs"] if n != step_id] + [n for n in inherited if n not in s["needs"]]
            kept.append(s)
        return {**d, "steps": kept}

    return edit


def _merge_duplicate(step_id: str, into: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    pattern = re.compile(r"(steps\.)" + re.escape(step_id) + r"(?=\.|\s|\}|$)")

    def rewrite(value: Any) -> Any:
        if isinstance(value, str):
            return pattern.sub(lambda m: m.group(1) + into, value)
        if isinstance(value, dict):
            return {k: rewrite(v) for k, v in value.items()}
        if isinstance(value, list):
            return [rewrite(v) for v in value]
        return value

    def edit(d: dict[str, Any]) -> dict[str, Any]:
        out = _drop_step(step_id)(d)
        steps = []
        for s in out["steps"]:
            s = {**s, "params": rewrite(s.get("params", {}))}
            if s.get("when"):
                s["when"] = rewrite(s["when"])
            steps.append(s)
        return {**out, "steps": steps}

    return edit


def _cache(definition: WorkflowDefinition, runs: Sequence[RecordedRun]) -> list[Candidate]:
    found = []
    for step in definition.steps:
        if step.cache or not is_read(step.action):
            continue
        constant = not referenced_steps(step.params) and "{{" not in _canonical(step.params)
        view = runs if not constant else [_with_digest(r, step.id, "constant") for r in runs]
        hits = cache_hits(view, step.id, CACHE_TTL_S)
        if len(hits) < MIN_RUNS:
            continue
        rate = sum(hits.values()) / len(hits)
        if rate < MIN_CACHE_HIT_RATE:
            continue
        found.append(Candidate(
            "cache", (step.id,),
            f"step {step.id} ({step.service}.{step.action}) only reads, and {rate:.0%} of its recorded calls "
            f"repeated a call made less than {CACHE_TTL_S:g} s before with the same parameters.",
            {"recorded_calls": len(hits), "repeat_calls": sum(hits.values()), "ttl_s": CACHE_TTL_S,
             "parameters": "constant" if constant else "digest of the rendered parameters"},
            _set_fields(step.id, {"cache": True}), {step.id: StepChange(cache_ttl_s=CACHE_TTL_S)},
        ))  # fmt: skip
    return found


def _with_digest(run: RecordedRun, step_id: str, digest: str) -> RecordedRun:
    if step_id not in run.steps:
        return run
    return replace(run, steps={**run.steps, step_id: replace(run.steps[step_id], params_digest=digest)})


def _set_fields(step_id: str, fields: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def edit(d: dict[str, Any]) -> dict[str, Any]:
        return {**d, "steps": [{**s, **fields} if s["id"] == step_id else s for s in _steps_json(d)]}

    return edit


def _retry(definition: WorkflowDefinition, runs: Sequence[RecordedRun]) -> list[Candidate]:
    found = []
    for step in definition.steps:
        recorded = [r.steps[step.id] for r in runs if step.id in r.steps]
        attempts = sum(s.attempts for s in recorded)
        transient = sum(s.transient_failures for s in recorded)
        gave_up = [s for s in recorded if s.status == "failed" and s.error_class in TRANSIENT]
        if not gave_up or not attempts:
            continue
        rate = min(transient / attempts, 0.95)
        current = step.retry.maximum_attempts if step.retry else 3
        wanted = max(current + 1, min(8, math.ceil(math.log(0.001) / math.log(rate)) if rate > 0 else current + 1))
        retry_after = [s.retry_after_s for s in recorded if s.retry_after_s]
        interval = max(1.0, _median(retry_after) if retry_after else 1.0)
        policy = {
            **(step.retry.model_dump(mode="json") if step.retry else {}),
            "maximum_attempts": wanted,
            "initial_interval_s": interval,
            "maximum_interval_s": max(interval * 2 ** (wanted - 1), 60.0),
        }
        found.append(Candidate(
            "retry", (step.id,),
            f"step {step.id} gave up after {current} attempts in {len(gave_up)} of {len(recorded)} runs, on "
            f"transient errors ({', '.join(sorted({s.error_class or '' for s in gave_up}))}); {rate:.0%} of its "
            f"attempts fail that way, so {wanted} attempts leave about {rate ** wanted:.1%} of calls failing.",
            {"runs_given_up": len(gave_up), "attempt_failure_rate": round(rate, 4), "recorded_runs": len(recorded),
             "retry_after_s_median": _median(retry_after) if retry_after else None},
            _set_fields(step.id, {"retry": policy}),
            {step.id: StepChange(max_attempts=wanted, retry_interval_s=interval, attempt_failure_rate=rate)},
        ))  # fmt: skip
    return found


def _timeout(definition: WorkflowDefinition, runs: Sequence[RecordedRun]) -> list[Candidate]:
    found = []
    for step in definition.steps:
        if step.timeout_s or not is_read(step.action):
            continue
        spans = [r.steps[step.id].span_ms for r in runs if step.id in r.steps and r.steps[step.id].attempts == 1]
        if len(spans) < MIN_RUNS:
            continue
        p50, p95, worst = quantile(spans, 0.5), quantile(spans, 0.95), max(spans)
        if worst < 5000 or worst < 10 * p95:
            continue
        timeout = max(1.0, round(2 * p95 / 1000, 1))
        found.append(Candidate(
            "timeout", (step.id,),
            f"step {step.id} has no timeout and its slowest recorded call took {worst / 1000:.1f} s against a p95 "
            f"of {p95 / 1000:.2f} s: a {timeout:g} s timeout retries a stuck read instead of waiting for it.",
            {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1), "max_ms": round(worst, 1), "calls": len(spans)},
            _set_fields(step.id, {"timeout_s": timeout}), {},
        ))  # fmt: skip
    return found


def _batch(definition: WorkflowDefinition) -> list[Candidate]:
    data = data_dependencies(definition)
    groups: dict[tuple[str, str], list[str]] = {}
    for step in definition.steps:
        groups.setdefault((step.service, step.action), []).append(step.id)
    found = []
    for (service, action), ids in groups.items():
        independent = [i for i in ids if not (data[i] & set(ids))]
        if len(independent) < 2:
            continue
        first, rest = independent[0], independent[1:]
        found.append(Candidate(
            "batch", tuple(independent),
            f"steps {', '.join(independent)} each call {service}.{action} on their own; one batched call "
            f"would do their work in one round trip (needs the service's batch endpoint: not applied).",
            {"calls_per_run": len(independent)}, lambda d: d,
            {i: StepChange(merged_into=first) for i in rest}, applies=False,
        ))  # fmt: skip
    return found


def _substitute(definition: WorkflowDefinition, resample: Resample, catalog: Catalog) -> list[Candidate]:
    found = []
    for step in definition.steps:
        current = catalog.services.get(step.service)
        if current is None:
            continue
        own_rate = resample.success_rate.get(step.service)
        for other in catalog:
            if other.id == step.service or other.category != current.category:
                continue
            if not any(a.name == step.action for a in other.actions):
                continue
            cheaper = other.cost_usd < current.cost_usd * 0.8
            other_rate = resample.success_rate.get(other.id)
            sturdier = own_rate is not None and other_rate is not None and other_rate >= own_rate + 0.05
            if not (cheaper or sturdier):
                continue
            why = (f"costs {other.cost_usd:g} USD a call against {current.cost_usd:g}" if cheaper else
                   f"succeeded on {other_rate:.0%} of the tenant's calls against {own_rate:.0%}")  # fmt: skip
            found.append(Candidate(
                "substitute", (step.id,),
                f"{other.name} ({other.category}) offers {step.action} too and {why}; switching needs an account "
                "and a credential there, so it is not applied.",
                {"service": step.service, "alternative": other.id, "catalog_cost_usd": other.cost_usd,
                 "history_success_rate": other_rate},
                lambda d: d, {step.id: StepChange(service=other.id)}, applies=False,
            ))  # fmt: skip
    return found


def _fallback(
    definition: WorkflowDefinition, runs: Sequence[RecordedRun], resample: Resample, catalog: Catalog
) -> list[Candidate]:
    found = []
    for step in definition.steps:
        if step.fallback is not None:
            continue
        outages = [r.steps[step.id] for r in runs if step.id in r.steps and r.steps[step.id].status == "failed"
                   and r.steps[step.id].error_class in ("upstream_5xx", "timeout", "network")]  # fmt: skip
        current = catalog.services.get(step.service)
        if not outages or current is None:
            continue
        others = [o for o in catalog if o.id != step.service and o.category == current.category
                  and any(a.name == step.action for a in o.actions)]  # fmt: skip
        if not others:
            continue
        used = [o for o in others if o.id in resample.success_rate]  # the tenant already calls it: an account
        best = max(used or others, key=lambda o: (resample.success_rate.get(o.id, 0.0), -o.cost_usd))
        found.append(Candidate(
            "fallback", (step.id,),
            f"{step.service} failed step {step.id} for good in {len(outages)} recorded runs (outages); "
            f"{best.name} offers {step.action} in the same category and takes over when it fails again"
            + ("." if used else "; you have no calls to it yet, so it needs an account and is not applied."),
            {"outage_runs": len(outages), "fallback": best.id,
             "fallback_success_rate": resample.success_rate.get(best.id)},
            _set_fields(step.id, {"fallback": {"service": best.id}}),
            {step.id: StepChange(fallback_service=best.id)}, applies=bool(used),
        ))  # fmt: skip
    return found


def _cost_source(runs: Sequence[RecordedRun]) -> str:
    """``recorded`` when the steps' events reported their cost, ``catalog`` when it is the catalog's price."""
    priced = {s.priced for r in runs for s in r.steps.values() if s.status != "skipped"}
    return "mixed" if len(priced) > 1 else "recorded" if priced == {True} else "catalog"


def synthetic_runs(definition: WorkflowDefinition, resample: Resample, n: int = 50) -> list[RecordedRun]:
    """Runs made up from catalog latencies (and whatever the tenant's other workflows recorded of the same
    services), for a workflow with too little history of its own: every step succeeds, nothing waits."""
    rng = random.Random(7)
    runs = []
    for i in range(n):
        steps = {
            s.id: RecordedStep(s.id, s.service, s.action, "succeeded", lag_ms=0.0,
                               span_ms=resample.span(s.service, rng), cost=resample.cost.get(s.service, 0.0))
            for s in definition.steps
        }  # fmt: skip
        runs.append(RecordedRun(f"catalog-{i}", float(i), "succeeded", 0.0, steps))
    return runs


# -- helpers -------------------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
