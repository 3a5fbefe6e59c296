"""Workflow definitions through the API: versioned, validated as a DAG, tenant-scoped."""

import uuid

import pytest

from tests.integration.conftest import auth, eventually

pytestmark = pytest.mark.integration


def body(workflow_id: str, **changes):
    definition = {
        "id": workflow_id,
        "name": "Important email to Asana and Slack",
        "trigger": {"service": "gmail", "event": "new_email", "filter": 'trigger.importance == "high"'},
        "steps": [
            {"id": "create-task", "service": "asana", "action": "create_task",
             "params": {"name": "{{ trigger.subject }}"}},
            {"id": "notify", "service": "slack", "action": "post_message",
             "params": {"channel": "#ops", "text": "New task {{ steps.create-task.output.url }}"}},
            {"id": "log", "service": "google-sheets", "action": "append_row", "params": {"row": ["{{ run.id }}"]}},
        ],
    }  # fmt: skip
    return definition | changes


async def test_define_version_and_read_back(http):
    wf = f"wf-def-{uuid.uuid4().hex[:6]}"
    first = await http.post("/api/workflows", json=body(wf), headers=auth("key-a"))
    assert first.status_code == 201, first.text
    created = first.json()
    assert created["version"] == 1
    assert created["dependencies"] == {"create-task": [], "notify": ["create-task"], "log": []}
    assert created["order"] == ["create-task", "log", "notify"]

    async def projected():
        r = await http.get(f"/api/workflows/{wf}", headers=auth("key-a"))
        return r.json() if r.status_code == 200 else None

    assert (await eventually(projected))["version"] == 1
    same = await http.post("/api/workflows", json=body(wf), headers=auth("key-a"))
    assert same.status_code == 200 and same.json()["version"] == 1

    changed = await http.post("/api/workflows", json=body(wf, name="Renamed"), headers=auth("key-a"))
    assert changed.status_code == 201 and changed.json()["version"] == 2

    async def second():
        r = (await http.get(f"/api/workflows/{wf}", headers=auth("key-a"))).json()
        return r if r["version"] == 2 else None

    current = await eventually(second)
    assert current["definition"]["name"] == "Renamed" and current["versions"] == [1, 2]
    assert (await http.get(f"/api/workflows/{wf}", headers=auth("key-b"))).status_code == 404


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        ([{"id": "a", "service": "slack", "action": "x", "needs": ["b"]},
          {"id": "b", "service": "slack", "action": "x", "needs": ["a"]}], "cycle"),
        ([{"id": "a", "service": "slack", "action": "x", "params": {"t": "{{ steps.ghost.output }}"}}], "ghost"),
        ([{"id": "a", "service": "slack", "action": "x", "when": "__import__('os')"}], "when"),
    ],
)  # fmt: skip
async def test_invalid_definitions_are_422_with_every_problem(http, steps, problem):
    r = await http.post("/api/workflows", json=body("wf-bad", steps=steps), headers=auth("key-a"))
    assert r.status_code == 422
    assert any(problem in p for p in r.json()["detail"]["problems"])


async def test_secrets_in_step_params_are_refused(http):
    steps = [{"id": "a", "service": "slack", "action": "x", "params": {"token": "xoxb-123"}}]
    r = await http.post("/api/workflows", json=body("wf-secret", steps=steps), headers=auth("key-a"))
    assert r.status_code == 422 and "credential_id" in r.text
