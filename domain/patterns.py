"""Frequent workflow shapes and failure points, mined from a tenant's history (pure).

Input: the current definition of each workflow and how many runs it had, and
per-(service, action) attempt counts from the step projection. Output:

* **pairs**: trigger service -> action service, for every action a trigger
  feeds (directly or further down), with the workflows and runs behind it;
* **sequences**: service paths along the DAG's edges, trigger first, two to
  ``MAX_SEQUENCE`` services long (``gmail > asana > slack``);
* **templates**: whole shapes (trigger and its actions in order) defined by at
  least ``min_support`` workflows, each with an example workflow id;
* **failure points**: (service, action) pairs by failed attempts, with their
  failure rate and most common error type.

Support counts workflows, not runs (a shape defined once and run a million
times is one workflow's habit); runs are reported beside it.

>>> a = {"trigger": {"service": "gmail"}, "steps": [{"id": "t", "service": "asana"},
...      {"id": "n", "service": "slack", "needs": ["t"]}]}
>>> found = mine([Workflow("w1", a, runs=40), Workflow("w2", a, runs=2)], [], min_support=2)
>>> [(p.trigger, p.action, p.workflows, p.runs) for p in found.pairs]
[('gmail', 'asana', 2, 42), ('gmail', 'slack', 2, 42)]
>>> [s.services for s in found.sequences]
[('asana', 'slack'), ('gmail', 'asana'), ('gmail', 'asana', 'slack')]
"""

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_SEQUENCE = 4


@dataclass(frozen=True)
class Workflow:
    workflow_id: str
    definition: Mapping[str, Any]
    runs: int = 0


@dataclass(frozen=True)
class StepOutcomes:
    """Attempts of one (service, action) in the tenant's runs."""

    service: str
    action: str
    attempts: int
    failed: int
    workflows: int
    top_error: str = ""


@dataclass(frozen=True)
class Pair:
    trigger: str
    action: str
    workflows: int
    runs: int


@dataclass(frozen=True)
class Chain:
    services: tuple[str, ...]
    workflows: int
    runs: int


@dataclass(frozen=True)
class Template:
    trigger: str
    actions: tuple[str, ...]
    workflows: int
    runs: int
    example: str
    """A workflow id with this shape."""


@dataclass(frozen=True)
class FailurePoint:
    service: str
    action: str
    attempts: int
    failed: int
    failure_rate: float
    workflows: int
    top_error: str


@dataclass(frozen=True)
class Patterns:
    pairs: list[Pair] = field(default_factory=list)
    sequences: list[Chain] = field(default_factory=list)
    templates: list[Template] = field(default_factory=list)
    failure_points: list[FailurePoint] = field(default_factory=list)

    def pair_support(self, trigger: str | None, action: str | None) -> int:
        """Workflows whose trigger feeds this action (0 when unknown)."""
        return next((p.workflows for p in self.pairs if (p.trigger, p.action) == (trigger, action)), 0)

    def templates_for(self, trigger: str | None, limit: int = 3) -> list[Template]:
        """The most defined shapes starting with ``trigger``."""
        return [t for t in self.templates if t.trigger == trigger][:limit]


def shape(definition: Mapping[str, Any]) -> tuple[str, list[str], list[tuple[str, ...]]]:
    """The trigger service, the step services in definition order, and every trigger-first path of services.

    A step without ``needs`` hangs off the trigger; template references are
    not followed here (a definition's ``needs`` is what its author meant).
    """
    trigger = str(definition.get("trigger", {}).get("service", ""))
    steps = list(definition.get("steps", ()))
    by_id = {str(s["id"]): s for s in steps}
    children: dict[str, list[str]] = defaultdict(list)
    for s in steps:
        parents = [n for n in s.get("needs", ()) if n in by_id] or [""]
        for parent in parents:
            children[parent].append(str(s["id"]))
    paths: list[tuple[str, ...]] = []

    def walk(node: str, path: tuple[str, ...], seen: frozenset[str]) -> None:
        for child in children.get(node, ()):
            if child in seen:
                continue
            extended = (*path, str(by_id[child]["service"]))
            paths.append(extended)
            walk(child, extended, seen | {child})

    walk("", (trigger,), frozenset())
    return trigger, [str(s["service"]) for s in steps], paths


def mine(workflows: Iterable[Workflow], outcomes: Iterable[StepOutcomes], *, min_support: int = 2) -> Patterns:
    """Pairs, sequences and templates defined by at least ``min_support`` workflows; every failure point."""
    pair_wf: Counter[tuple[str, str]] = Counter()
    pair_runs: Counter[tuple[str, str]] = Counter()
    seq_wf: Counter[tuple[str, ...]] = Counter()
    seq_runs: Counter[tuple[str, ...]] = Counter()
    shape_wf: Counter[tuple[str, tuple[str, ...]]] = Counter()
    shape_runs: Counter[tuple[str, tuple[str, ...]]] = Counter()
    example: dict[tuple[str, tuple[str, ...]], str] = {}
    for workflow in sorted(workflows, key=lambda w: w.workflow_id):
        trigger, services, paths = shape(workflow.definition)
        pairs = {(trigger, s) for s in services}
        sequences = {
            p[i:j] for p in paths for i in range(len(p)) for j in range(i + 2, min(len(p), i + MAX_SEQUENCE) + 1)
        }
        for key in pairs:
            pair_wf[key] += 1
            pair_runs[key] += workflow.runs
        for seq in sequences:
            seq_wf[seq] += 1
            seq_runs[seq] += workflow.runs
        whole = (trigger, tuple(services))
        shape_wf[whole] += 1
        shape_runs[whole] += workflow.runs
        example.setdefault(whole, workflow.workflow_id)
    return Patterns(
        pairs=[Pair(t, a, n, pair_runs[(t, a)]) for (t, a), n in _frequent(pair_wf, min_support, pair_runs)],
        sequences=[Chain(s, n, seq_runs[s]) for s, n in _frequent(seq_wf, min_support, seq_runs)],
        templates=[
            Template(t, actions, n, shape_runs[(t, actions)], example[(t, actions)])
            for (t, actions), n in _frequent(shape_wf, min_support, shape_runs)
        ],
        failure_points=failure_points(outcomes),
    )


def failure_points(outcomes: Iterable[StepOutcomes]) -> list[FailurePoint]:
    """Every (service, action) with a failed attempt, most failed attempts first."""
    points = [
        FailurePoint(
            o.service, o.action, o.attempts, o.failed, round(o.failed / o.attempts, 4), o.workflows, o.top_error
        )
        for o in outcomes
        if o.failed > 0 and o.attempts > 0
    ]
    return sorted(points, key=lambda p: (-p.failed, -p.failure_rate, p.service, p.action))


def _frequent(counts: Counter[Any], min_support: int, runs: Mapping[Any, int]) -> Sequence[tuple[Any, int]]:
    """Keys with at least ``min_support`` workflows: most workflows first, then most runs, then the key."""
    kept = [(key, n) for key, n in counts.items() if n >= min_support]
    return sorted(kept, key=lambda item: (-item[1], -runs[item[0]], item[0]))
