"""Troubleshooting on the embedded stack: real failures from sandbox faults, analysed and recorded as a session."""

import uuid

import pytest

from tests.integration.conftest import auth, eventually
from tests.integration.test_execution import executor  # noqa: F401 - the fixture warms the worker up

pytestmark = pytest.mark.integration
KEY = auth("key-trouble")
FAST_RETRY = {"initial_interval_s": 0.1, "maximum_interval_s": 0.2, "maximum_attempts": 2}


async def define(http, service, action="upsert"):
    workflow_id = f"ts-{uuid.uuid4().hex[:8]}"
    body = {"id": workflow_id, "name": "t", "trigger": {"service": "webhook", "event": "call"}, "steps": [
        {"id": "call", "service": service, "action": action, "retry": FAST_RETRY},
        {"id": "tell", "service": "slack", "action": "send_message", "needs": ["call"]},
    ]}  # fmt: skip
    assert (await http.post("/api/workflows", json=body, headers=KEY)).status_code == 201
    await eventually(lambda: _visible(http, workflow_id))
    return workflow_id


async def _visible(http, workflow_id):
    return (await http.get(f"/api/workflows/{workflow_id}", headers=KEY)).status_code == 200


async def fail_runs(http, workflows, runs_each, trigger=None):
    run_ids = []
    for workflow_id in workflows:
        for _ in range(runs_each):
            r = await http.post(f"/api/workflows/{workflow_id}/runs", json={"trigger": trigger or {}}, headers=KEY)
            run_ids.append(r.json()["run_id"])

    async def all_failed():
        for run_id in run_ids:
            r = await http.get(f"/api/runs/{run_id}", headers=KEY)
            if r.status_code != 200 or r.json()["status"] != "failed":
                return False
        return True

    await eventually(all_failed, timeout_s=60)
    return run_ids


async def test_an_outage_of_one_service_is_ranked_first_and_recorded(http, executor, sandbox):  # noqa: F811
    workflows = [await define(http, "zoho-crm"), await define(http, "zoho-crm")]
    sandbox.faults([{"service": "zoho-crm", "from_s": 0, "to_s": 120, "fault": "503", "rate": 1.0}])
    try:
        await fail_runs(http, workflows, 3)
    finally:
        sandbox.faults([])

    async def analysed():
        body = {"workflow_id": workflows[0], "user_id": "ops", "error_logs": [
            "zoho-crm answered 503 Service Unavailable; Authorization: Bearer abcdef0123456789"]}  # fmt: skip
        r = await http.post("/api/workflows/troubleshooting/analyze", json=body, headers=KEY)
        assert r.status_code == 201, r.text
        session = r.json()
        return session if session["failures_seen"] >= 12 else None  # 6 runs x 2 attempts, once projected

    session = await eventually(analysed)
    top = session["causes"][0]
    assert (top["cause"], top["subject"], top["role"]) == ("service_outage", {"service": "zoho-crm"}, "cause")
    assert top["evidence"]["workflows"] == 2 and top["evidence"]["examples"][0]["status_code"] == 503
    assert session["classifications"][0]["error_class"] == "upstream_5xx"
    pause = session["proposals"][0]
    assert pause["action"] == "pause_workflows" and pause["params"]["workflow_ids"] == sorted(workflows)

    async def recorded():
        r = await http.get(f"/api/workflows/troubleshooting/sessions/{session['session_id']}", headers=KEY)
        return r.json() if r.status_code == 200 and len(r.json()["events"]) >= 5 else None

    timeline = await eventually(recorded)
    types = [e["type"] for e in timeline["events"]]
    assert types[0] == "SessionOpened" and "RootCauseRanked" in types and types.count("ResolutionProposed") == 4
    assert "abcdef0123456789" not in str(timeline)  # the log line was redacted before it was stored
    listed = (await http.get(f"/api/workflows/troubleshooting/sessions?workflow_id={workflows[0]}", headers=KEY)).json()
    assert listed["sessions"][0]["session_id"] == session["session_id"]
    assert listed["sessions"][0]["top_cause"]["cause"] == "service_outage"


async def test_a_400_asks_a_person_and_nothing_was_retried(http, executor, sandbox):  # noqa: F811
    workflow = await define(http, "freshdesk", "create_ticket")
    sandbox.faults([{"service": "freshdesk", "from_s": 0, "to_s": 120, "fault": "400", "rate": 1.0}])
    try:
        [run_id] = await fail_runs(http, [workflow], 1, {"email": "not-an-address"})
    finally:
        sandbox.faults([])
    run = (await http.get(f"/api/runs/{run_id}", headers=KEY)).json()
    assert {s["step_id"]: s["attempts"] for s in run["steps"]}["call"] == 1

    async def analysed():
        r = await http.post("/api/workflows/troubleshooting/analyze", json={"workflow_id": workflow}, headers=KEY)
        return r.json() if r.json()["failures_seen"] else None

    session = await eventually(analysed)
    assert session["causes"][0]["error_class"] == "bad_input"
    assert [(p["action"], p["automatic"]) for p in session["proposals"]] == [("ask_person", False)]


@pytest.mark.parametrize(
    ("body", "says"),
    [({}, "workflow_id"), ({"workflow_id": "w", "error_logs": ["x"] * 201}, "error_logs"),
     ({"workflow_id": "w", "window_s": 1}, "window_s"), ({"workflow_id": "w", "extra": 1}, "extra")],
)  # fmt: skip
async def test_bad_requests_say_what_is_wrong(http, api, body, says):
    r = await http.post("/api/workflows/troubleshooting/analyze", json=body, headers=KEY)
    assert r.status_code == 422 and says in r.text


async def test_an_unknown_session_is_a_404(http, api):
    r = await http.get("/api/workflows/troubleshooting/sessions/ts-nope", headers=KEY)
    assert r.status_code == 404 and "ts-nope" in r.text
