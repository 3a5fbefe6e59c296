"""The dashboard's server side on the embedded stack: the page and its assets, the live stream, recent runs
with their attempts, and acknowledging alerts."""

import asyncio
import signal
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from tests.factories import T0, as_json, run_with_retry
from tests.integration.conftest import ServeProcess, auth, eventually

pytestmark = pytest.mark.integration

Event = tuple[str, dict[str, Any]]


class Stream:
    """An open ``/api/stream``, read event by event."""

    def __init__(self, client: httpx.AsyncClient, key: str) -> None:
        self._request = client.stream("GET", "/api/stream", headers=auth(key))
        self.response: httpx.Response | None = None
        self._lines: Any = None

    async def __aenter__(self) -> "Stream":
        self.response = await self._request.__aenter__()
        assert self.response.status_code == 200
        assert self.response.headers["content-type"].startswith("text/event-stream")
        self._lines = self.response.aiter_lines()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._request.__aexit__(*exc)

    async def next(self) -> Event:
        name, data = "", ""
        async for line in self._lines:
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = line.removeprefix("data: ")
            elif not line and name:
                return name, orjson.loads(data)
        raise AssertionError("the stream ended")

    async def rest(self) -> list[str]:
        """Every line up to the end of the response (raises if the connection is cut instead)."""
        return [line async for line in self._lines]

    async def until(self, done: Callable[[str, dict[str, Any]], bool], timeout_s: float = 90) -> list[Event]:
        """Every event up to and including the first one ``done`` accepts."""
        seen: list[Event] = []

        async def read() -> None:
            while True:
                seen.append(await self.next())
                if done(*seen[-1]):
                    return

        try:
            await asyncio.wait_for(read(), timeout_s)
        except TimeoutError as exc:
            recent = [(n, d.get("run_id")) for n, d in seen][-20:]
            raise AssertionError(f"not seen in {timeout_s}s; last events: {recent}") from exc
        return seen


def finished(run_id: str) -> Callable[[str, dict[str, Any]], bool]:
    return lambda name, data: name == "run.finished" and data.get("run_id") == run_id


def recent_run(tenant: str, run_id: str) -> list[dict[str, Any]]:
    """The factory's run with a retry, dated now (recent runs are the last 24 hours)."""
    start = (datetime.now(UTC) - T0).total_seconds() - 10
    return as_json(run_with_retry(tenant, "wf-live", run_id, t0=start))


async def post_run(client: httpx.AsyncClient, tenant: str, run_id: str) -> httpx.Response:
    events = recent_run(f"tenant-{tenant}", run_id)
    return await client.post("/api/events", json={"events": events}, headers=auth(f"key-{tenant}"))


async def test_page_and_assets_answer_with_their_content_types(http):
    page = await http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'data-testid="live-status"' in page.text and "/static/app.js" in page.text
    for path, kind in [("/static/app.js", "javascript"), ("/static/app.css", "text/css"), ("/static/logo.svg", "svg")]:
        asset = await http.get(path)
        assert asset.status_code == 200 and kind in asset.headers["content-type"], path
    assert (await http.get("/static/nothing.js")).status_code == 404
    assert (await http.get("/api/stream")).status_code == 401


async def test_the_stream_carries_a_runs_summaries_to_its_tenant_only(api):
    run_a, run_b = f"run-live-a-{uuid.uuid4().hex[:8]}", f"run-live-b-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
        async with Stream(client, "key-a") as a, Stream(client, "key-b") as b, Stream(client, "key-op") as operator:
            assert await a.next() == ("ready", {"tenant": "tenant-a", "heartbeat_s": 15.0})
            assert (await b.next())[1]["tenant"] == "tenant-b"
            assert (await operator.next())[1]["tenant"] == "*"

            posted = await post_run(client, "a", run_a)
            assert posted.status_code == 202, posted.text
            seen_a = [(n, d) for n, d in await a.until(finished(run_a)) if d.get("run_id") == run_a]
            kinds = [(n, d.get("step_id"), d.get("attempt")) for n, d in seen_a]
            assert kinds[0] == ("run.started", None, None)
            assert ("step.failed", "create-task", 1) in kinds and ("step.succeeded", "create-task", 2) in kinds
            assert seen_a[-1][1]["status"] == "succeeded"
            assert {d["tenant_id"] for _, d in seen_a} == {"tenant-a"}

            # run_a's summaries reached every subscriber's queue before a's stream showed them, so b has
            # already been offered whatever it was going to get of them when it sees its own run end.
            posted = await post_run(client, "b", run_b)
            assert posted.status_code == 202, posted.text
            seen_b = await b.until(finished(run_b))
            assert not [d for _, d in seen_b if d.get("run_id") == run_a]
            assert {d["tenant_id"] for n, d in seen_b if n != "lagged"} == {"tenant-b"}

            ended: set[str] = set()

            def both_ended(name: str, data: dict[str, Any]) -> bool:
                if name == "run.finished":
                    ended.add(data["run_id"])
                return {run_a, run_b} <= ended

            await operator.until(both_ended)

        recent = await client.get("/api/runs", params={"limit": 500}, headers=auth("key-a"))
        assert run_a in [r["run_id"] for r in recent.json()]
        assert run_a not in [r["run_id"] for r in (await client.get("/api/runs", headers=auth("key-b"))).json()]
        run = (await client.get(f"/api/runs/{run_a}", headers=auth("key-a"))).json()
        task = next(s for s in run["steps"] if s["step_id"] == "create-task")
        attempts = [(t["attempt"], t["status"], t["duration_ms"]) for t in task["attempts_timeline"]]
        assert attempts == [(1, "failed", 1000.0), (2, "succeeded", 500.0)]
        first, second = task["attempts_timeline"]
        assert first["started_at"] < first["ended_at"] <= second["started_at"] < second["ended_at"]


def subscribers(metrics_text: str) -> int:
    line = next(li for li in metrics_text.splitlines() if li.startswith("flowledger_stream_subscribers "))
    return int(float(line.split()[1]))


async def test_a_closed_connection_leaves_no_subscriber_behind(api, http):
    async def count() -> int:
        return subscribers((await http.get("/metrics")).text)

    async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
        async with Stream(client, "key-a") as a, Stream(client, "key-b"):
            assert (await a.next())[0] == "ready"
            assert await count() >= 2

    async def none_left() -> bool:
        return await count() == 0

    await eventually(none_left)


async def test_stopping_the_server_ends_open_streams_cleanly(broker, tmp_path):
    """The stream's response finishes when the server stops; it is not cut at the graceful-shutdown timeout."""
    serve = ServeProcess(broker.bootstrap, tmp_path, group=f"it-stop-{uuid.uuid4().hex[:6]}").start()
    try:
        async with httpx.AsyncClient(base_url=serve.url, timeout=60) as client, Stream(client, "key-a") as stream:
            assert (await stream.next())[0] == "ready"
            assert serve.proc is not None
            serve.proc.terminate()
            assert all(not line or line.startswith(":") for line in await stream.rest())
        assert serve.proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it stopped on
    finally:
        serve.stop()


def alert_event(kind: str, alert_id: str, at: datetime) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()), "type": kind, "occurred_at": at.isoformat(), "tenant_id": "tenant-a",
        "workflow_id": "wf-ack", "payload": {"alert_id": alert_id, "rule": "manual", "severity": "high",
                                             "labels": {"workflow": "wf-ack"}, "started_at": at.isoformat()},
    }  # fmt: skip


async def test_acknowledging_an_alert_shows_in_the_alert_view_until_it_fires_again(http):
    alert_id = f"ack-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)

    async def alert() -> dict[str, Any] | None:
        r = await http.get("/api/workflows/monitoring/alerts", headers=auth("key-a"))
        return next((a for a in r.json()["alerts"] if a["alert_id"] == alert_id), None)

    url = f"/api/workflows/monitoring/alerts/{alert_id}/ack"
    assert (await http.post(url, headers=auth("key-a"))).status_code == 404
    fired = await http.post("/api/events", json=alert_event("AlertFired", alert_id, now), headers=auth("key-a"))
    assert fired.status_code == 202, fired.text
    assert (await eventually(alert))["acknowledged_at"] is None

    assert (await http.post(url, headers=auth("key-b"))).status_code == 404
    bad_id = "/api/workflows/monitoring/alerts/not%20an%20id/ack"
    assert (await http.post(bad_id, headers=auth("key-a"))).status_code == 422
    acked = await http.post(url, json={"acknowledged_by": "oncall", "comment": "looking"}, headers=auth("key-a"))
    assert acked.status_code == 202, acked.text
    assert acked.json()["alert_id"] == alert_id

    async def acknowledged() -> dict[str, Any] | None:
        found = await alert()
        return found if found and found["acknowledged_at"] else None

    shown = await eventually(acknowledged)
    assert (shown["state"], shown["acknowledged_by"]) == ("firing", "oncall")

    again = await http.post("/api/events", json=alert_event("AlertFired", alert_id, now + timedelta(minutes=1)),
                            headers=auth("key-a"))  # fmt: skip
    assert again.status_code == 202

    async def forgotten() -> bool:
        found = await alert()
        return bool(found) and found["fired_at"] > shown["fired_at"] and found["acknowledged_at"] is None

    await eventually(forgotten)
    resolved = alert_event("AlertResolved", alert_id, now + timedelta(minutes=2))
    assert (await http.post("/api/events", json=resolved, headers=auth("key-a"))).status_code == 202

    async def resolved_now() -> bool:
        return ((await alert()) or {}).get("state") == "resolved"

    await eventually(resolved_now)
    assert (await http.post(url, headers=auth("key-a"))).status_code == 409
