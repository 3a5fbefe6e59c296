"""A workflow definition as a DAG: validation, dependencies, ready steps.

Dependencies are the union of a step's explicit ``needs`` and the steps its
templates (its fallback's included) and condition read. A definition is refused (``DefinitionError``,
with every problem listed) when a step id repeats, a dependency names an
unknown step, a template or condition does not parse, or the graph has a
cycle.

>>> from schemas.workflows import WorkflowDefinition
>>> d = WorkflowDefinition.model_validate({
...     "name": "triage", "trigger": {"service": "gmail", "event": "new_email"},
...     "steps": [
...         {"id": "task", "service": "asana", "action": "create_task",
...          "params": {"name": "{{ trigger.subject }}"}},
...         {"id": "notify", "service": "slack", "action": "post_message",
...          "params": {"text": "{{ steps.task.output.url }}"}},
...         {"id": "log", "service": "google-sheets", "action": "append_row"},
...     ]})
>>> plan = plan_definition(d)
>>> plan.dependencies["notify"], plan.order
(frozenset({'task'}), ('task', 'log', 'notify'))
>>> sorted(plan.ready(done=set(), started=set()))
['log', 'task']
"""

from dataclasses import dataclass

from domain.expressions import ExpressionError, compile_expression
from domain.expressions import referenced_steps as expression_steps
from domain.templates import TemplateError, referenced_steps
from schemas.workflows import WorkflowDefinition


class DefinitionError(ValueError):
    """The definition is not a valid DAG; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Plan:
    dependencies: dict[str, frozenset[str]]
    """Step id -> the steps it waits for."""
    order: tuple[str, ...]
    """A topological order, stable with respect to the definition's order."""

    def ready(self, *, done: set[str], started: set[str]) -> list[str]:
        """Steps whose dependencies are all done and that have not started, in plan order."""
        return [s for s in self.order if s not in started and s not in done and self.dependencies[s] <= done]

    def dependents(self, step_id: str) -> set[str]:
        """Every step that transitively depends on ``step_id``."""
        found: set[str] = set()
        frontier = {step_id}
        while frontier:
            frontier = {s for s, deps in self.dependencies.items() if deps & frontier} - found
            found |= frontier
        return found


def plan_definition(definition: WorkflowDefinition) -> Plan:
    problems: list[str] = []
    ids = [step.id for step in definition.steps]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        problems.append(f"step ids repeat: {repeated}")
    known = set(ids)
    dependencies: dict[str, frozenset[str]] = {}
    for step in definition.steps:
        deps = set(step.needs)
        templates = {"params": step.params}
        if step.fallback and step.fallback.params is not None:
            templates["fallback params"] = step.fallback.params
        for name, params in templates.items():
            try:
                deps |= referenced_steps(params)
            except TemplateError as exc:
                problems.append(f"step {step.id!r} {name}: {exc}")
        if step.when:
            try:
                deps |= expression_steps(compile_expression(step.when))
            except ExpressionError as exc:
                problems.append(f"step {step.id!r} when: {exc}")
        unknown = sorted(deps - known)
        if unknown:
            problems.append(f"step {step.id!r} depends on unknown steps {unknown}")
        if step.id in deps:
            problems.append(f"step {step.id!r} depends on itself")
        dependencies[step.id] = frozenset(deps & known - {step.id})
    if problems:
        raise DefinitionError(problems)
    return Plan(dependencies, _topological_order(ids, dependencies))


def _topological_order(ids: list[str], dependencies: dict[str, frozenset[str]]) -> tuple[str, ...]:
    order: list[str] = []
    placed: set[str] = set()
    while len(order) < len(ids):
        ready = [i for i in ids if i not in placed and dependencies[i] <= placed]
        if not ready:
            cycle = sorted(i for i in ids if i not in placed)
            raise DefinitionError([f"dependency cycle among steps {cycle}"])
        order += ready
        placed |= set(ready)
    return tuple(order)
