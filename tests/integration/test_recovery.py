"""Automatic recovery on a stack of its own (broker, API, sandbox, worker with WORKFLOW_AUTO_RECOVERY_ENABLED=true).

Its own stack, because recovery retries and pauses the workflows of every
tenant: the shared worker of the other tests runs with it off.
"""

import asyncio

import httpx
import pytest

from flowledger.broker import EmbeddedBroker, ensure_topics
from tests.integration.conftest import (
    SandboxProcess,
    ServeProcess,
    SmtpSink,
    WorkerProcess,
    auth,
    define_workflow,
    eventually,
    start_run,
)

pytestmark = pytest.mark.integration
KEY = auth("key-trouble")
FAST_RETRY = {"initial_interval_s": 0.1, "maximum_interval_s": 0.2, "maximum_attempts": 2}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with EmbeddedBroker() as broker:
        asyncio.run(ensure_topics(broker.bootstrap))
        sandbox = SandboxProcess(tmp_path_factory.mktemp("rec-sandbox"), latency="fixed:20")
        smtp = SmtpSink()
        api = ServeProcess(broker.bootstrap, tmp_path_factory.mktemp("rec-api"), group="rec-projector")
        worker = WorkerProcess(broker.bootstrap, tmp_path_factory.mktemp("rec-worker"), sandbox, smtp.port)
        worker.env.update(WORKFLOW_AUTO_RECOVERY_ENABLED="true", FLOWLEDGER_RECOVERY_PROBE_S="1")
        try:
            api.start()
            worker.start()
            yield api, sandbox
        finally:
            worker.stop()
            api.stop()
            smtp.stop()
            sandbox.stop()


async def define(http, service):
    return await define_workflow(http, KEY, "rec", [
        {"id": "call", "service": service, "action": "upsert", "retry": FAST_RETRY},
        {"id": "tell", "service": "slack", "action": "send_message", "needs": ["call"]},
    ])  # fmt: skip


async def start(http, workflow_id):
    return await start_run(http, KEY, workflow_id)


async def statuses(http, run_ids):
    return [(await http.get(f"/api/runs/{r}", headers=KEY)).json().get("status") for r in run_ids]


async def test_an_outage_pauses_its_workflows_and_every_run_completes_after_it(stack):
    api, sandbox = stack
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        warm = await define(http, "asana")
        first = await start(http, warm)
        await eventually(lambda: _done(http, [first]), timeout_s=150)  # the worker has joined its group

        workflows = [await define(http, "zoho-crm"), await define(http, "zoho-crm")]
        sandbox.faults([{"service": "zoho-crm", "from_s": 0, "to_s": 8, "fault": "503", "rate": 1.0}])
        failed = [await start(http, w) for w in workflows for _ in range(2)]

        async def all_failed():
            return await statuses(http, failed) == ["failed"] * 4

        await eventually(all_failed, timeout_s=30)
        # The workflows are paused: runs started now wait for the service to come back.
        await asyncio.sleep(1)
        waiting = [await start(http, w) for w in workflows]
        every = failed + waiting
        await eventually(lambda: _done(http, every), timeout_s=90)

        async def session_closed():
            r = await http.get("/api/workflows/troubleshooting/sessions", headers=KEY)
            # the outage's session (an error-rate alert firing after it closed would open one of its own)
            mine = [s for s in r.json()["sessions"] if s["workflow_id"] in workflows and s["opened_by"] != "alert"]
            return mine if mine and all(s["status"] == "closed" for s in mine) else None

        [session] = await eventually(session_closed, timeout_s=30)  # one session for the outage, not one per run
        assert session["top_cause"]["evidence"]["subject"] == {"service": "zoho-crm"}
        assert session["top_cause"]["cause"] == "service_outage"
        r = await http.get(f"/api/workflows/troubleshooting/sessions/{session['session_id']}", headers=KEY)
        applied = [(e["payload"]["action"], e["payload"]["detail"].get("workflow_id"))
                   for e in r.json()["events"] if e["type"] == "ResolutionApplied"]  # fmt: skip
        assert {("pause_workflows", w) for w in workflows} <= set(applied)
        assert {("resume_workflows", w) for w in workflows} <= set(applied)
        types = [e["type"] for e in r.json()["events"]]
        assert types[0] == "SessionOpened" and types[-2:] == ["ResolutionVerified", "SessionClosed"]
        verified = r.json()["events"][-2]["payload"]["detail"]
        assert sorted(verified["recovered"]) == sorted(failed) and verified["given_up"] == []


async def _done(http, run_ids):
    return await statuses(http, run_ids) == ["succeeded"] * len(run_ids)


async def test_a_400_is_left_for_a_person(stack):
    api, sandbox = stack
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        workflow = await define(http, "freshdesk")
        sandbox.faults([{"service": "freshdesk", "from_s": 0, "to_s": 60, "fault": "400", "rate": 1.0}])
        try:
            run_id = await start(http, workflow)

            async def session():
                r = await http.get(f"/api/workflows/troubleshooting/sessions?workflow_id={workflow}", headers=KEY)
                return r.json()["sessions"] or None

            [opened] = await eventually(session, timeout_s=30)
            await asyncio.sleep(3)  # time in which a retry would have happened
            run = (await http.get(f"/api/runs/{run_id}", headers=KEY)).json()
        finally:
            sandbox.faults([])
        assert run["status"] == "failed" and {s["step_id"]: s["attempts"] for s in run["steps"]}["call"] == 1
        assert opened["status"] == "open" and opened["applied"] == 0
        r = await http.get(f"/api/workflows/troubleshooting/sessions/{opened['session_id']}", headers=KEY)
        proposed = [e["payload"]["action"] for e in r.json()["events"] if e["type"] == "ResolutionProposed"]
        assert proposed == ["ask_person"]


async def test_while_a_service_is_down_steps_with_a_fallback_go_straight_to_it(stack):
    api, sandbox = stack
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        plain = await define(http, "pipedrive")
        backed = await define_workflow(http, KEY, "rec", [
            {"id": "call", "service": "pipedrive", "action": "upsert", "retry": FAST_RETRY,
             "fallback": {"service": "hubspot"}}])  # fmt: skip
        sandbox.faults([{"service": "pipedrive", "from_s": 0, "to_s": 6, "fault": "503", "rate": 1.0}])
        failed = await start(http, plain)

        async def switched():
            r = await http.get(f"/api/workflows/troubleshooting/sessions?workflow_id={plain}", headers=KEY)
            sessions = r.json()["sessions"]
            if not sessions:
                return None
            r = await http.get(f"/api/workflows/troubleshooting/sessions/{sessions[0]['session_id']}", headers=KEY)
            actions = [e["payload"]["action"] for e in r.json()["events"] if e["type"] == "ResolutionApplied"]
            return actions if "switch_to_fallback" in actions else None

        await eventually(switched, timeout_s=30)
        await asyncio.sleep(1)  # the command reaches the executor
        detoured = await start(http, backed)
        await eventually(lambda: _done(http, [detoured, failed]), timeout_s=60)
        step = (await http.get(f"/api/runs/{detoured}", headers=KEY)).json()["steps"][0]
        # no call to the service that is down: the first attempt went to the fallback
        assert (step["service"], step["attempts"], step["fallback_for"]) == ("hubspot", 1, "pipedrive")

        async def back():
            actions = await switched()
            return actions if actions and "switch_back" in actions else None

        await eventually(back, timeout_s=30)
        await asyncio.sleep(1)
        again = await start(http, backed)
        await eventually(lambda: _done(http, [again]), timeout_s=30)
        step = (await http.get(f"/api/runs/{again}", headers=KEY)).json()["steps"][0]
        assert (step["service"], step["fallback_for"]) == ("pipedrive", None)
