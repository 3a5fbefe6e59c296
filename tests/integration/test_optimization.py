"""Optimization on the embedded stack: runs recorded by the executor, analysed, replayed, applied."""

import uuid
from datetime import datetime

import httpx
import pytest

from tests.integration.conftest import ServeProcess, auth, eventually
from tests.integration.test_execution import executor  # noqa: F401 - the fixture warms the worker up

pytestmark = pytest.mark.integration
KEY = auth("key-opt")
RUNS = 12


async def define(http, steps, workflow_id=None):
    workflow_id = workflow_id or f"opt-{uuid.uuid4().hex[:8]}"
    body = {"id": workflow_id, "name": "o", "trigger": {"service": "webhook", "event": "call"}, "steps": steps}
    r = await http.post("/api/workflows", json=body, headers=KEY)
    assert r.status_code in (200, 201), r.text
    version = r.json()["version"]

    async def visible():
        r = await http.get(f"/api/workflows/{workflow_id}", headers=KEY)
        return r.status_code == 200 and r.json()["version"] == version

    await eventually(visible)
    return workflow_id


async def run_all(http, workflow_id, n=RUNS):
    run_ids = []
    for i in range(n):
        r = await http.post(f"/api/workflows/{workflow_id}/runs", json={"trigger": {"email": f"u{i}@x.io"}},
                            headers=KEY)  # fmt: skip
        run_ids.append(r.json()["run_id"])

    async def done():
        for run_id in run_ids:
            r = await http.get(f"/api/runs/{run_id}", headers=KEY)
            if r.status_code != 200 or r.json()["status"] != "succeeded":
                return False
        return True

    await eventually(done, timeout_s=120)
    return run_ids


async def analyze(http, workflow_id, runs=RUNS, **extra):
    async def analysed():
        body = {"workflow_id": workflow_id, "strategy": "performance", "user_id": "ops", **extra}
        r = await http.post("/api/workflows/optimization/analyze", json=body, headers=KEY)
        assert r.status_code == 201, r.text
        found = r.json()
        return found if found["prediction"]["replayed_runs"] >= runs and found["history"] == "recorded" else None

    return await eventually(analysed, timeout_s=60)


TEXT = {"text": "{{ trigger.email }}"}


async def test_a_chain_without_data_flow_is_parallelized_and_the_new_version_defined(http, executor):  # noqa: F811
    workflow_id = await define(http, [
        {"id": "a", "service": "slack", "action": "post_message", "params": TEXT},
        {"id": "b", "service": "asana", "action": "create_task", "params": TEXT, "needs": ["a"]},
        {"id": "c", "service": "trello", "action": "create_card", "params": TEXT, "needs": ["b"]},
    ])  # fmt: skip
    await run_all(http, workflow_id)
    analysis = await analyze(http, workflow_id)
    assert [r["kind"] for r in analysis["recommendations"]] == ["parallelize"]
    rec = analysis["recommendations"][0]
    assert rec["applied"] and rec["evidence"]["edges"] == ["b -> a", "c -> b"]
    prediction = analysis["prediction"]
    # Three calls of 150 ms one after the other, then side by side: about two thirds shorter.
    assert prediction["before"]["p50_ms"] > 450 and 0.5 < prediction["gain_p50"] < 0.75
    assert prediction["before"]["p50_ms"] == pytest.approx(prediction["recorded_p50_ms"], rel=0.01)
    assert prediction["cost_source"] == "catalog"  # the executor's step events carry no price
    assert [s.get("needs", []) for s in analysis["optimized_definition"]["steps"]] == [[], [], []]

    async def listed():
        r = await http.get(f"/api/workflows/optimization/results?workflow_id={workflow_id}", headers=KEY)
        results = r.json()["results"]
        return results if results and results[0]["analysis_id"] == analysis["analysis_id"] else None

    results = await eventually(listed)
    assert results[0]["recommendations"][0]["kind"] == "parallelize"

    r = await http.post("/api/workflows/optimization/apply", json={"analysis_id": analysis["analysis_id"]},
                        headers=KEY)  # fmt: skip
    assert r.status_code == 201, r.text
    applied = r.json()
    assert applied["workflow"]["version"] == 2 and applied["workflow"]["dependencies"] == {"a": [], "b": [], "c": []}
    await eventually(lambda: _version_is(http, workflow_id, 2))
    # The analysis was of version 1: applying it again would define an old analysis over a newer version.
    again = await http.post("/api/workflows/optimization/apply", json={"analysis_id": analysis["analysis_id"]},
                            headers=KEY)  # fmt: skip
    assert again.status_code == 409 and "version 1" in again.json()["detail"]

    # The new version runs its steps side by side (how much shorter that is, is the benchmark's to say).
    run_ids = await run_all(http, workflow_id)
    overlapping = 0
    for run_id in run_ids:
        steps = (await http.get(f"/api/runs/{run_id}", headers=KEY)).json()["steps"]
        starts = [datetime.fromisoformat(s["first_started_at"]) for s in steps]
        ends = [datetime.fromisoformat(s["last_event_at"]) for s in steps]
        overlapping += max(starts) < min(ends)
    assert overlapping >= len(run_ids) * 3 // 4, overlapping
    after = await analyze(http, workflow_id)
    assert after["recommendations"] == []  # nothing left to gain


async def _version_is(http, workflow_id, version):
    r = await http.get(f"/api/workflows/{workflow_id}", headers=KEY)
    return r.json()["version"] == version


async def test_an_optimal_workflow_gets_nothing_and_there_is_nothing_to_apply(http, executor):  # noqa: F811
    workflow_id = await define(http, [
        {"id": "find", "service": "hubspot", "action": "find_contact", "params": {"email": "{{ trigger.email }}"}},
        {"id": "post", "service": "slack", "action": "post_message",
         "params": {"text": "{{ steps.find.output.id }}"}},
    ])  # fmt: skip
    await run_all(http, workflow_id)
    analysis = await analyze(http, workflow_id, strategy="hybrid")
    assert analysis["recommendations"] == [] and analysis["optimized_definition"] is None
    assert analysis["prediction"]["gain_p50"] == 0

    async def refused():
        r = await http.post("/api/workflows/optimization/apply", json={"workflow_id": workflow_id}, headers=KEY)
        return r if r.status_code != 404 else None

    r = await eventually(refused)
    assert r.status_code == 409 and "nothing to apply" in r.json()["detail"]


async def test_a_definition_without_history_is_priced_from_the_catalog(http, api):
    body = {"workflow": {"name": "new", "trigger": {"service": "webhook", "event": "call"}, "steps": [
        {"id": "a", "service": "gmail", "action": "send_email", "params": TEXT},
        {"id": "b", "service": "slack", "action": "post_message", "params": TEXT, "needs": ["a"]},
    ]}}  # fmt: skip
    r = await http.post("/api/workflows/optimization/analyze", json=body, headers=KEY)
    assert r.status_code == 201, r.text
    found = r.json()
    assert found["history"] == "catalog" and found["workflow_id"] is None
    assert found["recommendations"][0]["kind"] == "parallelize"
    assert found["recommendations"][0]["estimated_effect"]["history"] == "catalog"

    async def refused():
        r = await http.post("/api/workflows/optimization/apply", json={"analysis_id": found["analysis_id"]},
                            headers=KEY)  # fmt: skip
        return r if r.status_code != 404 else None

    r = await eventually(refused)
    assert r.status_code == 409 and "without a workflow" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({}, 422, "workflow_id"),
        ({"workflow_id": "nope-never-defined"}, 404, "not found"),
        ({"workflow_id": "x", "strategy": "fastest"}, 422, "strategy"),
        ({"workflow_id": "x", "weights": {"speed": 1}}, 422, "weights"),
        ({"workflow": {"name": "c", "trigger": {"service": "webhook", "event": "e"}, "steps": [
            {"id": "a", "service": "slack", "action": "post", "needs": ["b"]},
            {"id": "b", "service": "slack", "action": "post", "needs": ["a"]}]}}, 422, "cycle"),
    ],
)  # fmt: skip
async def test_bad_requests_say_what_is_wrong(http, api, body, status, says):
    r = await http.post("/api/workflows/optimization/analyze", json=body, headers=KEY)
    assert r.status_code == status and says in r.text, r.text


async def test_apply_needs_a_known_analysis(http, api):
    r = await http.post("/api/workflows/optimization/apply", json={"analysis_id": str(uuid.uuid4())}, headers=KEY)
    assert r.status_code == 404
    r = await http.post("/api/workflows/optimization/apply", json={}, headers=KEY)
    assert r.status_code == 422 and "analysis_id" in r.text


async def test_workflows_that_ran_are_analysed_on_their_own_when_enabled(http, executor, broker, tmp_path):  # noqa: F811
    serve = ServeProcess(broker.bootstrap, tmp_path / "api", group=f"opt-{uuid.uuid4().hex[:6]}")
    serve.env.update(WORKFLOW_INTELLIGENT_OPTIMIZATION_ENABLED="true", WORKFLOW_OPTIMIZATION_INTERVAL="5")
    serve.start()
    try:
        workflow_id = await define(http, [
            {"id": "a", "service": "slack", "action": "post_message", "params": TEXT},
            {"id": "b", "service": "asana", "action": "create_task", "params": TEXT, "needs": ["a"]},
        ])  # fmt: skip
        await run_all(http, workflow_id)
        async with httpx.AsyncClient(base_url=serve.url, timeout=30) as own:

            async def analysed():
                r = await own.get(f"/api/workflows/optimization/results?workflow_id={workflow_id}", headers=KEY)
                found = r.json()["results"]
                return found if found and found[0]["recommendations"] else None

            results = await eventually(analysed, timeout_s=60)
        assert results[0]["strategy"] == "hybrid" and results[0]["recommendations"][0]["kind"] == "parallelize"
    finally:
        serve.stop()
