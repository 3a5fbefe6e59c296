"""A run as a fold over its records: ``evolve`` applies one, ``decide`` answers one.

    state = evolve(state, event)                      # what happened
    events = decide(state, record, now=..., rng=...)   # what happens next

``decide`` takes commands (``StartRun``, ``CancelRun``, ``RetryRun``,
``RetryStep``), the run's own events (a finished step schedules its
dependents, a failure is retried or fails the run) and ``Tick`` (time passed:
due retries start). It returns new events only; the executor applies them
with ``evolve``, publishes them, and performs every ``StepStarted`` it emitted
by calling the step's connector. Ids of emitted events are derived from the
record that caused them, so reprocessing a record after a crash emits the
same ids and every consumer deduplicates them.

Semantics, in the spirit of Temporal and n8n:

* a step runs once everything it depends on has succeeded or been skipped;
  a step whose condition (``when``) is false, or that depends on a skipped
  step, is skipped;
* a failed attempt is retried per the step's policy (``domain.retry``); when
  retries are exhausted or the error is permanent the run fails, steps still
  in flight finish, and no new step starts;
* unless the step has a ``fallback`` and the error is not bad input: then the
  step goes on with the fallback's service (next attempt, ``fallback_for``
  naming the step's own service, the same policy with attempts counted from
  the fallback's first), and only the fallback failing for good fails the run.
  Dependents read the fallback's output as the step's;
* ``RetryRun`` resumes a failed run: its failed steps run again (next attempt,
  on their own service again) and then everything downstream; succeeded steps
  keep their outputs;
* the trigger's ``filter`` is checked at start: a run whose trigger does not
  pass is cancelled with that reason.
"""

import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from domain.dag import Plan, plan_definition
from domain.expressions import compile_expression, evaluate
from domain.retry import decide_retry, worth_a_fallback
from domain.templates import render
from schemas.common import StepError
from schemas.envelope import Envelope, deterministic_event_id
from schemas.runs import (
    RunCancelled,
    RunFailed,
    RunResumed,
    RunStarted,
    RunSucceeded,
    StepFailed,
    StepRetryScheduled,
    StepSkipped,
    StepStarted,
    StepSucceeded,
)
from schemas.workflows import CancelRun, RetryPolicy, RetryRun, RetryStep, StartRun, StepDefinition, WorkflowDefinition

StepStatus = Literal["waiting", "running", "retry_scheduled", "succeeded", "failed", "skipped"]
RunStatus = Literal["pending", "running", "succeeded", "failed", "cancelled"]
TERMINAL_RUN: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class StepState:
    status: StepStatus = "waiting"
    attempt: int = 0
    """The latest attempt started (or, when a retry is scheduled, the one due next)."""
    output: Mapping[str, Any] | None = None
    error: StepError | None = None
    due_at: datetime | None = None
    fallback_since: int | None = None
    """The attempt from which the step calls its fallback; None while it calls its own service."""


@dataclass(frozen=True)
class Target:
    """What an attempt of a step calls: the step's own service, or its fallback's."""

    service: str
    action: str
    params: Mapping[str, Any]
    credential_id: str | None
    fallback_for: str | None = None

    @classmethod
    def of(cls, step: StepDefinition, *, fallback: bool = False) -> "Target":
        if not fallback or step.fallback is None:
            return cls(step.service, step.action, step.params, step.credential_id)
        other = step.fallback
        params = step.params if other.params is None else other.params
        return cls(other.service, other.action or step.action, params, other.credential_id, step.service)

    def payload(self, attempt: int) -> dict[str, Any]:
        """The fields every event of an attempt carries."""
        return {
            "service": self.service, "action": self.action, "attempt": attempt,
            "credential_id": self.credential_id, "fallback_for": self.fallback_for,
        }  # fmt: skip


@dataclass(frozen=True)
class RunState:
    tenant_id: str
    workflow_id: str
    run_id: str
    status: RunStatus = "pending"
    definition: WorkflowDefinition | None = None
    version: int | None = None
    trigger: Mapping[str, Any] = field(default_factory=dict)
    steps: Mapping[str, StepState] = field(default_factory=dict)
    started_at: datetime | None = None
    applied: frozenset[str] = frozenset()
    """Ids of the events already folded in (redeliveries are ignored)."""
    compiled: Plan | None = field(default=None, compare=False, repr=False)
    """The definition's plan, computed once when the run starts."""

    @property
    def plan(self) -> Plan:
        if self.compiled is None:
            assert self.definition is not None
            return plan_definition(self.definition)
        return self.compiled

    def step(self, step_id: str) -> StepDefinition:
        assert self.definition is not None
        return next(s for s in self.definition.steps if s.id == step_id)

    def target(self, step_id: str) -> Target:
        """What the step's current attempt calls."""
        return Target.of(self.step(step_id), fallback=self.steps[step_id].fallback_since is not None)

    def context(self) -> dict[str, Any]:
        """What templates and conditions read."""
        return {
            "trigger": dict(self.trigger),
            "steps": {sid: {"output": s.output} for sid, s in self.steps.items() if s.status == "succeeded"},
            "run": {"id": self.run_id, "workflow_id": self.workflow_id, "version": self.version},
        }

    def in_flight(self) -> list[str]:
        return [sid for sid, s in self.steps.items() if s.status == "running"]

    def due(self, now: datetime) -> list[str]:
        return [
            sid
            for sid, s in self.steps.items()
            if s.status == "retry_scheduled" and s.due_at is not None and s.due_at <= now
        ]


@dataclass(frozen=True)
class Tick:
    """Time has passed; due retries may start. Not a record on the log."""

    now: datetime


def initial_state(record: Envelope) -> RunState:
    assert record.run_id is not None
    return RunState(tenant_id=record.tenant_id, workflow_id=record.workflow_id, run_id=record.run_id)


# ---------------------------------------------------------------------------------------------- evolve


def evolve(state: RunState, event: Envelope) -> RunState:
    """Fold one run event into the state; an event already applied changes nothing."""
    if event.event_id in state.applied:
        return state
    state = replace(state, applied=state.applied | {event.event_id})
    match event:
        case RunStarted(payload=p):
            steps = {s.id: StepState() for s in p.definition.steps} if p.definition else {}
            return replace(
                state, status="running", definition=p.definition, version=p.definition_version,
                trigger=p.inputs, steps=steps, started_at=event.occurred_at,
                compiled=plan_definition(p.definition) if p.definition else None,
            )  # fmt: skip
        case StepStarted(payload=p):
            since = None
            if p.fallback_for:  # the fallback's first attempt, or a retry of it
                since = _previous(state, event).fallback_since or p.attempt
            return _set_step(state, event.step_id, StepState("running", p.attempt, fallback_since=since))
        case StepSucceeded(payload=p):
            since = _previous(state, event).fallback_since
            succeeded = StepState("succeeded", p.attempt, output=p.output or {}, fallback_since=since)
            return _set_step(state, event.step_id, succeeded)
        case StepFailed(payload=p):
            since = _previous(state, event).fallback_since
            return _set_step(state, event.step_id, StepState("failed", p.attempt, error=p.error, fallback_since=since))
        case StepRetryScheduled(payload=p):
            scheduled = replace(_previous(state, event), status="retry_scheduled", attempt=p.attempt, due_at=p.due_at)
            return _set_step(state, event.step_id, scheduled)
        case StepSkipped():
            return _set_step(state, event.step_id, StepState("skipped"))
        case RunResumed(payload=p):
            steps = dict(state.steps)
            for sid in p.steps:
                if sid in steps:  # a resumed step starts over on its own service
                    steps[sid] = replace(steps[sid], status="waiting", due_at=None, fallback_since=None)
            return replace(state, status="running", steps=steps)
        case RunSucceeded():
            return replace(state, status="succeeded")
        case RunFailed():
            return replace(state, status="failed")
        case RunCancelled():
            return replace(state, status="cancelled")
    return state


def _previous(state: RunState, event: Envelope) -> StepState:
    return state.steps.get(event.step_id or "", StepState())


def _set_step(state: RunState, step_id: str | None, step: StepState) -> RunState:
    assert step_id is not None
    return replace(state, steps={**state.steps, step_id: step})


# ---------------------------------------------------------------------------------------------- decide


def decide(
    state: RunState, record: Envelope | Tick, *, now: datetime, detours: frozenset[str] = frozenset()
) -> list[Envelope]:
    """The events that follow from ``record`` given ``state`` (which already includes it if it is an event).

    ``detours`` names services whose circuit is open (``SetServiceRoute``): a
    step on one of them that has a fallback starts on its fallback at once.
    """
    match record:
        case Tick():
            return _start_due(state, now)
        case StartRun():
            return _start(state, record, now, detours)
        case CancelRun(payload=p) if state.status in ("pending", "running"):
            return [_run_event(RunCancelled, state, record, now, {"reason": p.reason or "cancelled"})]
        case RetryRun(payload=p) if state.status == "failed":
            return _resume(state, record, now, p.reason or "retry requested", only=None, detours=detours)
        case RetryStep(payload=p) if state.status in ("failed", "running") and record.step_id in state.steps:
            return _resume(state, record, now, p.reason or "retry requested", only=record.step_id, detours=detours)
        case StepSucceeded() | StepSkipped() if state.status == "running":
            return _advance(state, record, now, detours)
        case StepFailed() if state.status == "running":
            return _after_failure(state, record, now)
    return []


def _start(state: RunState, command: StartRun, now: datetime, detours: frozenset[str]) -> list[Envelope]:
    if state.status != "pending":
        return []  # a duplicate StartRun
    definition = command.payload.definition
    if definition is None:
        error = {"type": "DefinitionMissing", "message": "StartRun carried no workflow definition"}
        return [_run_event(RunFailed, state, command, now, {"error": error})]
    started = _run_event(
        RunStarted, state, command, now,
        {"definition_version": command.payload.definition_version, "trigger_service": definition.trigger.service,
         "inputs": command.payload.trigger_payload, "definition": definition},
    )  # fmt: skip
    after = evolve(state, started)
    trigger_filter = definition.trigger.filter
    if trigger_filter and not evaluate(compile_expression(trigger_filter), after.context()):
        reason = f"trigger filter is false: {trigger_filter}"
        return [started, _run_event(RunCancelled, after, command, now, {"reason": reason})]
    return [started, *_advance(after, command, now, detours)]


def _advance(state: RunState, cause: Envelope, now: datetime, detours: frozenset[str] = frozenset()) -> list[Envelope]:
    """Start or skip every step that became ready; finish the run when all are done."""
    out: list[Envelope] = []
    plan = state.plan
    while True:
        done = {sid for sid, s in state.steps.items() if s.status in ("succeeded", "skipped")}
        started = {sid for sid, s in state.steps.items() if s.status != "waiting"}
        ready = plan.ready(done=done, started=started)
        if not ready:
            break
        for sid in ready:
            event = _skip_or_start(state, sid, cause, now, detours)
            state = evolve(state, event)
            out.append(event)
    if all(s.status in ("succeeded", "skipped") for s in state.steps.values()):
        duration = (now - state.started_at).total_seconds() * 1000 if state.started_at else None
        out.append(_run_event(RunSucceeded, state, cause, now, {"duration_ms": max(duration or 0.0, 0.0)}))
    return out


def _skip_or_start(state: RunState, step_id: str, cause: Envelope, now: datetime, detours: frozenset[str]) -> Envelope:
    step = state.step(step_id)
    skipped_upstream = sorted(d for d in state.plan.dependencies[step_id] if state.steps[d].status == "skipped")
    reason = None
    if skipped_upstream:
        reason = f"depends on skipped {skipped_upstream}"
    elif step.when and not evaluate(compile_expression(step.when), state.context()):
        reason = f"condition is false: {step.when}"
    if reason:
        payload = {"service": step.service, "action": step.action, "reason": reason}
        return _step_event(StepSkipped, state, step_id, cause, now, payload, tag="skip")
    attempt = state.steps[step_id].attempt + 1
    payload = Target.of(step, fallback=step.service in detours).payload(attempt)
    return _step_event(StepStarted, state, step_id, cause, now, payload, tag=f"start-{attempt}")


def _after_failure(state: RunState, failed: StepFailed, now: datetime) -> list[Envelope]:
    step = state.step(failed.step_id)
    attempt, since = failed.payload.attempt, state.steps[step.id].fallback_since
    tries = attempt if since is None else attempt - since + 1  # a fallback's attempts count from its first
    rng = random.Random(failed.event_id)  # the same decision when the failure is reprocessed
    decision = decide_retry(step.retry or DEFAULT_RETRY, tries, failed.payload.error, rng=rng)
    if decision.retry:
        due = now + timedelta(seconds=decision.delay_s)
        payload = {
            **state.target(step.id).payload(attempt + 1), "delay_s": decision.delay_s, "due_at": due,
            "reason": decision.reason,
        }  # fmt: skip
        scheduled = _step_event(StepRetryScheduled, state, step.id, failed, now, payload, tag=f"retry-{attempt + 1}")
        return [scheduled, *_start_due(evolve(state, scheduled), now)]
    if since is None and step.fallback is not None and worth_a_fallback(failed.payload.error):
        payload = Target.of(step, fallback=True).payload(attempt + 1)
        return [_step_event(StepStarted, state, step.id, failed, now, payload, tag=f"start-{attempt + 1}")]
    error = failed.payload.error.model_dump()
    where = "" if since is None else f" on its fallback {failed.payload.service!r}, after {step.service!r} failed,"
    error["message"] = (
        f"step {step.id!r} failed{where} after {tries} attempt(s) ({decision.reason}): {error['message']}"
    )
    return [_run_event(RunFailed, state, failed, now, {"failed_step_id": step.id, "error": error})]


def _start_due(state: RunState, now: datetime) -> list[Envelope]:
    if state.status != "running":
        return []
    out: list[Envelope] = []
    for sid in state.due(now):
        attempt = state.steps[sid].attempt
        payload = state.target(sid).payload(attempt)
        # Keyed by the attempt, not by what noticed it was due: one start per attempt.
        event_id = deterministic_event_id(state.run_id, sid, str(attempt), "due-start")
        out.append(
            StepStarted(
                event_id=event_id,
                occurred_at=now,
                tenant_id=state.tenant_id,
                workflow_id=state.workflow_id,
                run_id=state.run_id,
                step_id=sid,
                correlation_id=state.run_id,
                payload=payload,
            )  # fmt: skip
        )
    return out


def _resume(
    state: RunState, command: Envelope, now: datetime, reason: str, *, only: str | None,
    detours: frozenset[str] = frozenset(),
) -> list[Envelope]:  # fmt: skip
    failed = [sid for sid, s in state.steps.items() if s.status == "failed" and (only is None or sid == only)]
    if not failed:
        return []
    events: list[Envelope] = []
    if state.status == "failed":
        resumed = _run_event(RunResumed, state, command, now, {"steps": failed, "reason": reason})
        events.append(resumed)
        state = evolve(state, resumed)
        return [*events, *_advance(state, command, now, detours)]
    # A running run with a failed step has a retry scheduled already: nothing to resume.
    return events


def render_params(state: RunState, step_id: str) -> dict[str, Any]:
    """The parameters of the step's current target with every template resolved against the run so far."""
    rendered = render(dict(state.target(step_id).params), state.context())
    return rendered if isinstance(rendered, dict) else {}


# ---------------------------------------------------------------------------------------------- helpers


def _run_event(
    cls: type[Envelope], state: RunState, cause: Envelope, now: datetime, payload: dict[str, Any]
) -> Envelope:
    return cls.model_validate({
        "event_id": deterministic_event_id(cause.event_id, cls.__name__),
        "occurred_at": now, "tenant_id": state.tenant_id, "workflow_id": state.workflow_id,
        "run_id": state.run_id, "causation_id": cause.event_id, "correlation_id": state.run_id,
        "payload": payload,
    })  # fmt: skip


def _step_event(
    cls: type[Envelope], state: RunState, step_id: str, cause: Envelope, now: datetime,
    payload: dict[str, Any], *, tag: str,
) -> Envelope:  # fmt: skip
    return cls.model_validate({
        "event_id": deterministic_event_id(cause.event_id, cls.__name__, step_id, tag),
        "occurred_at": now, "tenant_id": state.tenant_id, "workflow_id": state.workflow_id,
        "run_id": state.run_id, "step_id": step_id, "causation_id": cause.event_id,
        "correlation_id": state.run_id, "payload": payload,
    })  # fmt: skip
