"""The executor runtime with in-memory state and a loop-back log (no Kafka)."""

import asyncio
import uuid
from datetime import UTC, datetime

from connectors.base import PermanentError, RetryableError
from schemas.workflows import CancelRun, RetryRun, StartRun, WorkflowDefinition
from streams.runtime import ExecutorRuntime, decode_state, encode_state

IDS = {"tenant_id": "acme", "workflow_id": "wf", "run_id": "run-1"}


class ScriptedConnectors:
    """Answers per service from a script; remembers every call's idempotency key."""

    def __init__(self, script=None, delay_s=0.0):
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.delay_s = delay_s
        self.calls = []
        self.running = 0
        self.max_running = 0

    def for_service(self, service):
        return self

    async def call(self, call):
        self.calls.append((call.step_id, call.attempt, call.idempotency_key, call.params))
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await asyncio.sleep(self.delay_s)
            outcomes = self.script.get(call.step_id, [])
            outcome = outcomes.pop(0) if outcomes else {"id": f"{call.step_id}-out"}
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        finally:
            self.running -= 1


class Harness:
    def __init__(self, connectors, max_parallel=8):
        self.log = []
        self.states = {}
        self.runtime = ExecutorRuntime(
            states=self.states, publish=self.publish, connectors=connectors, max_parallel=max_parallel
        )

    async def publish(self, events):
        self.log.extend(events)
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.runtime.handle(events)))

    async def settle(self, until, timeout=5.0):
        deadline = asyncio.get_running_loop().time() + timeout
        while not until():
            assert asyncio.get_running_loop().time() < deadline, [e.type for e in self.log]
            await self.runtime.tick()
            await asyncio.sleep(0.01)

    def status(self, run_id="run-1"):
        return decode_state(self.states[run_id]).status

    def results(self, step_id):
        return [e for e in self.log if e.type in ("StepSucceeded", "StepFailed") and e.step_id == step_id]


def definition():
    return WorkflowDefinition.model_validate({
        "name": "parallel",
        "trigger": {"service": "gmail", "event": "new_email"},
        "steps": [
            {"id": "a", "service": "asana", "action": "create_task", "params": {"t": "{{ trigger.subject }}"},
             "retry": {"initial_interval_s": 0.01, "maximum_interval_s": 5, "maximum_attempts": 3, "jitter": 0}},
            {"id": "b", "service": "slack", "action": "post_message"},
            {"id": "c", "service": "slack", "action": "post_message", "params": {"x": "{{ steps.a.output.id }}"},
             "needs": ["b"]},
        ],
    })  # fmt: skip


def start(run_id="run-1", defn=None, trigger=None):
    return StartRun(
        event_id=str(uuid.uuid4()), occurred_at=datetime.now(UTC), **{**IDS, "run_id": run_id},
        payload={"trigger_payload": trigger or {"subject": "hello"}, "definition": defn or definition(),
                 "definition_version": 1},
    )  # fmt: skip


async def test_a_run_executes_branches_in_parallel_and_passes_outputs_on():
    connectors = ScriptedConnectors(delay_s=0.05)
    h = Harness(connectors)
    await h.runtime.handle([start()])
    await h.settle(lambda: h.status() == "succeeded")
    assert connectors.max_running == 2  # a and b together
    calls = {step: params for step, _, _, params in connectors.calls}
    assert calls["a"] == {"t": "hello"} and calls["c"] == {"x": "a-out"}


async def test_retryable_failures_are_retried_and_permanent_ones_fail_the_run():
    connectors = ScriptedConnectors({"a": [RetryableError("busy", status_code=429, retry_after_s=0.05)]})
    h = Harness(connectors)
    await h.runtime.handle([start()])
    await h.settle(lambda: h.status() == "succeeded")
    attempts = [(s, a) for s, a, _, _ in connectors.calls if s == "a"]
    assert attempts == [("a", 1), ("a", 2)]
    assert [e.type for e in h.log].count("StepRetryScheduled") == 1

    connectors = ScriptedConnectors({"a": [PermanentError("bad", status_code=400)]})
    h = Harness(connectors)
    await h.runtime.handle([start()])
    await h.settle(lambda: h.status() == "failed")
    assert [(s, a) for s, a, _, _ in connectors.calls if s == "a"] == [("a", 1)]


async def test_retry_run_resumes_without_redoing_succeeded_steps():
    connectors = ScriptedConnectors({"a": [PermanentError("bad", status_code=400)]})
    h = Harness(connectors)
    await h.runtime.handle([start()])
    await h.settle(lambda: h.status() == "failed")
    await h.runtime.handle([RetryRun(event_id=str(uuid.uuid4()), occurred_at=datetime.now(UTC), **IDS)])
    await h.settle(lambda: h.status() == "succeeded")
    steps = [(s, a) for s, a, _, _ in connectors.calls]
    assert steps.count(("b", 1)) == 1 and ("a", 2) in steps and steps.count(("c", 1)) == 1


async def test_step_results_name_the_credential_the_step_used():
    connectors = ScriptedConnectors({"b": [PermanentError("refused", status_code=401)]})
    h = Harness(connectors)
    with_credential = definition().model_copy(deep=True)
    steps = [s.model_copy(update={"credential_id": "slack-ops"}) if s.id == "b" else s for s in with_credential.steps]
    run = start().model_copy(update={"payload": start().payload.model_copy(
        update={"definition": with_credential.model_copy(update={"steps": tuple(steps)})})})  # fmt: skip
    await h.runtime.handle([run])
    await h.settle(lambda: h.status() == "failed")
    results = {e.step_id: e.payload.credential_id for e in h.log if e.type in ("StepSucceeded", "StepFailed")}
    assert results["b"] == "slack-ops" and results["a"] is None


async def test_cancel_stops_in_flight_attempts():
    connectors = ScriptedConnectors(delay_s=5)
    h = Harness(connectors)
    await h.runtime.handle([start()])
    await asyncio.sleep(0.05)
    await h.runtime.handle([CancelRun(event_id=str(uuid.uuid4()), occurred_at=datetime.now(UTC), **IDS)])
    assert h.status() == "cancelled"
    await asyncio.sleep(0.05)
    assert h.runtime.in_flight == {}


async def test_recover_redispatches_in_flight_attempts_with_the_same_idempotency_key():
    connectors = ScriptedConnectors(delay_s=5)
    h = Harness(connectors)
    await h.runtime.handle([start()])
    await asyncio.sleep(0.05)
    keys_before = sorted(k for _, _, k, _ in connectors.calls)
    for task in h.runtime.in_flight.values():
        task.cancel()  # the worker dies
    await asyncio.sleep(0.01)
    fresh = ScriptedConnectors()
    restarted = Harness(fresh)
    restarted.states.update(h.states)  # the changelogged table survives
    assert await restarted.runtime.recover() == 2
    await restarted.settle(lambda: restarted.status() == "succeeded")
    assert sorted(k for s, _, k, _ in fresh.calls if s in ("a", "b")) == keys_before


async def test_parallelism_is_capped_per_worker():
    connectors = ScriptedConnectors(delay_s=0.05)
    h = Harness(connectors, max_parallel=1)
    await h.runtime.handle([start()])
    await h.settle(lambda: h.status() == "succeeded")
    assert connectors.max_running == 1


def test_state_codec_round_trips():
    from domain.execution import evolve, initial_state
    from schemas.runs import RunStarted

    command = start()
    state = evolve(
        initial_state(command),
        RunStarted(event_id=str(uuid.uuid4()), occurred_at=datetime.now(UTC), **IDS,
                   payload={"definition": definition(), "inputs": {"subject": "s"}}),
    )  # fmt: skip
    assert decode_state(encode_state(state)) == state


async def test_a_service_limit_caps_its_calls_and_leaves_other_services_alone():
    from streams.runtime import ServiceLimits

    limits = ServiceLimits()
    await limits.set("acme", "slack", 2)
    running = {"slack": 0, "asana": 0, "other's slack": 0}
    peak = dict(running)

    async def call(tenant, service):
        name = service if tenant == "acme" else f"{tenant}'s {service}"
        async with limits.slot(tenant, service):
            running[name] += 1
            peak[name] = max(peak[name], running[name])
            await asyncio.sleep(0.01)
            running[name] -= 1

    await asyncio.gather(
        *(call(t, s) for t, s in [("acme", "slack")] * 6 + [("acme", "asana"), ("other", "slack")] * 6)
    )
    assert peak == {"slack": 2, "asana": 6, "other's slack": 6}
    await limits.set("acme", "slack", None)
    await asyncio.gather(*(call("acme", "slack") for _ in range(5)))
    assert peak["slack"] == 5


async def test_lifting_a_limit_releases_the_calls_waiting_for_it():
    from streams.runtime import ServiceLimits

    limits = ServiceLimits()
    await limits.set("acme", "slack", 1)
    gate = asyncio.Event()

    async def hold():
        async with limits.slot("acme", "slack"):
            await gate.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiting = asyncio.create_task(hold())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    await limits.set("acme", "slack", None)
    gate.set()
    await asyncio.wait_for(asyncio.gather(holder, waiting), 1)


async def test_params_that_cannot_be_rendered_fail_their_step_at_once(monkeypatch):
    def broken(state, step_id):
        raise ValueError("cannot evaluate 'trigger.when'")

    monkeypatch.setattr("streams.runtime.render_params", broken)
    connectors = ScriptedConnectors()
    h = Harness(connectors)
    await h.runtime.handle([start()])
    await h.settle(lambda: h.status() == "failed")
    failed = next(e for e in h.log if e.type == "StepFailed")
    assert failed.payload.error.type == "TemplateError" and "params of step" in failed.payload.error.message
    assert connectors.calls == [] and [e.type for e in h.log].count("StepRetryScheduled") == 0


def lookup_definition():
    return WorkflowDefinition.model_validate({
        "name": "lookup",
        "trigger": {"service": "webhook", "event": "call"},
        "steps": [
            {"id": "find", "service": "crm", "action": "lookup", "params": {"email": "{{ trigger.email }}"},
             "cache": True, "cache_ttl_s": 60, "retry": {"maximum_attempts": 1}},
            {"id": "note", "service": "slack", "action": "post_message",
             "params": {"text": "{{ steps.find.output.id }}"}},
        ],
    })  # fmt: skip


async def test_a_cached_step_reuses_the_output_of_an_identical_call_and_every_result_carries_its_digest():
    not_found = PermanentError("nope", status_code=404)
    connectors = ScriptedConnectors({"find": [not_found, {"id": "ada-1"}, {"id": "bob-1"}]})
    h = Harness(connectors)
    runs = [("run-0", "ada@example.com"), ("run-1", "ada@example.com"), ("run-2", "ada@example.com"),
            ("run-3", "bob@example.com")]  # fmt: skip
    for run_id, email in runs:
        await h.runtime.handle([start(run_id, lookup_definition(), {"email": email})])
        await h.settle(lambda run_id=run_id: h.status(run_id) in ("succeeded", "failed"))
    assert [h.status(run_id) for run_id, _ in runs] == ["failed", "succeeded", "succeeded", "succeeded"]
    # The failure was not cached; run-2 reused run-1's output; bob's lookup is another call.
    assert [key.split(":")[1] for step, _, key, _ in connectors.calls if step == "find"] == ["run-0", "run-1", "run-3"]
    failed, *found = h.results("find")
    assert [(e.run_id, e.payload.output, e.payload.cached) for e in found] == [
        ("run-1", {"id": "ada-1"}, False), ("run-2", {"id": "ada-1"}, True), ("run-3", {"id": "bob-1"}, False),
    ]  # fmt: skip
    digests = [e.payload.params_digest for e in [failed, *found]]
    assert digests[0] == digests[1] == digests[2] != digests[3] and all(len(d) == 16 for d in digests)
    # Dependents read a reused output like any other; a step without cache is never served from it.
    assert {e.run_id: e.payload.cached for e in h.results("note")} == dict.fromkeys(("run-1", "run-2", "run-3"), False)
    assert [p for s, _, _, p in connectors.calls if s == "note"][1] == {"text": "ada-1"}


async def test_a_step_goes_on_with_its_fallback_and_its_state_keeps_it():
    defn = WorkflowDefinition.model_validate({
        "name": "fallback", "trigger": {"service": "webhook", "event": "call"},
        "steps": [{"id": "send", "service": "sendgrid", "action": "send_email", "params": {"to": "{{ trigger.to }}"},
                   "retry": {"maximum_attempts": 1},
                   "fallback": {"service": "mailgun", "params": {"recipient": "{{ trigger.to }}"}}}],
    })  # fmt: skip
    connectors = ScriptedConnectors({"send": [RetryableError("down", status_code=503), {"id": "m-1"}]})
    h = Harness(connectors)
    await h.runtime.handle([start("run-1", defn, {"to": "ada@example.com"})])
    await h.settle(lambda: h.status() == "succeeded")
    assert [(a, p) for _, a, _, p in connectors.calls] == [(1, {"to": "ada@example.com"}),
                                                          (2, {"recipient": "ada@example.com"})]  # fmt: skip
    failed, succeeded = h.results("send")
    assert (failed.payload.service, failed.payload.fallback_for) == ("sendgrid", None)
    assert (succeeded.payload.service, succeeded.payload.fallback_for, succeeded.payload.output) == (
        "mailgun", "sendgrid", {"id": "m-1"},
    )  # fmt: skip
    assert failed.payload.params_digest != succeeded.payload.params_digest
    state = decode_state(h.states["run-1"])
    assert state.steps["send"].fallback_since == 2 and decode_state(encode_state(state)) == state
