"""The executor's decisions, scenario by scenario, without Kafka."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from domain.execution import RunState, Target, Tick, decide, evolve, initial_state, render_params
from schemas.runs import StepFailed, StepSucceeded
from schemas.workflows import CancelRun, RetryRun, RetryStep, StartRun, WorkflowDefinition

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
COMMANDS = (StartRun, CancelRun, RetryRun, RetryStep)
IDS = {"tenant_id": "acme", "workflow_id": "wf", "run_id": "run-1"}


def definition(**trigger_extra):
    return WorkflowDefinition.model_validate({
        "name": "email triage",
        "trigger": {"service": "gmail", "event": "new_email", **trigger_extra},
        "steps": [
            {"id": "task", "service": "asana", "action": "create_task", "params": {"name": "{{ trigger.subject }}"},
             "retry": {"initial_interval_s": 1, "maximum_interval_s": 30, "maximum_attempts": 3, "jitter": 0}},
            {"id": "sheet", "service": "google-sheets", "action": "append_row"},
            {"id": "notify", "service": "slack", "action": "post_message",
             "params": {"text": "{{ steps.task.output.url }}"}, "needs": ["sheet"]},
            {"id": "page", "service": "pagerduty", "action": "trigger", "when": 'trigger.importance == "urgent"'},
            {"id": "after-page", "service": "sms", "action": "send", "needs": ["page"]},
        ],
    })  # fmt: skip


def start(defn=None, payload=None):
    return StartRun(
        event_id=str(uuid.uuid4()), occurred_at=T0, **IDS,
        payload={"definition_version": 2, "trigger_payload": payload or {"subject": "Hi", "importance": "high"},
                 "definition": defn or definition()},
    )  # fmt: skip


def feed(state: RunState, record, now=T0):
    if not isinstance(record, (*COMMANDS, Tick)):
        state = evolve(state, record)
    out = decide(state, record, now=now)
    for event in out:
        state = evolve(state, event)
    return state, out


def succeeded(step_id, attempt=1, output=None, service="asana"):
    return StepSucceeded(
        event_id=str(uuid.uuid4()), occurred_at=T0, **IDS, step_id=step_id,
        payload={"service": service, "action": "a", "attempt": attempt, "duration_ms": 5, "output": output or {}},
    )  # fmt: skip


def failed(step_id, status, attempt=1, retry_after=None):
    error = {"type": "HTTPError", "message": f"HTTP {status}", "status_code": status, "retry_after_s": retry_after}
    return StepFailed(
        event_id=str(uuid.uuid4()), occurred_at=T0, **IDS, step_id=step_id,
        payload={"service": "asana", "action": "a", "attempt": attempt, "duration_ms": 5, "error": error},
    )  # fmt: skip


def kinds(events):
    return [(e.type, e.step_id) for e in events]


def started_run():
    return feed(initial_state(start()), start())


def test_start_runs_every_ready_step_in_parallel_and_skips_false_conditions():
    state, out = started_run()
    assert kinds(out) == [
        ("RunStarted", None), ("StepStarted", "task"), ("StepStarted", "sheet"),
        ("StepSkipped", "page"), ("StepSkipped", "after-page"),
    ]  # fmt: skip
    assert out[0].payload.definition_version == 2
    assert "condition is false" in out[3].payload.reason and "depends on skipped" in out[4].payload.reason
    assert state.status == "running" and sorted(state.in_flight()) == ["sheet", "task"]
    assert render_params(state, "task") == {"name": "Hi"}


def test_dependents_start_when_all_they_need_is_done_and_the_run_succeeds():
    state, _ = started_run()
    state, out = feed(state, succeeded("task", output={"url": "https://asana/1"}))
    assert kinds(out) == []  # notify also needs sheet
    state, out = feed(state, succeeded("sheet"))
    assert kinds(out) == [("StepStarted", "notify")]
    assert render_params(state, "notify") == {"text": "https://asana/1"}
    state, out = feed(state, succeeded("notify"))
    assert kinds(out) == [("RunSucceeded", None)] and state.status == "succeeded"


def test_trigger_filter_false_cancels_the_run():
    command = start(definition(filter='trigger.importance == "high"'), payload={"importance": "low"})
    state, out = feed(initial_state(command), command)
    assert kinds(out) == [("RunStarted", None), ("RunCancelled", None)]
    assert "trigger filter" in out[1].payload.reason and state.status == "cancelled"


def test_a_429_is_retried_no_earlier_than_retry_after():
    state, _ = started_run()
    state, out = feed(state, failed("task", 429, retry_after=5))
    assert kinds(out) == [("StepRetryScheduled", "task")]
    assert out[0].payload.attempt == 2 and out[0].payload.due_at == T0 + timedelta(seconds=5)
    state, out = feed(state, Tick(T0 + timedelta(seconds=4)), now=T0 + timedelta(seconds=4))
    assert out == []
    state, out = feed(state, Tick(T0 + timedelta(seconds=5)), now=T0 + timedelta(seconds=5))
    assert kinds(out) == [("StepStarted", "task")] and out[0].payload.attempt == 2
    state, again = feed(state, Tick(T0 + timedelta(seconds=6)), now=T0 + timedelta(seconds=6))
    assert again == []  # started once


@pytest.mark.parametrize(("status", "attempt"), [(400, 1), (401, 1), (404, 1), (503, 3)])
def test_permanent_errors_and_exhausted_retries_fail_the_run(status, attempt):
    state, _ = started_run()
    state, out = feed(state, failed("task", status, attempt=attempt))
    assert kinds(out) == [("RunFailed", None)]
    assert out[0].payload.failed_step_id == "task" and state.status == "failed"
    # A step still in flight may finish, but nothing new starts.
    state, out = feed(state, succeeded("sheet"))
    assert out == []


def test_retry_run_reruns_only_the_failed_step_and_what_depends_on_it():
    state, _ = started_run()
    state, _ = feed(state, succeeded("sheet"))
    state, _ = feed(state, failed("task", 400))
    retry = RetryRun(event_id=str(uuid.uuid4()), occurred_at=T0, **IDS)
    state, out = feed(state, retry)
    assert kinds(out) == [("RunResumed", None), ("StepStarted", "task")]
    assert out[1].payload.attempt == 2
    state, out = feed(state, succeeded("task", attempt=2, output={"url": "u"}))
    assert kinds(out) == [("StepStarted", "notify")]  # sheet is not run again
    state, out = feed(state, succeeded("notify"))
    assert kinds(out) == [("RunSucceeded", None)]


def test_retry_step_on_a_failed_run_resumes_that_step():
    state, _ = started_run()
    state, _ = feed(state, failed("task", 400))
    command = RetryStep(event_id=str(uuid.uuid4()), occurred_at=T0, **IDS, step_id="task")
    state, out = feed(state, command)
    assert kinds(out) == [("RunResumed", None), ("StepStarted", "task")]


def test_cancel_stops_a_running_run():
    state, _ = started_run()
    cancel = CancelRun(event_id=str(uuid.uuid4()), occurred_at=T0, **IDS, payload={"reason": "user"})
    state, out = feed(state, cancel)
    assert kinds(out) == [("RunCancelled", None)] and state.status == "cancelled"
    state, out = feed(state, succeeded("task"))
    assert out == []
    assert feed(state, cancel)[1] == []


def test_redeliveries_change_nothing_and_decisions_are_reproducible():
    command = start()
    state, out = feed(initial_state(command), command)
    _, again = feed(initial_state(command), command)
    assert [e.event_id for e in out] == [e.event_id for e in again]
    assert feed(state, command)[1] == []  # a duplicate StartRun
    event = succeeded("task", output={"url": "x"})
    once, _ = feed(state, event)
    assert evolve(once, event) is once


def test_a_run_without_a_definition_fails_clearly():
    command = StartRun(event_id=str(uuid.uuid4()), occurred_at=T0, **IDS)
    state, out = feed(initial_state(command), command)
    assert kinds(out) == [("RunFailed", None)] and "no workflow definition" in out[0].payload.error.message


# ---------------------------------------------------------------------------------------------- fallback


def fallback_definition():
    return WorkflowDefinition.model_validate({
        "name": "mail with a second provider",
        "trigger": {"service": "webhook", "event": "call"},
        "steps": [
            {"id": "send", "service": "sendgrid", "action": "send_email", "params": {"to": "{{ trigger.to }}"},
             "retry": {"initial_interval_s": 1, "maximum_attempts": 2, "jitter": 0},
             "fallback": {"service": "mailgun", "params": {"recipient": "{{ trigger.to }}"}}},
            {"id": "audit", "service": "jira", "action": "create_issue"},
            {"id": "log", "service": "google-sheets", "action": "append_row",
             "params": {"message": "{{ steps.send.output.id }}"}},
        ],
    })  # fmt: skip


def result_of(state, step_id, outcome):
    """The result of the step's current attempt, on whatever it calls now: ``ok`` or an HTTP status."""
    target = state.target(step_id)
    payload = {**target.payload(state.steps[step_id].attempt), "duration_ms": 5}
    common = {"event_id": str(uuid.uuid4()), "occurred_at": T0, **IDS, "step_id": step_id}
    if outcome == "ok":
        return StepSucceeded(**common, payload={**payload, "output": {"id": f"{target.service}-1"}})
    error = {"type": "HTTPError", "message": f"HTTP {outcome}", "status_code": int(outcome)}
    return StepFailed(**common, payload={**payload, "error": error})


def brief(event):
    if event.type in ("StepStarted", "StepRetryScheduled"):
        p = event.payload
        verb = "start" if event.type == "StepStarted" else "retry"
        return f"{verb}:{p.service}#{p.attempt}" + (f"<-{p.fallback_for}" if p.fallback_for else "")
    return event.type


def drive(script):
    """Feed ``script`` (``ok``/status for ``send``, ``audit:<status>``, ``tick``, ``retry``); brief each answer.

    Returns the state, the answers, and the state rebuilt by folding only the events of the log.
    """
    command = start(fallback_definition(), payload={"to": "ada@example.com"})
    state, out = feed(initial_state(command), command)
    log, answers = list(out), []
    now = T0
    for item in script.split():
        if item == "tick":
            now += timedelta(hours=1)
            record = Tick(now)
        elif item == "retry":
            record = RetryRun(event_id=str(uuid.uuid4()), occurred_at=T0, **IDS)
        else:
            step_id, _, outcome = item.rpartition(":")
            record = result_of(state, step_id or "send", outcome)
            log.append(record)
        state, out = feed(state, record, now=now)
        log += out
        answers.append(" ".join(brief(e) for e in out))
    rebuilt = initial_state(command)
    for event in log:
        rebuilt = evolve(rebuilt, event)
    return state, answers, rebuilt


# id -> (what happens, what the executor answers to each, the run's status then); answers are split by " | "
FALLBACK_CASES = {
    "primary-503-exhausted-then-the-fallback-succeeds": (
        "503 tick 503 ok",
        "retry:sendgrid#2 | start:sendgrid#2 | start:mailgun#3<-sendgrid | start:google-sheets#1",
        "running",
    ),
    "a-permanent-error-falls-back-at-once": ("401 ok", "start:mailgun#2<-sendgrid | start:google-sheets#1", "running"),
    "not-found-falls-back": ("404", "start:mailgun#2<-sendgrid", "running"),
    "bad-request-does-not-fall-back": ("400", "RunFailed", "failed"),
    "unprocessable-does-not-fall-back": ("422", "RunFailed", "failed"),
    "the-fallback-retries-with-its-own-budget-then-fails-the-run": (
        "401 503 tick 503",
        "start:mailgun#2<-sendgrid | retry:mailgun#3<-sendgrid | start:mailgun#3<-sendgrid | RunFailed",
        "failed",
    ),
    "no-fallback-of-a-fallback": ("401 400", "start:mailgun#2<-sendgrid | RunFailed", "failed"),
    "retry-run-starts-over-on-the-own-service-then-falls-back-again": (
        "401 401 retry 401 ok",
        "start:mailgun#2<-sendgrid | RunFailed | RunResumed start:sendgrid#3 | start:mailgun#4<-sendgrid"
        " | start:google-sheets#1",
        "running",
    ),
    "retry-run-resumes-a-fallback-retry-on-the-fallback": (
        "401 503 audit:400 retry tick ok",
        "start:mailgun#2<-sendgrid | retry:mailgun#3<-sendgrid | RunFailed | RunResumed start:jira#2"
        " | start:mailgun#3<-sendgrid | start:google-sheets#1",
        "running",
    ),
}


@pytest.mark.parametrize(("script", "answers", "status"), list(FALLBACK_CASES.values()), ids=list(FALLBACK_CASES))
def test_fallback(script, answers, status):
    state, got, rebuilt = drive(script)
    assert " | ".join(got) == answers
    assert state.status == status
    assert rebuilt == state  # the log alone rebuilds the step on its fallback
    if answers.endswith("start:google-sheets#1"):  # dependents read the fallback's output as the step's
        assert state.steps["send"].output == {"id": "mailgun-1"}
        assert render_params(state, "log") == {"message": "mailgun-1"}


def test_the_fallback_gets_its_own_params_action_and_credential():
    state, _, _ = drive("503 tick 503")
    assert state.target("send") == Target("mailgun", "send_email", {"recipient": "{{ trigger.to }}"}, None, "sendgrid")
    assert render_params(state, "send") == {"recipient": "ada@example.com"}
    assert state.steps["send"].fallback_since == 3


def test_a_run_failed_on_its_fallback_says_so():
    command = start(fallback_definition(), payload={"to": "a@example.com"})
    state, _ = feed(initial_state(command), command)
    state, _ = feed(state, result_of(state, "send", "401"))
    state, out = feed(state, result_of(state, "send", "401"))
    message = out[0].payload.error.message
    assert out[0].payload.failed_step_id == "send"
    assert "on its fallback 'mailgun', after 'sendgrid' failed, after 1 attempt(s)" in message


def test_an_open_circuit_sends_steps_with_a_fallback_straight_to_it():
    state = initial_state(start(fallback_definition(), {"to": "ada@example.com"}))
    events = decide(state, start(fallback_definition(), {"to": "ada@example.com"}), now=T0,
                    detours=frozenset({"sendgrid", "jira"}))  # fmt: skip
    # jira has no fallback: it is called as usual; sendgrid's step starts on mailgun with attempt 1
    assert [brief(e) for e in events] == ["RunStarted", "start:mailgun#1<-sendgrid", "start:jira#1"]
    for event in events:
        state = evolve(state, event)
    assert state.steps["send"].fallback_since == 1
    assert render_params(state, "send") == {"recipient": "ada@example.com"}
    state, out = feed(state, result_of(state, "send", "503"))  # the fallback fails too: retried on the fallback
    assert [brief(e) for e in out] == ["retry:mailgun#2<-sendgrid"]
