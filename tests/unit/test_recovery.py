import uuid
from datetime import UTC, datetime

import pytest

from domain.recovery import MAX_RETRIES, PROBE_S, Recovery
from schemas.common import StepError
from schemas.monitoring import AlertFired, AlertPayload, AlertResolved
from schemas.runs import RunFailed, RunFailedPayload, RunStarted, RunSucceeded, StepFailed, StepFailedPayload
from schemas.workflows import PauseWorkflow, ResumeWorkflow, RetryRun, SetServiceConcurrency, SetServiceRoute

T0 = 1_800_000_000.0


def ids(run, workflow):
    return {"occurred_at": datetime.fromtimestamp(T0, UTC), "tenant_id": "t1", "workflow_id": workflow,
            "run_id": run}  # fmt: skip


def failure(run, workflow="w1", service="zoho-crm", code=503, message="Service Unavailable", n=0):
    error = StepError(type="HTTPError", message=message, status_code=code)
    payload = StepFailedPayload(service=service, action="upsert", duration_ms=5, error=error)
    step_id = str(uuid.uuid5(uuid.NAMESPACE_OID, f"s{run}{n}"))
    step = StepFailed(event_id=step_id, step_id="call", **ids(run, workflow), payload=payload)
    ended = RunFailed(event_id=str(uuid.uuid5(uuid.NAMESPACE_OID, f"r{run}{n}")), **ids(run, workflow),
                      payload=RunFailedPayload(failed_step_id="call", error=error))  # fmt: skip
    return [step, ended]


def success(run, workflow="w1"):
    return [RunSucceeded(event_id=str(uuid.uuid4()), **ids(run, workflow))]


def feed(engine, records, at):
    out = []
    for record in records:
        out += engine.apply(record, T0 + at)
    return out


def kinds(out):
    return [(e.type, e.workflow_id if e.type in ("PauseWorkflow", "ResumeWorkflow") else e.run_id) for e in out
            if isinstance(e, PauseWorkflow | ResumeWorkflow | RetryRun)]  # fmt: skip


def test_an_outage_is_one_session_paused_probed_resumed_and_verified():
    engine = Recovery("t1")
    out = feed(engine, failure("r1", "w1") + failure("r2", "w2") + failure("r3", "w1"), at=0)
    assert [e.type for e in out].count("SessionOpened") == 1
    assert kinds(out) == [("PauseWorkflow", "w1"), ("PauseWorkflow", "w2")]
    assert engine.tick(T0 + PROBE_S - 0.1) == []
    probe = engine.tick(T0 + PROBE_S)
    assert kinds(probe) == [("RetryRun", "r1")]
    # still down: the probe fails, the next one waits twice as long
    assert kinds(feed(engine, failure("r1", "w1", n=1), at=3)) == []
    assert engine.tick(T0 + 3 + 2 * PROBE_S - 0.1) == []
    assert kinds(engine.tick(T0 + 3 + 2 * PROBE_S)) == [("RetryRun", "r1")]
    # back: the workflows resume and the other failed runs are retried
    back = feed(engine, success("r1", "w1"), at=8)
    assert kinds(back) == [("ResumeWorkflow", "w1"), ("ResumeWorkflow", "w2"), ("RetryRun", "r2"), ("RetryRun", "r3")]
    done = feed(engine, success("r2", "w2") + success("r3", "w1"), at=9)
    assert [e.type for e in done] == ["ResolutionVerified", "SessionClosed"]
    assert done[0].payload.detail["recovered"] == ["r1", "r2", "r3"]
    assert done[0].payload.detail["mttr_s"] == 9.0
    assert engine.sessions == {} and engine.closed == 1


def routes(out):
    return [(e.payload.service, e.payload.to_fallback) for e in out if isinstance(e, SetServiceRoute)]


def test_an_outage_sends_steps_with_a_fallback_to_it_until_the_probe_succeeds():
    engine = Recovery("t1")
    out = feed(engine, failure("r1", "w1") + failure("r2", "w2"), at=0)
    assert routes(out) == [("zoho-crm", True)]  # once per session, not per run
    applied = [e.payload for e in out if e.type == "ResolutionApplied" and e.payload.action == "switch_to_fallback"]
    assert applied[0].detail == {"service": "zoho-crm", "to_fallback": True}
    probe = engine.tick(T0 + PROBE_S)
    assert routes(probe) == []
    back = feed(engine, success(kinds(probe)[0][1]), at=5)
    assert routes(back) == [("zoho-crm", False)]
    limited = Recovery("t1")  # a service asking to slow down gets fewer calls, not a fallback
    assert routes(feed(limited, failure("r9", code=429, message="Too Many Requests"), at=0)) == []
    assert routes(feed(Recovery("t1", enabled=False), failure("r8"), at=0)) == []


def test_a_400_asks_a_person_and_retries_nothing():
    engine = Recovery("t1")
    bad = {"code": 400, "message": "invalid email"}
    out = feed(engine, failure("r1", **bad) + failure("r2", **bad), at=0)
    assert kinds(out) == [] and kinds(engine.tick(T0 + 100)) == []
    proposed = [e.payload.action for e in out if e.type == "ResolutionProposed"]
    assert proposed == ["ask_person"]
    assert [e.type for e in out].count("SessionOpened") == 1  # the second failure joined


def test_with_recovery_off_sessions_are_opened_and_proposed_but_nothing_is_applied():
    engine = Recovery("t1", enabled=False)
    out = feed(engine, failure("r1"), at=0) + engine.tick(T0 + 100)
    assert kinds(out) == [] and "ResolutionProposed" in [e.type for e in out]


def test_a_run_that_keeps_failing_is_given_up_after_the_maximum_retries():
    engine = Recovery("t1")
    feed(engine, failure("r1"), at=0)
    at = 0.0
    for n in range(1, MAX_RETRIES + 1):
        at += 100
        assert kinds(engine.tick(T0 + at)) == [("RetryRun", "r1")]
        out = feed(engine, failure("r1", n=n), at=at + 1)
    # given up: recorded for a person, the workflow runs again (new failures open a new session)
    assert [e.type for e in out] == [
        "ResolutionFailed", "ResumeWorkflow", "ResolutionApplied", "SetServiceRoute", "ResolutionApplied",
        "SessionClosed",
    ]  # fmt: skip
    assert out[3].payload.to_fallback is False  # steps with a fallback go back to the service


def test_different_services_are_different_sessions_and_a_retry_after_delays_the_probe():
    engine = Recovery("t1")
    out = feed(engine, failure("r1", service="slack", code=429, message="Too Many Requests; Retry-After: 30"), at=0)
    out += feed(engine, failure("r2", service="asana"), at=0)
    assert [e.type for e in out].count("SessionOpened") == 2
    assert [kinds(engine.tick(T0 + at)) for at in (PROBE_S, 31)] == [[("RetryRun", "r2")], [("RetryRun", "r1")]]


def test_the_same_events_give_the_same_ids():
    def run():
        engine = Recovery("t1")
        out = feed(engine, failure("r1") + failure("r2", "w2"), at=0) + engine.tick(T0 + PROBE_S)
        return [e.event_id for e in out + feed(engine, success("r1"), at=5)]

    assert run() == run()


@pytest.mark.parametrize("code", [503, 504, 500])
def test_the_session_ranks_the_failing_service_first(code):
    out = feed(Recovery("t1"), failure("r1", code=code) + failure("r2", "w2", code=code), at=0)
    ranked = [e for e in out if e.type == "RootCauseRanked"][-1]  # ranked again at the second failed run
    top = ranked.payload.candidates[0]
    assert top.evidence["subject"] == {"service": "zoho-crm"}


def alert(fired=True, **labels):
    kind = AlertFired if fired else AlertResolved
    payload = AlertPayload(alert_id="a1", rule="error_rate_increase", severity="critical", labels=labels)
    return kind(event_id=str(uuid.uuid4()), occurred_at=datetime.fromtimestamp(T0, UTC), tenant_id="t1",
                workflow_id=labels.get("workflow", "w1"), payload=payload)  # fmt: skip


def test_a_firing_alert_joins_the_session_of_its_service():
    engine = Recovery("t1")
    feed(engine, failure("r1", "w1"), at=0)
    out = engine.apply(alert(service="zoho-crm", scope="service", key="zoho-crm"), T0 + 1)
    assert [e.type for e in out] == ["EvidenceAdded"] and out[0].payload.kind == "alert"
    assert len(engine.sessions) == 1


def test_an_alert_alone_opens_a_session_that_closes_when_it_resolves():
    engine = Recovery("t1")
    opened = engine.apply(alert(workflow="w9", scope="workflow", key="w9"), T0)
    assert [e.type for e in opened][:1] == ["SessionOpened"] and opened[0].payload.trigger == "alert"
    closed = engine.apply(alert(False, workflow="w9", scope="workflow", key="w9"), T0 + 60)
    assert [e.type for e in closed] == ["SessionClosed"] and engine.sessions == {}


def test_a_run_without_progress_is_stuck_once():
    engine = Recovery("t1", stuck_after_s=100)
    engine.apply(RunStarted(event_id=str(uuid.uuid4()), **ids("r1", "w1")), T0)
    assert engine.tick(T0 + 99) == []
    stuck = engine.tick(T0 + 100)
    assert [e.type for e in stuck] == ["SessionOpened", "ResolutionProposed", "EvidenceAdded"]
    assert stuck[0].payload.trigger == "stuck_run" and engine.tick(T0 + 500) == []


def test_persisted_state_leaves_out_what_new_events_rebuild():
    import pickle

    engine = Recovery("t1")
    feed(engine, failure("r1", "w1"), at=0)
    restored = pickle.loads(pickle.dumps(engine))
    assert len(engine.recent) == 1 and len(restored.recent) == 0
    assert restored.sessions.keys() == engine.sessions.keys() and restored.recent.maxlen == engine.recent.maxlen


def test_a_rate_limited_service_gets_fewer_calls_at_once_until_it_answers_again():
    engine = Recovery("t1")
    out = feed(engine, failure("r1", service="slack", code=429, message="Too Many Requests"), at=0)
    limits = [(e.payload.service, e.payload.limit) for e in out if isinstance(e, SetServiceConcurrency)]
    assert limits == [("slack", 2)]
    assert kinds(engine.tick(T0 + 5)) == [("RetryRun", "r1")]
    done = feed(engine, success("r1"), at=6)
    assert [(e.payload.service, e.payload.limit) for e in done if isinstance(e, SetServiceConcurrency)] == [
        ("slack", None)
    ]
    assert "SessionClosed" in [e.type for e in done]


def test_an_alert_about_a_workflow_of_the_outage_joins_its_session():
    engine = Recovery("t1")
    feed(engine, failure("r1", "w1") + failure("r2", "w2"), at=0)
    out = engine.apply(alert(workflow="w2", scope="workflow", key="w2"), T0 + 1)
    assert [e.type for e in out] == ["EvidenceAdded"] and len(engine.sessions) == 1


def test_frequent_events_take_the_light_path_and_still_count():
    engine = Recovery("t1", stuck_after_s=100)
    assert not engine.needs("StepSucceeded", "r1") and not engine.needs("RunSucceeded", "r1")
    assert engine.needs("StepFailed", "r1") and engine.needs("AlertFired", "")
    engine.progress("StepSucceeded", "r1", "w1", T0, "call", "slack")
    assert [(a.service, a.ok) for a in engine.recent] == [("slack", True)] and "r1" in engine.in_flight
    engine.progress("RunSucceeded", "r1", "w1", T0 + 1)
    assert engine.in_flight == {} and not engine.dirty
    feed(engine, failure("r2"), at=2)
    assert engine.needs("RunSucceeded", "r2")  # a session waits for it
