"""A run travels producer -> Kafka -> projector -> ClickHouse -> REST, for real."""

import uuid

import pytest

from tests.factories import as_json, failed_run, run_with_retry
from tests.integration.conftest import auth, eventually

pytestmark = pytest.mark.integration


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def get_run_when(http, run_id, key="key-a", status="succeeded"):
    async def check():
        r = await http.get(f"/api/runs/{run_id}", headers=auth(key))
        return r.json() if r.status_code == 200 and r.json()["status"] == status else None

    return await eventually(check)


async def test_run_with_failure_and_retry_reads_back_correct(http):
    run_id, wf = new_id("run"), new_id("wf")
    body = {"events": as_json(run_with_retry("tenant-a", wf, run_id))}
    r = await http.post("/api/events", json=body, headers=auth("key-a"))
    assert r.status_code == 202 and r.json() == {"accepted": 10}

    run = await get_run_when(http, run_id)
    assert run["workflow_id"] == wf
    assert run["duration_ms"] == 4600.0
    assert run["definition_version"] == 3
    steps = {s["step_id"]: s for s in run["steps"]}
    assert [s["step_id"] for s in run["steps"]] == ["read-email", "create-task", "notify"]
    task = steps["create-task"]
    assert (task["status"], task["attempts"], task["duration_ms"]) == ("succeeded", 2, 500.0)
    assert task["total_duration_ms"] == 1500.0
    assert task["last_error"] == {"type": "RateLimited", "message": "429 Too Many Requests",
                                  "status_code": 429, "retry_after_s": 2.0}  # fmt: skip
    assert (steps["notify"]["service"], steps["notify"]["action"]) == ("slack", "post_message")
    assert steps["read-email"]["last_error"] is None


async def test_single_event_body_and_failed_run(http):
    run_id, wf = new_id("run"), new_id("wf")
    for item in as_json(failed_run("tenant-a", wf, run_id)):
        r = await http.post("/api/events", json=item, headers=auth("key-a"))
        assert r.status_code == 202 and r.json() == {"accepted": 1}
    run = await get_run_when(http, run_id, status="failed")
    assert run["error_message"] == "invalid_auth"
    assert run["steps"][0]["last_error"]["status_code"] == 401


async def test_list_runs_filters_by_status_and_pages_with_a_cursor(http):
    wf = new_id("wf")
    events = []
    for i in range(5):
        events += as_json(run_with_retry("tenant-a", wf, f"{wf}-ok-{i}", t0=i * 10))
    events += as_json(failed_run("tenant-a", wf, f"{wf}-bad", t0=100))
    assert (await http.post("/api/events", json={"events": events}, headers=auth("key-a"))).status_code == 202
    await get_run_when(http, f"{wf}-bad", status="failed")
    await get_run_when(http, f"{wf}-ok-4")

    seen, cursor = [], None
    while True:
        params = {"status": "succeeded", "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await http.get(f"/api/workflows/{wf}/runs", params=params, headers=auth("key-a"))).json()
        seen += [r["run_id"] for r in page["runs"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"{wf}-ok-{i}" for i in (4, 3, 2, 1, 0)]
    failed = (await http.get(f"/api/workflows/{wf}/runs", params={"status": "failed"}, headers=auth("key-a"))).json()
    assert [r["run_id"] for r in failed["runs"]] == [f"{wf}-bad"]
    bad = await http.get(f"/api/workflows/{wf}/runs", params={"cursor": "zzz"}, headers=auth("key-a"))
    assert bad.status_code == 422


async def test_malformed_batch_is_refused_whole_and_nothing_is_stored(http):
    run_id, wf = new_id("run"), new_id("wf")
    events = as_json(run_with_retry("tenant-a", wf, run_id))
    events[3] = {**events[3], "occurred_at": "yesterday"}
    del events[5]["payload"]["service"]
    r = await http.post("/api/events", json={"events": events}, headers=auth("key-a"))
    assert r.status_code == 422
    errors = r.json()["detail"]["errors"]
    assert [e["index"] for e in errors] == [3, 5]
    assert "occurred_at" in errors[0]["reason"] and "service" in errors[1]["reason"]

    marker_run = new_id("run")
    ok = await http.post(
        "/api/events",
        json={"events": as_json(failed_run("tenant-a", wf, marker_run))},
        headers=auth("key-a"),
    )
    assert ok.status_code == 202
    await get_run_when(http, marker_run, status="failed")  # everything before it is projected by now
    assert (await http.get(f"/api/runs/{run_id}", headers=auth("key-a"))).status_code == 404
    page = (await http.get(f"/api/workflows/{wf}/runs", headers=auth("key-a"))).json()
    assert [r["run_id"] for r in page["runs"]] == [marker_run]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 422, "not JSON"),
        (b"[]", 422, "event object"),
        (b'{"events": []}', 422, "empty"),
        (b'{"events": {}}', 422, "array"),
    ],
)
async def test_bad_bodies_get_clear_errors(http, body, status, needle):
    r = await http.post("/api/events", content=body, headers=auth("key-a") | {"content-type": "application/json"})
    assert r.status_code == status and needle in r.text


async def test_too_many_events_is_413(http):
    event = as_json(failed_run("tenant-a", "wf", "r"))[0]
    r = await http.post("/api/events", json={"events": [event] * 10_001}, headers=auth("key-a"))
    assert r.status_code == 413


async def test_garbage_bytes_on_the_topic_are_dead_lettered_and_the_next_event_projected(http, producer):
    key = new_id("garbage").encode()
    await producer.send_raw("workflow-events", b"\xff\xfe not an event \x00", key=key)
    run_id = new_id("run")
    await producer.send(failed_run("tenant-a", new_id("wf"), run_id))
    await get_run_when(http, run_id, status="failed")

    async def dead_letter():
        r = await http.get("/api/dead-letters", headers=auth("key-op"))
        return [d for d in r.json() if "not an event" in d["raw_preview"]]

    [letter] = await eventually(dead_letter)
    assert letter["source"].startswith("workflow-events[") and "@" in letter["source"]
    assert "JSON" in letter["reason"]
    tenant_view = (await http.get("/api/dead-letters", headers=auth("key-b"))).json()
    assert all(d["tenant_id"] == "tenant-b" for d in tenant_view)


async def test_invalid_item_inside_a_topic_batch_is_dead_lettered_alone(http, producer):
    import orjson

    run_id = new_id("run")
    items = as_json(failed_run("tenant-a", new_id("wf"), run_id))
    items.insert(1, {"type": "StepStarted", "tenant_id": "tenant-a", "note": "broken"})
    await producer.send_raw("workflow-events", orjson.dumps(items), key=run_id.encode())
    run = await get_run_when(http, run_id, status="failed")
    assert run["steps"][0]["status"] == "failed"

    async def dead_letter():
        r = await http.get("/api/dead-letters", headers=auth("key-a"))
        return [d for d in r.json() if run_id in d["raw_preview"]]

    [letter] = await eventually(dead_letter)
    assert letter["source"].endswith("#1") and letter["tenant_id"] == "tenant-a"
