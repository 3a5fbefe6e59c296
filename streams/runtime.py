"""The executor's imperative shell: state store, publishing, connector calls, timers.

``ExecutorRuntime`` feeds records to ``domain.execution`` and carries out what
it decides. It knows nothing of Faust: the agent in ``streams.executor`` gives
it a state store (a changelogged table) and a publish function, and unit tests
give it dictionaries.

Step attempts run as asyncio tasks, at most ``max_parallel`` at once per
worker; steps marked ``cache: true`` go through the worker's ``StepCache``
first. Each attempt's result is published as ``StepSucceeded`` or
``StepFailed`` (with the call's ``params_digest``, and whether the output was
``cached``) with an id derived from the attempt, and comes back through the
agent like any other event, so the state only ever changes by folding the log.
After a restart, ``recover`` re-dispatches attempts that were in flight (the
connector sees the same idempotency key) and re-arms due retries.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from connectors.base import Connector, ConnectorError, StepCall
from domain.execution import RunState, StepState, Target, Tick, decide, evolve, initial_state, render_params
from domain.step_cache import cache_key, params_digest
from schemas.common import StepError
from schemas.envelope import Envelope, deterministic_event_id
from schemas.runs import RunCancelled, StepFailed, StepStarted, StepSucceeded
from schemas.workflows import CancelRun, RetryRun, RetryStep, StartRun, WorkflowDefinition
from streams.step_cache import Outcome, StepCache

log = logging.getLogger(__name__)

COMMANDS = (StartRun, CancelRun, RetryRun, RetryStep)
Publish = Callable[[list[Envelope]], Awaitable[None]]


class ConnectorLookup(Protocol):
    """What the runtime needs from a connector registry."""

    def for_service(self, service: str) -> Connector: ...


_DEFINITION_JSON: dict[int, tuple[WorkflowDefinition, orjson.Fragment]] = {}


def _definition_json(definition: WorkflowDefinition | None) -> orjson.Fragment | None:
    """A run's definition never changes: encode it once per definition object."""
    if definition is None:
        return None
    cached = _DEFINITION_JSON.get(id(definition))
    if cached is None or cached[0] is not definition:
        if len(_DEFINITION_JSON) > 10_000:
            _DEFINITION_JSON.clear()
        cached = _DEFINITION_JSON[id(definition)] = (definition, orjson.Fragment(definition.model_dump_json()))
    return cached[1]


def encode_state(state: RunState) -> bytes:
    return orjson.dumps({
        "tenant_id": state.tenant_id, "workflow_id": state.workflow_id, "run_id": state.run_id,
        "status": state.status, "version": state.version, "trigger": state.trigger,
        "definition": _definition_json(state.definition),
        "started_at": state.started_at.isoformat() if state.started_at else None,
        "applied": sorted(state.applied),
        "steps": {
            sid: {"status": s.status, "attempt": s.attempt, "output": s.output,
                  "error": s.error.model_dump() if s.error else None,
                  "due_at": s.due_at.isoformat() if s.due_at else None, "fallback_since": s.fallback_since}
            for sid, s in state.steps.items()
        },
    })  # fmt: skip


def decode_state(raw: bytes) -> RunState:
    data = orjson.loads(raw)
    definition = WorkflowDefinition.model_validate(data["definition"]) if data["definition"] else None
    steps = {
        sid: StepState(
            status=s["status"],
            attempt=s["attempt"],
            output=s["output"],
            error=StepError.model_validate(s["error"]) if s["error"] else None,
            due_at=datetime.fromisoformat(s["due_at"]) if s["due_at"] else None,
            fallback_since=s.get("fallback_since"),  # absent from states written before fallbacks
        )  # fmt: skip
        for sid, s in data["steps"].items()
    }
    state = RunState(
        tenant_id=data["tenant_id"], workflow_id=data["workflow_id"], run_id=data["run_id"],
        status=data["status"], definition=definition, version=data["version"], trigger=data["trigger"],
        steps=steps, started_at=datetime.fromisoformat(data["started_at"]) if data["started_at"] else None,
        applied=frozenset(data["applied"]),
    )  # fmt: skip
    return replace(state, compiled=state.plan) if definition else state


class ExecutorRuntime:
    def __init__(
        self,
        *,
        states: MutableMapping[str, bytes],
        publish: Publish,
        connectors: ConnectorLookup,
        max_parallel: int = 8,
        default_timeout_s: float = 30.0,
        step_cache: StepCache | None = None,
    ) -> None:
        self.states = states
        self.publish = publish
        self.connectors = connectors
        self.slots = asyncio.Semaphore(max_parallel)
        self.limits = ServiceLimits()
        self.detours: dict[str, frozenset[str]] = {}
        """Tenant -> services whose circuit is open: steps on them with a fallback start on it (``SetServiceRoute``)."""
        self.default_timeout_s = default_timeout_s
        self.step_cache = step_cache or StepCache()
        self.in_flight: dict[tuple[str, str, int], asyncio.Task[None]] = {}
        self.cache: dict[str, RunState] = {}
        """Decoded states of this worker's runs; the table is the durable copy."""
        self.active: set[str] = set()
        self.dispatch_delays_ms: list[float] = []
        """How long each StepStarted waited for a free slot (for benchmarks)."""
        self.steps_finished = 0
        self.records_handled = 0
        """Records folded by ``handle`` (commands and step results), for the heartbeat."""

    # -- records ------------------------------------------------------------------------------------

    async def handle(self, records: Iterable[Envelope], *, publish_records: bool = False) -> None:
        """Fold and decide a batch of records: one publish and one state write per run per batch.

        With ``publish_records`` the records themselves are new (a step's result
        produced here) and are published together with what they caused.
        """
        records = list(records)
        self.records_handled += len(records)
        by_run: dict[str, list[Envelope]] = {}
        for record in records:
            if record.run_id and (isinstance(record, COMMANDS) or record.type in _RUN_EVENT_TYPES):
                by_run.setdefault(record.run_id, []).append(record)
        now = datetime.now(UTC)
        results: list[tuple[RunState, list[Envelope]]] = []
        for run_id, run_records in by_run.items():
            loaded = state = self._load(run_id)
            if state is None:
                if not any(isinstance(r, StartRun) for r in run_records):
                    continue  # a run reported by an outside producer: nothing to execute
                state = initial_state(run_records[0])
            emitted: list[Envelope] = []
            for record in run_records:
                if not isinstance(record, COMMANDS):
                    if record.event_id in state.applied:
                        continue  # our own event coming back, or a redelivery
                    state = evolve(state, record)
                for event in decide(state, record, now=now, detours=self.detours.get(state.tenant_id, _NONE)):
                    state = evolve(state, event)
                    emitted.append(event)
            if state is not loaded:
                results.append((state, emitted))
        await self._commit(results, records if publish_records else [])

    async def tick(self) -> None:
        """Start every retry that has come due."""
        now = datetime.now(UTC)
        results: list[tuple[RunState, list[Envelope]]] = []
        for run_id in list(self.active):
            state = self._load(run_id)
            if state is None or state.status != "running":
                self.active.discard(run_id)
                continue
            if not state.due(now):
                continue
            emitted = decide(state, Tick(now), now=now, detours=self.detours.get(state.tenant_id, _NONE))
            for event in emitted:
                state = evolve(state, event)
            results.append((state, emitted))
        await self._commit(results)

    async def recover(self) -> int:
        """After a restart: re-dispatch attempts that were in flight, track running runs."""
        redispatched = 0
        for run_id, raw in list(self.states.items()):
            state = decode_state(raw)
            if state.status != "running":
                continue
            self.active.add(run_id)
            for step_id in state.in_flight():
                if (run_id, step_id, state.steps[step_id].attempt) not in self.in_flight:
                    self._dispatch(state, step_id, state.steps[step_id].attempt)
                    redispatched += 1
        return redispatched

    async def _commit(self, results: list[tuple[RunState, list[Envelope]]], inputs: Sequence[Envelope] = ()) -> None:
        """Take the new states, act on the decisions while they are published, then write the states.

        The in-memory state moves on at once (before any await), so concurrent
        batches of the same run see each other's effects. A step call may begin
        before its StepStarted is acknowledged: if the worker dies in between,
        the table still holds the earlier state, the record is decided again
        with the same event ids, and the call is repeated with the same
        idempotency key, which the service deduplicates. The table is written
        only after the broker acknowledged the events the state reflects.
        """
        emitted = [*inputs, *(event for _, events in results for event in events)]
        for state, events in results:
            self.cache[state.run_id] = state
            for event in events:
                if isinstance(event, StepStarted):
                    self._dispatch(state, event.step_id, event.payload.attempt)
                elif isinstance(event, RunCancelled):
                    self._cancel_run(state.run_id)
        if emitted:
            await self.publish(emitted)
        for state, _events in results:
            self._store(state)
            if state.status == "running":
                self.active.add(state.run_id)
            else:
                self.active.discard(state.run_id)

    def _load(self, run_id: str) -> RunState | None:
        cached = self.cache.get(run_id)
        if cached is not None:
            return cached
        raw = self.states.get(run_id)
        if raw is None:
            return None
        state = self.cache[run_id] = decode_state(raw)
        return state

    def _store(self, state: RunState) -> None:
        set_later = getattr(self.states, "set_later", None)
        if set_later is not None:  # a write-behind store: encode once per flush, not once per change
            set_later(state.run_id, lambda: encode_state(state))
        else:
            self.states[state.run_id] = encode_state(state)
        if state.status in ("succeeded", "cancelled") and self.cache.get(state.run_id) is state:
            self.cache.pop(state.run_id, None)  # finished for good; the table keeps it

    def route(self, tenant_id: str, service: str, to_fallback: bool) -> None:
        """Send the tenant's steps on ``service`` that have a fallback to it (``to_fallback``), or back."""
        current = self.detours.get(tenant_id, _NONE)
        self.detours[tenant_id] = current | {service} if to_fallback else current - {service}

    # -- step attempts ------------------------------------------------------------------------------

    def _dispatch(self, state: RunState, step_id: str, attempt: int) -> None:
        key = (state.run_id, step_id, attempt)
        if key in self.in_flight:
            return
        task = asyncio.create_task(self._attempt(state, step_id, attempt, time.perf_counter()))
        self.in_flight[key] = task
        task.add_done_callback(lambda _t: self.in_flight.pop(key, None))

    def _cancel_run(self, run_id: str) -> None:
        for (rid, _step, _attempt), task in list(self.in_flight.items()):
            if rid == run_id:
                task.cancel()

    async def _attempt(self, state: RunState, step_id: str, attempt: int, queued_at: float) -> None:
        step, target = state.step(step_id), state.target(step_id)
        failed: StepError | None = None
        try:
            params = render_params(state, step_id)
        except Exception as exc:  # a template that cannot be evaluated fails its step, and retrying cannot help
            params, failed = {}, StepError(type="TemplateError", message=f"params of step {step_id}: {exc}"[:500],
                                           retryable=False)  # fmt: skip
        call = StepCall(
            tenant_id=state.tenant_id, workflow_id=state.workflow_id, run_id=state.run_id, step_id=step_id,
            attempt=attempt, service=target.service, action=target.action, params=params,
            credential_id=target.credential_id, timeout_s=step.timeout_s or self.default_timeout_s,
        )  # fmt: skip
        if failed is not None:
            outcome = Outcome(failed, 0.0)
        elif step.cache_ttl is None:
            outcome = await self._perform(call, queued_at)
        else:
            key = cache_key(call.tenant_id, call.service, call.action, call.params, call.credential_id)
            outcome = await self.step_cache.fetch(key, step.cache_ttl, lambda: self._perform(call, queued_at))
        # Applied here at once (dependents start without waiting for the log round
        # trip) and published with what it caused; its echo from the log is ignored.
        await self.handle([_result_event(state, call, target, outcome)], publish_records=True)
        self.steps_finished += 1

    async def _perform(self, call: StepCall, queued_at: float) -> Outcome:
        # A service's own limit first: a step waiting for it holds none of the worker's slots.
        async with self.limits.slot(call.tenant_id, call.service), self.slots:
            self.dispatch_delays_ms.append((time.perf_counter() - queued_at) * 1000)
            started = time.perf_counter()
            result = await self._call(call)
            return Outcome(result, (time.perf_counter() - started) * 1000)

    async def _call(self, call: StepCall) -> dict[str, Any] | StepError:
        try:
            connector = self.connectors.for_service(call.service)
            async with asyncio.timeout(call.timeout_s):  # unlike wait_for, no extra task per call
                output = await connector.call(call)
            return output if isinstance(output, dict) else {"value": output}
        except ConnectorError as exc:
            return StepError(
                type=exc.error_type, message=exc.message, status_code=exc.status_code,
                retry_after_s=exc.retry_after_s, retryable=exc.retryable,
            )  # fmt: skip
        except TimeoutError:
            return StepError(type="Timeout", message=f"step timed out after {call.timeout_s:g}s")
        except Exception as exc:  # a bug in a connector is a failed step, not a dead executor
            log.exception("connector for %s crashed", call.service)
            return StepError(type=type(exc).__name__, message=str(exc)[:500])


_NONE: frozenset[str] = frozenset()


class ServiceLimits:
    """Calls at once per (tenant, service), for services told to slow down (``SetServiceConcurrency``)."""

    def __init__(self) -> None:
        self.limits: dict[tuple[str, str], int] = {}
        self.running: dict[tuple[str, str], int] = {}
        self.changed = asyncio.Condition()

    async def set(self, tenant_id: str, service: str, limit: int | None) -> None:
        async with self.changed:
            if limit is None:
                self.limits.pop((tenant_id, service), None)
            else:
                self.limits[(tenant_id, service)] = limit
            self.changed.notify_all()

    @contextlib.asynccontextmanager
    async def slot(self, tenant_id: str, service: str) -> AsyncIterator[None]:
        key = (tenant_id, service)
        if not self.limits:  # the usual case: no service limited, nothing to wait for
            yield
            return
        async with self.changed:
            await self.changed.wait_for(lambda: self.running.get(key, 0) < self.limits.get(key, 1 << 30))
            self.running[key] = self.running.get(key, 0) + 1
        try:
            yield
        finally:
            async with self.changed:
                self.running[key] -= 1
                self.changed.notify_all()


_RUN_EVENT_TYPES = frozenset({
    "RunStarted", "StepStarted", "StepSucceeded", "StepFailed", "StepRetryScheduled", "StepSkipped",
    "RunResumed", "RunSucceeded", "RunFailed", "RunCancelled",
})  # fmt: skip


def _result_event(state: RunState, call: StepCall, target: Target, outcome: Outcome) -> Envelope:
    common: dict[str, Any] = {
        "event_id": deterministic_event_id(state.run_id, call.step_id, str(call.attempt), "result"),
        "occurred_at": datetime.now(UTC), "tenant_id": state.tenant_id, "workflow_id": state.workflow_id,
        "run_id": state.run_id, "step_id": call.step_id, "correlation_id": state.run_id,
    }  # fmt: skip
    payload: dict[str, Any] = {
        **target.payload(call.attempt), "duration_ms": outcome.duration_ms,
        "params_digest": params_digest(call.tenant_id, call.service, call.action, call.params),
    }  # fmt: skip
    if isinstance(outcome.result, StepError):
        return StepFailed.model_validate({**common, "payload": {**payload, "error": outcome.result}})
    return StepSucceeded.model_validate(
        {**common, "payload": {**payload, "output": outcome.result, "cached": outcome.cached}}
    )
