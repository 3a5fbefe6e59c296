"""Keys map to tenants; a key sees and writes only its tenant. Status and OpenAPI."""

import uuid

import pytest

from tests.factories import as_json, run_with_retry
from tests.integration.conftest import auth, eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def tenant_a_run(api):
    import httpx

    run_id, wf = f"iso-{uuid.uuid4().hex[:8]}", f"wf-iso-{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(base_url=api.url) as http:
        r = await http.post(
            "/api/events",
            json={"events": as_json(run_with_retry("tenant-a", wf, run_id))},
            headers=auth("key-a"),
        )
        assert r.status_code == 202

        async def visible():
            return (await http.get(f"/api/runs/{run_id}", headers=auth("key-a"))).status_code == 200

        await eventually(visible)
    return run_id, wf


async def test_another_tenants_run_is_404(http, tenant_a_run):
    run_id, wf = tenant_a_run
    assert (await http.get(f"/api/runs/{run_id}", headers=auth("key-b"))).status_code == 404
    page = (await http.get(f"/api/workflows/{wf}/runs", headers=auth("key-b"))).json()
    assert page["runs"] == []


async def test_writing_for_another_tenant_is_403_and_nothing_is_published(http):
    run_id = f"forged-{uuid.uuid4().hex[:8]}"
    events = as_json(run_with_retry("tenant-a", "wf-x", run_id))
    mixed = [dict(e, tenant_id="tenant-b") for e in events[:2]] + events[2:]
    r = await http.post("/api/events", json={"events": mixed}, headers=auth("key-b"))
    assert r.status_code == 403 and r.json()["detail"]["indexes"] == list(range(2, 10))
    # The same batch written properly afterwards is the only thing that lands.
    ok = await http.post("/api/events", json={"events": mixed[:2]}, headers=auth("key-b"))
    assert ok.status_code == 202

    async def landed():
        r = await http.get(f"/api/runs/{run_id}", headers=auth("key-b"))
        return r.json() if r.status_code == 200 else None

    run = await eventually(landed)
    assert [s["step_id"] for s in run["steps"]] == ["read-email"]
    assert (await http.get(f"/api/runs/{run_id}", headers=auth("key-a"))).status_code == 404


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer nope"}, 401),
        ({"Authorization": "Basic a2V5LWE="}, 401),
    ],
)
async def test_api_routes_need_a_valid_key(http, headers, status):
    for path in (
        "/api/runs/x",
        "/api/workflows/x/runs",
        "/api/workflows/monitoring/status",
        "/api/dead-letters",
    ):
        assert (await http.get(path, headers=headers)).status_code == status


async def test_healthz_needs_no_key(http):
    r = await http.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_monitoring_status_reports_components_and_lag(http, tenant_a_run):
    async def caught_up():
        body = (await http.get("/api/workflows/monitoring/status", headers=auth("key-a"))).json()
        events = next(t for t in body["consumer_lag"] if t["topic"] == "workflow-events")
        return body if events["lag"] == 0 and events["position"] > 0 else None

    body = await eventually(caught_up)
    assert body["broker"]["status"] == "ok" and body["clickhouse"]["status"] == "ok"
    assert body["projector"]["status"] == "ok"
    assert body["projector"]["detail"]["records"] >= 10
    assert {t["topic"] for t in body["consumer_lag"]} >= {
        "workflow-events",
        "workflow-commands",
        "dead-letters",
    }


async def test_openapi_describes_every_route(http):
    spec = (await http.get("/openapi.json")).json()
    paths = spec["paths"]
    for path, method in [
        ("/api/events", "post"), ("/api/events/stats", "get"), ("/api/runs/{run_id}", "get"),
        ("/api/workflows/{workflow_id}/runs", "get"), ("/api/workflows/monitoring/status", "get"),
        ("/api/dead-letters", "get"), ("/healthz", "get"), ("/api/runs", "get"),
        ("/api/workflows", "post"), ("/api/workflows/{workflow_id}", "get"),
    ]:  # fmt: skip
        assert method in paths[path], path
    assert "StepFailed" in spec["components"]["schemas"]
    assert "Record" in spec["components"]["schemas"]
