"""Generation on the embedded stack: a sentence becomes a workflow that is defined and runs on the sandbox."""

import uuid

import pytest

from tests.integration.conftest import auth, eventually
from tests.integration.test_execution import executor  # noqa: F401 - the fixture warms the worker up

pytestmark = pytest.mark.integration
KEY = auth("key-gen")
SEED = "When I get important emails, create asana tasks and notify slack"


async def generate(http, text, key=KEY, **options):
    r = await http.post("/api/workflows/automation/generate", json={"user_input": text, **options}, headers=key)
    assert r.status_code == 200, r.text
    return r.json()


async def define(http, workflow, key=KEY):
    workflow_id = f"gen-{uuid.uuid4().hex[:8]}"
    r = await http.post("/api/workflows", json={"id": workflow_id, **workflow}, headers=key)
    assert r.status_code == 201, r.text

    async def visible():
        return (await http.get(f"/api/workflows/{workflow_id}", headers=key)).status_code == 200

    await eventually(visible)
    return workflow_id


async def run(http, workflow_id, trigger, status):
    r = await http.post(f"/api/workflows/{workflow_id}/runs", json={"trigger": trigger}, headers=KEY)
    assert r.status_code == 202, r.text
    run_id = r.json()["run_id"]

    async def finished():
        r = await http.get(f"/api/runs/{run_id}", headers=KEY)
        return r.json() if r.status_code == 200 and r.json()["status"] == status else None

    return await eventually(finished, timeout_s=45)


async def test_the_seed_sentence_runs_with_parallel_actions_and_its_condition(http, executor):  # noqa: F811
    made = await generate(http, SEED, user_id="ana")
    workflow = made["workflow"]
    assert made["detector"] == "learned" and made["user_id"] == "ana"
    assert workflow["trigger"]["filter"] == 'trigger.importance == "high"'
    steps = {s["service"]: s for s in workflow["steps"]}
    assert list(steps) == ["asana", "slack"]
    assert all(s["needs"] == [] for s in steps.values())  # independent actions: parallel
    assert any("parallel" in line for line in made["explanation"])

    workflow_id = await define(http, workflow)
    trigger = {"importance": "high", "subject": "Invoice overdue", "body": "Please pay by Friday"}
    done = await run(http, workflow_id, trigger, "succeeded")
    outputs = {s["step_id"]: s["output"]["received"] for s in done["steps"]}
    assert outputs[steps["asana"]["id"]] == {"name": "Invoice overdue"}
    assert outputs[steps["slack"]["id"]] == {"text": "Please pay by Friday"}
    # Not important: the trigger's filter stops the run before any step.
    skipped = await run(http, workflow_id, {"importance": "low", "subject": "FYI"}, "cancelled")
    assert not [s for s in skipped["steps"] if s.get("attempts")]


async def test_sequenced_actions_wait_and_read_the_earlier_output(http, executor):  # noqa: F811
    text = 'When a new row is added to google sheets, create a trello card and then post "New lead" to #sales on slack'
    made = await generate(http, text)
    steps = made["workflow"]["steps"]
    assert [s["service"] for s in steps] == ["trello", "slack"]
    card, post = steps
    assert post["needs"] == [card["id"]] and post["params"]["channel"] == "#sales"
    workflow_id = await define(http, made["workflow"])
    done = await run(http, workflow_id, {"title": "Acme"}, "succeeded")
    outputs = {s["step_id"]: s["output"] for s in done["steps"]}
    assert outputs[post["id"]]["received"]["text"].endswith(outputs[card["id"]]["id"])


async def test_history_picks_the_users_email_service(http, api):
    key = auth("key-history")  # a tenant of its own: its history is what this test defines
    text = "When I get an email, add a row to google sheets"
    assert (await generate(http, text, key))["workflow"]["trigger"]["service"] == "email"
    mine = {"name": "mine", "trigger": {"service": "gmail", "event": "any_new_email_in_inbox"},
            "steps": [{"id": "s", "service": "slack", "action": "send_message"}]}  # fmt: skip
    await define(http, mine, key)

    async def gmail_known():
        made = await generate(http, text, key)
        return made if made["workflow"]["trigger"]["service"] == "gmail" else None

    made = await eventually(gmail_known, timeout_s=45)  # the history is cached for up to 30 s
    assert made["services"][0] == {**made["services"][0], "service": "gmail", "replaces": "email"}
    assert any("Gmail" in line for line in made["explanation"])
    plain = await generate(http, text, key, context_aware=False)
    assert plain["workflow"]["trigger"]["service"] == "email" and plain["history_services"] == 0


async def test_the_keyword_path_on_request(http, api):
    made = await generate(http, SEED, enhanced_intelligence=False)
    assert made["detector"] == "keyword"
    assert [s["service"] for s in made["workflow"]["steps"]] == ["asana", "slack"]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"user_input": "   "}, 422, "user_input"),
        ({"user_input": "x" * 2001}, 422, "user_input"),
        ({"user_input": SEED, "enhanced": True}, 422, "enhanced"),
        ({"user_input": "hello there, how are you"}, 422, "say what should happen"),
        ({"user_input": "when a new tweet mentions me"}, 422, "only a trigger"),
    ],
)
async def test_bad_requests_say_what_is_wrong(http, api, body, status, says):
    r = await http.post("/api/workflows/automation/generate", json=body, headers=KEY)
    assert r.status_code == status and says in r.text, r.text


async def test_generation_needs_a_key(http, api):
    r = await http.post("/api/workflows/automation/generate", json={"user_input": SEED})
    assert r.status_code == 401


async def test_patterns_are_mined_from_definitions_and_runs_and_feed_generation(http, executor, sandbox):  # noqa: F811
    key = auth("key-patterns")
    shape = {"name": "lead", "trigger": {"service": "typeform", "event": "new_entry"}, "steps": [
        {"id": "deal", "service": "pipedrive", "action": "add_deal"},
        {"id": "tell", "service": "slack", "action": "send_message", "needs": ["deal"]},
    ]}  # fmt: skip
    first = await define(http, shape, key)
    await define(http, shape, key)
    await define(http, {**shape, "steps": shape["steps"][:1]}, key)
    sandbox.faults([{"service": "pipedrive", "from_s": 0, "to_s": 60, "fault": "400", "rate": 1.0}])
    try:
        r = await http.post(f"/api/workflows/{first}/runs", json={"trigger": {}}, headers=key)
        run_id = r.json()["run_id"]

        async def failed():
            r = await http.get(f"/api/runs/{run_id}", headers=key)
            return r.status_code == 200 and r.json()["status"] == "failed"

        await eventually(failed, timeout_s=45)
    finally:
        sandbox.faults([])

    async def mined():
        r = await http.get("/api/workflows/patterns", headers=key)
        body = r.json()
        return body if body["workflows"] == 3 and body["failure_points"] else None

    body = await eventually(mined)
    assert {(p["trigger"], p["action"], p["workflows"]) for p in body["pairs"]} == {
        ("typeform", "pipedrive", 3), ("typeform", "slack", 2)
    }  # fmt: skip
    assert [(t["trigger"], t["actions"], t["workflows"]) for t in body["templates"]] == [
        ("typeform", ["pipedrive", "slack"], 2)
    ]
    assert {"services": ["typeform", "pipedrive", "slack"], "workflows": 2, "runs": 1} in body["sequences"]
    point = body["failure_points"][0]
    assert (point["service"], point["failed"], point["failure_rate"]) == ("pipedrive", 1, 1.0)
    others = (await http.get("/api/workflows/patterns?min_support=1", headers=auth("key-b"))).json()
    assert "pipedrive" not in {p["action"] for p in others["pairs"]}  # a tenant's patterns are its own

    made = await generate(http, "When a typeform is submitted, add a deal in pipedrive", key)
    assert made["templates"][0]["actions"] == ["pipedrive", "slack"]


@pytest.mark.parametrize(
    ("query", "key", "status"),
    [("min_support=0", "key-patterns", 422), ("limit=0", "key-patterns", 422), ("", "key-op", 400),
     ("tenant=tenant-a", "key-patterns", 403)],
)  # fmt: skip
async def test_patterns_refuse_bad_queries(http, api, query, key, status):
    r = await http.get(f"/api/workflows/patterns?{query}", headers=auth(key))
    assert r.status_code == status, r.text
