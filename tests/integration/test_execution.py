"""The executor on the embedded stack: Faust worker, sandbox services, a real SMTP server."""

import asyncio
import uuid
from datetime import datetime

import pytest

from tests.integration.conftest import auth, eventually

pytestmark = pytest.mark.integration
KEY = auth("key-a")


def step(step_id, service, action="act", **extra):
    return {"id": step_id, "service": service, "action": action, **extra}


async def define(http, steps, **extra):
    workflow_id = f"wf-exec-{uuid.uuid4().hex[:8]}"
    body = {"id": workflow_id, "name": "test", "trigger": {"service": "webhook", "event": "call"}, "steps": steps,
            **extra}  # fmt: skip
    r = await http.post("/api/workflows", json=body, headers=KEY)
    assert r.status_code == 201, r.text

    async def visible():
        return (await http.get(f"/api/workflows/{workflow_id}", headers=KEY)).status_code == 200

    await eventually(visible)
    return workflow_id


async def start(http, workflow_id, trigger=None):
    r = await http.post(f"/api/workflows/{workflow_id}/runs", json={"trigger": trigger or {}}, headers=KEY)
    assert r.status_code == 202, r.text
    return r.json()["run_id"]


async def wait_run(http, run_id, status, timeout_s=45):
    async def check():
        r = await http.get(f"/api/runs/{run_id}", headers=KEY)
        return r.json() if r.status_code == 200 and r.json()["status"] == status else None

    return await eventually(check, timeout_s=timeout_s)


def ts(value):
    return datetime.fromisoformat(value)


@pytest.fixture(scope="module")
async def executor(worker, api):
    """The worker has joined its group and executes runs (the first start takes a while)."""
    import httpx

    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        workflow_id = await define(http, [step("warm", "asana")])
        run_id = await start(http, workflow_id)
        await wait_run(http, run_id, "succeeded", timeout_s=150)
    return worker


async def test_parallel_branches_overlap_and_outputs_flow(http, executor, sandbox):
    workflow_id = await define(http, [
        step("task", "asana", "create_task", params={"name": "{{ trigger.subject }}"}),
        step("sheet", "google-sheets", "append_row"),
        step("notify", "slack", "post_message", params={"text": "{{ steps.task.output.id }}"}, needs=["sheet"]),
    ])  # fmt: skip
    run_id = await start(http, workflow_id, {"subject": "Disk full"})
    run = await wait_run(http, run_id, "succeeded")
    steps = {s["step_id"]: s for s in run["steps"]}
    assert run["definition_version"] == 1
    task, sheet, notify = steps["task"], steps["sheet"], steps["notify"]
    # Both branches ran at once (the sandbox answers after 150 ms).
    assert ts(task["first_started_at"]) < ts(sheet["last_event_at"])
    assert ts(sheet["first_started_at"]) < ts(task["last_event_at"])
    assert ts(notify["first_started_at"]) >= max(ts(task["last_event_at"]), ts(sheet["last_event_at"]))
    assert task["output"]["received"] == {"name": "Disk full"}
    assert notify["output"]["received"] == {"text": task["output"]["id"]}


async def test_a_429_is_retried_after_retry_after_and_then_succeeds(http, executor, sandbox):
    workflow_id = await define(http, [step("create", "trello", "create_card")])
    sandbox.faults([{"service": "trello", "from_s": 0, "to_s": 0.8, "fault": "429", "rate": 1.0}])
    run_id = await start(http, workflow_id)
    run = await wait_run(http, run_id, "succeeded")
    [create] = run["steps"]
    assert create["attempts"] == 2
    assert create["last_error"]["status_code"] == 429 and create["last_error"]["retry_after_s"] == 1
    [retry] = create["retry_schedule"]
    assert retry["attempt"] == 2
    # The retry was not started before the service's Retry-After had passed.
    failed_at = ts(create["first_started_at"])
    assert (ts(retry["due_at"]) - failed_at).total_seconds() >= 1.0


async def test_a_400_is_not_retried_and_fails_the_run(http, executor, sandbox):
    workflow_id = await define(http, [step("open", "jira", "create_issue"), step("after", "slack", needs=["open"])])
    sandbox.faults([{"service": "jira", "from_s": 0, "to_s": 30, "fault": "400", "rate": 1.0}])
    run_id = await start(http, workflow_id)
    run = await wait_run(http, run_id, "failed")
    steps = {s["step_id"]: s for s in run["steps"]}
    assert steps["open"]["attempts"] == 1 and steps["open"]["last_error"]["status_code"] == 400
    assert "after" not in steps
    assert "jira" in run["error_message"] or "open" in run["error_message"]
    sandbox.faults([])


async def test_retry_run_reexecutes_only_the_failed_step_and_its_dependents(http, executor, sandbox):
    workflow_id = await define(http, [
        step("first", "asana", "create_task"),
        step("broken", "zendesk", "create_ticket", needs=["first"]),
        step("after", "slack", "post_message", needs=["broken"]),
        step("side", "google-sheets", "append_row"),
    ])  # fmt: skip
    sandbox.faults([{"service": "zendesk", "from_s": 0, "to_s": 60, "fault": "400", "rate": 1.0}])
    run_id = await start(http, workflow_id)
    await wait_run(http, run_id, "failed")
    sandbox.faults([])
    r = await http.post(f"/api/runs/{run_id}/retry", headers=KEY)
    assert r.status_code == 202 and r.json()["accepted"] == "RetryRun"
    run = await wait_run(http, run_id, "succeeded")
    steps = {s["step_id"]: s for s in run["steps"]}
    assert (steps["first"]["attempts"], steps["side"]["attempts"]) == (1, 1)
    assert steps["broken"]["attempts"] == 2 and steps["after"]["attempts"] == 1
    executions = sandbox.stats()["executions_by_key"]
    ours = {k: n for k, n in executions.items() if f":{run_id}:" in k}
    assert ours == {f"tenant-a:{run_id}:first:1": 1, f"tenant-a:{run_id}:side:1": 1,
                    f"tenant-a:{run_id}:broken:2": 1, f"tenant-a:{run_id}:after:1": 1}  # fmt: skip
    assert (await http.post(f"/api/runs/{run_id}/retry", headers=KEY)).status_code == 409


async def test_cancel_stops_a_running_run(http, executor):
    workflow_id = await define(
        http, [step("wait", "delay", "wait", params={"seconds": 30}), step("never", "slack", needs=["wait"])]
    )
    run_id = await start(http, workflow_id)
    await wait_run(http, run_id, "running")
    await asyncio.sleep(0.5)
    r = await http.post(f"/api/runs/{run_id}/cancel", headers=KEY)
    assert r.status_code == 202
    run = await wait_run(http, run_id, "cancelled", timeout_s=15)
    assert "never" not in {s["step_id"] for s in run["steps"]}
    assert (await http.post(f"/api/runs/{run_id}/cancel", headers=KEY)).status_code == 409


async def test_conditions_skip_steps(http, executor):
    workflow_id = await define(http, [
        step("page", "pagerduty", "trigger", when='trigger.importance == "urgent"'),
        step("log", "google-sheets", "append_row"),
    ])  # fmt: skip
    run = await wait_run(http, await start(http, workflow_id, {"importance": "low"}), "succeeded")
    steps = {s["step_id"]: s for s in run["steps"]}
    assert steps["page"]["status"] == "skipped" and "condition is false" in steps["page"]["skip_reason"]
    assert steps["log"]["status"] == "succeeded"


async def test_email_steps_reach_a_real_smtp_server(http, executor, smtp):
    subject = f"Task created {uuid.uuid4().hex[:6]}"
    workflow_id = await define(http, [step("mail", "email", "send", params={
        "to": "ops@example.com", "subject": subject, "body": "A new task for {{ trigger.who }}"})])  # fmt: skip
    await wait_run(http, await start(http, workflow_id, {"who": "Ada"}), "succeeded")
    received = [m for m in smtp.messages if subject.encode() in m.content]
    assert len(received) == 1 and received[0].rcpt_tos == ["ops@example.com"]
    assert b"A new task for Ada" in received[0].content


async def test_paused_workflows_hold_new_runs_until_resumed(http, executor):
    workflow_id = await define(http, [step("only", "asana")])
    assert (await http.post(f"/api/workflows/{workflow_id}/pause", headers=KEY)).status_code == 202
    await asyncio.sleep(1.0)
    run_id = await start(http, workflow_id)
    await asyncio.sleep(2.0)
    assert (await http.get(f"/api/runs/{run_id}", headers=KEY)).status_code == 404  # waiting, not started
    assert (await http.post(f"/api/workflows/{workflow_id}/resume", headers=KEY)).status_code == 202
    await wait_run(http, run_id, "succeeded")


async def test_worker_killed_mid_run_resumes_without_repeating_succeeded_steps(http, executor, sandbox):
    workflow_id = await define(
        http, [step(f"s{i}", "asana", "create_task", **({"needs": [f"s{i - 1}"]} if i else {})) for i in range(6)]
    )
    run_id = await start(http, workflow_id)

    async def two_done():
        r = (await http.get(f"/api/runs/{run_id}", headers=KEY)).json() if True else None
        return r and sum(s["status"] == "succeeded" for s in r.get("steps", [])) >= 2

    await eventually(two_done, every_s=0.05)
    executor.kill()
    executor.start()
    run = await wait_run(http, run_id, "succeeded", timeout_s=150)
    assert [s["status"] for s in run["steps"]] == ["succeeded"] * 6
    executions = {k: n for k, n in sandbox.stats()["executions_by_key"].items() if f":{run_id}:" in k}
    assert len(executions) == 6 and set(executions.values()) == {1}


def executions_of(sandbox, run_id):
    """Idempotency key -> executions, for one run's calls that reached the sandbox."""
    return {k: n for k, n in sandbox.stats()["executions_by_key"].items() if f":{run_id}:" in k}


async def test_a_cached_step_reuses_the_output_of_an_identical_call(http, executor, sandbox):
    workflow_id = await define(http, [
        step("lookup", "hubspot", "get_contact", params={"email": "{{ trigger.email }}"}, cache=True, cache_ttl_s=600),
        step("note", "slack", "post_message", params={"text": "{{ steps.lookup.output.id }}"}),
    ])  # fmt: skip
    email = f"ada-{uuid.uuid4().hex[:6]}@example.com"
    first = await wait_run(http, await start(http, workflow_id, {"email": email}), "succeeded")
    second = await wait_run(http, await start(http, workflow_id, {"email": email}), "succeeded")
    other = await wait_run(http, await start(http, workflow_id, {"email": f"bob-{email}"}), "succeeded")
    runs = [{s["step_id"]: s for s in run["steps"]} for run in (first, second, other)]
    # The second run's lookup never reached the service; its note did, with the reused output.
    assert executions_of(sandbox, second["run_id"]) == {f"tenant-a:{second['run_id']}:note:1": 1}
    assert f"tenant-a:{other['run_id']}:lookup:1" in executions_of(sandbox, other["run_id"])
    assert [r["lookup"]["cached"] for r in runs] == [False, True, False]
    assert runs[1]["lookup"]["output"] == runs[0]["lookup"]["output"] != runs[2]["lookup"]["output"]
    assert runs[1]["note"]["output"]["received"] == {"text": runs[0]["lookup"]["output"]["id"]}
    digests = [r["lookup"]["params_digest"] for r in runs]
    assert digests[0] == digests[1] != digests[2] and len(digests[0]) == 16
    assert runs[1]["note"]["params_digest"] == runs[0]["note"]["params_digest"] and not runs[1]["note"]["cached"]


async def test_a_step_whose_service_is_down_succeeds_on_its_fallback(http, executor, sandbox):
    workflow_id = await define(http, [
        step("send", "sendgrid", "send_email", params={"to": "{{ trigger.to }}"},
             retry={"initial_interval_s": 0.1, "maximum_attempts": 2, "jitter": 0},
             fallback={"service": "mailgun", "params": {"recipient": "{{ trigger.to }}"}}),
        step("log", "google-sheets", "append_row", params={"row": "{{ steps.send.output.id }}"}),
    ])  # fmt: skip
    sandbox.faults([{"service": "sendgrid", "from_s": 0, "to_s": 120, "fault": "503", "rate": 1.0}])
    try:
        run = await wait_run(http, await start(http, workflow_id, {"to": "ada@example.com"}), "succeeded")
    finally:
        sandbox.faults([])
    run_id, steps = run["run_id"], {s["step_id"]: s for s in run["steps"]}
    send = steps["send"]
    # Two attempts on sendgrid (503 both times), the third on mailgun, with the fallback's own params.
    assert (send["service"], send["fallback_for"], send["attempts"]) == ("mailgun", "sendgrid", 3)
    assert send["last_error"]["status_code"] == 503
    assert send["output"]["service"] == "mailgun" and send["output"]["received"] == {"recipient": "ada@example.com"}
    assert steps["log"]["output"]["received"] == {"row": send["output"]["id"]} and steps["log"]["fallback_for"] is None
    assert executions_of(sandbox, run_id) == {f"tenant-a:{run_id}:send:3": 1, f"tenant-a:{run_id}:log:1": 1}
