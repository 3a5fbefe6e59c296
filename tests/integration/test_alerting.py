"""Alerting end to end on a stack of its own: executor, sandbox faults, windows, rules, real receivers.

A workflow runs continuously; its service fails for 30 s. `error_rate_increase`
(redefined with a 20 s cooldown and three channels) must fire, reach a real
HTTP receiver and a real SMTP server, notify at most once per cooldown while
the failures go on, and resolve once after recovery.
"""

import asyncio
import json
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from flowledger.broker import EmbeddedBroker, ensure_topics, free_port
from tests.integration.conftest import SandboxProcess, ServeProcess, SmtpSink, WorkerProcess, auth, eventually

pytestmark = pytest.mark.integration

KEY = auth("key-a")
TOKEN = f"tok-{uuid.uuid4().hex}"
COOLDOWN_S = 20.0
FAILING_S = 30.0


class Receiver:
    """A real HTTP endpoint that keeps what is POSTed to it, with the time it arrived."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict[str, Any]]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((time.time(), json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("alerting")
    receiver, smtp = Receiver(), SmtpSink()
    sandbox = SandboxProcess(root, latency="fixed:20")
    with EmbeddedBroker() as broker:
        asyncio.run(ensure_topics(broker.bootstrap))
        serve = ServeProcess(broker.bootstrap, root / "api", group="alerting-projector")
        serve.env["FLOWLEDGER_METRICS_WINDOW_S"] = "5"  # what backtests read
        serve.start()
        worker = WorkerProcess(broker.bootstrap, root / "worker", sandbox, smtp.port)
        worker.env |= {
            "FLOWLEDGER_DATA_DIR": str(root / "api"),  # the credential store the API writes
            "FLOWLEDGER_METRICS_WINDOW_S": "5", "FLOWLEDGER_METRICS_GRACE_S": "1", "FLOWLEDGER_METRICS_IDLE_S": "2",
        }  # fmt: skip
        worker.start()
        try:
            yield serve, worker, sandbox, receiver, smtp
        finally:
            worker.stop()
            serve.stop()
            sandbox.stop()
            receiver.stop()
            smtp.stop()


async def test_a_failure_burst_fires_notifies_every_channel_once_per_cooldown_and_resolves(stack):
    serve, worker, sandbox, receiver, smtp = stack
    async with httpx.AsyncClient(base_url=serve.url, timeout=30) as http:
        hook = f"http://127.0.0.1:{receiver.port}/hook/{TOKEN}"
        assert (await http.put("/api/credentials/ops-hook", json={"secret": {"url": hook}}, headers=KEY)).is_success
        channels = [{"type": "webhook", "credential_id": "ops-hook"}, {"type": "email", "to": ["ops@example.com"]},
                    {"type": "log"}]  # fmt: skip
        rule = {"name": "error_rate_increase", "condition": "error_rate > 0.1", "severity": "critical",
                "cooldown_s": COOLDOWN_S, "channels": channels,
                "annotations": {"summary": "{{ $labels.workflow }}: {{ $value | humanizePercentage }} of runs fail",
                                "runbook": "https://runbooks.example/{{ $labels.workflow }}"}}  # fmt: skip
        assert (
            await http.put("/api/workflows/monitoring/rules/error_rate_increase", json=rule, headers=KEY)
        ).is_success
        sustained = {"name": "errors-sustained", "condition": "error_rate > 0.1", "for_s": 3600, "match": "wf-alerting"}
        assert (await http.post("/api/workflows/monitoring/rules", json=sustained, headers=KEY)).status_code == 201
        fast = {"name": "errors-fast", "condition": "error_rate > 0.1", "range_s": 2, "match": "wf-alerting"}
        assert (await http.post("/api/workflows/monitoring/rules", json=fast, headers=KEY)).status_code == 201
        sync = {"id": "sync", "service": "crm", "action": "upsert", "retry": {"maximum_attempts": 1}}
        workflow = {"id": "wf-alerting", "name": "crm sync", "trigger": {"service": "webhook", "event": "call"},
                    "steps": [sync]}  # fmt: skip
        assert (await http.post("/api/workflows", json=workflow, headers=KEY)).status_code == 201

        async def start() -> str:
            r = await http.post("/api/workflows/wf-alerting/runs", json={"trigger": {}}, headers=KEY)
            assert r.status_code == 202, r.text
            return r.json()["run_id"]

        async def defined() -> bool:
            return (await http.get("/api/workflows/wf-alerting", headers=KEY)).status_code == 200

        await eventually(defined)
        warm = await start()

        async def succeeded():
            r = await http.get(f"/api/runs/{warm}", headers=KEY)
            return r.status_code == 200 and r.json()["status"] == "succeeded"

        await eventually(succeeded, timeout_s=150, every_s=1)  # the worker has joined its group

        began = time.time()
        failing_from = None
        while time.time() - began < 15 + FAILING_S + 25:
            if failing_from is None and time.time() - began >= 15:
                sandbox.faults([{"service": "crm", "from_s": 0, "to_s": FAILING_S, "fault": "500", "rate": 1.0}])
                failing_from = time.time()
            await start()
            await asyncio.sleep(0.3)

        def by_status(status: str) -> list[tuple[float, dict[str, Any]]]:
            return [(t, m) for t, m in receiver.received if m["status"] == status]

        async def resolved():
            return by_status("resolved")

        await eventually(resolved, timeout_s=30)
        firing = by_status("firing")
        assert 1 <= len(firing) <= 2, receiver.received
        assert all(b - a >= COOLDOWN_S - 2 for (a, _), (b, _) in zip(firing, firing[1:], strict=False))
        assert len(by_status("resolved")) == 1
        first = firing[0][1]["alerts"][0]
        assert (first["rule"], first["severity"], first["labels"]["workflow"]) == (
            "error_rate_increase", "critical", "wf-alerting")  # fmt: skip
        summary = f"wf-alerting: {first['value'] * 100:.4g}% of runs fail"  # the templates, filled in
        assert first["annotations"] == {"summary": summary, "runbook": "https://runbooks.example/wf-alerting"}
        latency = firing[0][0] - failing_from
        print(f"first failure -> webhook notification: {latency:.2f} s")
        assert latency < 20

        async def mailed():
            return [m for m in smtp.messages if b"error_rate_increase" in m.content]

        assert summary.encode() in (await eventually(mailed, timeout_s=10))[0].content
        assert TOKEN not in worker.log.read_text()

        async def history():
            r = await http.get("/api/workflows/monitoring/alerts", params={"rule": "error_rate_increase"}, headers=KEY)
            alerts = r.json()["alerts"]
            return alerts if alerts and alerts[0]["state"] == "resolved" else None

        [alert] = await eventually(history)
        assert alert["labels"]["workflow"] == "wf-alerting" and alert["resolved_at"] > alert["fired_at"]
        assert alert["notifications"] >= 3 * len(firing) and alert["failed_deliveries"] == 0

        # a rule that must hold for an hour was pending during the burst, and cleared after it without firing
        r = await http.get("/api/workflows/monitoring/alerts", params={"rule": "errors-sustained"}, headers=KEY)
        [sustained_alert] = r.json()["alerts"]
        assert sustained_alert["state"] == "cleared" and sustained_alert["pending_at"] is not None
        assert sustained_alert["fired_at"] is None and sustained_alert["notifications"] == 0

        # the same rule over the same stored history, evaluated by the backtest, fires and resolves when the agent did
        span = {"start": "2026-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"}
        backtest = await http.post("/api/workflows/monitoring/rules/backtest", headers=KEY,
                                   json={"rule": {**rule, "match": "wf-alerting"}, **span})  # fmt: skip
        [replayed] = backtest.json()["alerts"]
        assert (replayed["fired_at"], replayed["resolved_at"]) == (alert["fired_at"], alert["resolved_at"])
        assert replayed["notifications"] == len(firing)

        # a rule over its own 2-second range stops holding sooner after recovery than one over the 5-second window,
        # and its backtest replays that range
        async def fast_history():
            r = await http.get("/api/workflows/monitoring/alerts", params={"rule": "errors-fast"}, headers=KEY)
            alerts = r.json()["alerts"]
            return alerts if alerts and all(a["state"] == "resolved" for a in alerts) else None

        fast_alerts = sorted(await eventually(fast_history), key=lambda a: a["fired_at"])
        assert fast_alerts[-1]["resolved_at"] < alert["resolved_at"]
        backtest = await http.post("/api/workflows/monitoring/rules/backtest", headers=KEY, json={"rule": fast, **span})
        replayed_fast = [(a["fired_at"], a["resolved_at"]) for a in backtest.json()["alerts"]]
        assert replayed_fast[-len(fast_alerts) :] == [(a["fired_at"], a["resolved_at"]) for a in fast_alerts]


async def test_an_outside_alert_is_raised_notified_and_resolved(stack):
    serve, _worker, _sandbox, receiver, _smtp = stack
    async with httpx.AsyncClient(base_url=serve.url, timeout=30) as http:
        channel = {"type": "webhook", "credential_id": "ops-hook", "format": "slack"}
        body = {"alert_id": "disk-full-db1", "rule": "disk_full", "severity": "high", "labels": {"host": "db1"},
                "annotations": {"summary": "disk 97% full"}, "value": 0.97, "channels": [channel]}  # fmt: skip
        assert (await http.post("/api/workflows/monitoring/alerts", json=body, headers=KEY)).status_code == 202
        bad = {**body, "channels": [{"type": "webhook"}]}
        assert (await http.post("/api/workflows/monitoring/alerts", json=bad, headers=KEY)).status_code == 422

        async def slack_text():
            return [m for _, m in receiver.received if "disk_full" in m.get("text", "")]

        [message] = await eventually(slack_text)
        assert "FIRING" in message["text"] and "disk 97% full" in message["text"]
        resolve = {**body, "status": "resolved"}
        assert (await http.post("/api/workflows/monitoring/alerts", json=resolve, headers=KEY)).status_code == 202

        async def resolved():
            r = await http.get("/api/workflows/monitoring/alerts", params={"rule": "disk_full"}, headers=KEY)
            return [a for a in r.json()["alerts"] if a["state"] == "resolved"]

        await eventually(resolved)
        assert len(await slack_text()) == 2  # firing, then resolved


async def test_a_silenced_alert_is_muted_until_its_silence_is_expired(stack):
    serve, _worker, _sandbox, receiver, _smtp = stack
    async with httpx.AsyncClient(base_url=serve.url, timeout=30) as http:
        silence = {"matchers": {"host": "db2"}, "duration_s": 600, "comment": "maintenance"}
        silence_id = (await http.post("/api/workflows/monitoring/silences", json=silence, headers=KEY)).json()[
            "silence_id"
        ]
        hook = {"secret": {"url": f"http://127.0.0.1:{receiver.port}/hook/{TOKEN}"}}  # as the first test stores it
        assert (await http.put("/api/credentials/ops-hook", json=hook, headers=KEY)).is_success
        channel = {"type": "webhook", "credential_id": "ops-hook"}
        body = {"alert_id": "disk-full-db2", "rule": "disk_full_db2", "labels": {"host": "db2"}, "channels": [channel]}
        await asyncio.sleep(2)  # the silence reaches the agent first (same topic, earlier offset)
        assert (await http.post("/api/workflows/monitoring/alerts", json=body, headers=KEY)).status_code == 202

        async def muted():
            r = await http.get("/api/workflows/monitoring/alerts", params={"rule": "disk_full_db2"}, headers=KEY)
            return [a for a in r.json()["alerts"] if a["muted"]]

        [alert] = await eventually(muted)
        assert alert["muted"] == f"silenced:{silence_id}" and alert["state"] == "firing"
        assert alert["notifications"] == 0 and alert["failed_deliveries"] == 0

        def told() -> list[dict[str, Any]]:
            return [m for _, m in receiver.received if any(a["rule"] == "disk_full_db2" for a in m.get("alerts", []))]

        assert not told()
        expired = await http.delete(f"/api/workflows/monitoring/silences/{silence_id}", headers=KEY)
        assert expired.status_code == 200

        async def notified():  # the silence is over: the alert it muted is told, as firing
            return told()

        [message] = await eventually(notified)
        assert message["status"] == "firing" and message["reason"] == "firing"

        async def unmuted():
            r = await http.get("/api/workflows/monitoring/alerts", params={"rule": "disk_full_db2"}, headers=KEY)
            return [a for a in r.json()["alerts"] if a["notifications"] == 1 and a["muted"] is None]

        await eventually(unmuted)


async def test_a_rules_rolling_window_survives_a_killed_worker(stack):
    """Two failures before a SIGKILL and two after, within a 240 s range: only the restored panes make it four."""
    serve, worker, _sandbox, _receiver, _smtp = stack
    common = {"match": "wf-restart", "range_s": 240, "channels": [{"type": "log"}]}
    seen = {"name": "restart-seen", "condition": "failures > 1", "for_s": 3600, **common}
    count = {"name": "restart-count", "condition": "failures > 3", **common}

    def failed_run() -> dict[str, Any]:
        return {"type": "RunFailed", "event_id": str(uuid.uuid4()), "occurred_at": datetime.now(UTC).isoformat(),
                "tenant_id": "tenant-a", "workflow_id": "wf-restart", "run_id": f"r-{uuid.uuid4().hex[:10]}",
                "payload": {"duration_ms": 40.0}}  # fmt: skip

    async with httpx.AsyncClient(base_url=serve.url, timeout=30) as http:
        for rule in (seen, count):
            assert (await http.post("/api/workflows/monitoring/rules", json=rule, headers=KEY)).status_code == 201

        async def state_of(rule: str) -> str | None:
            r = await http.get("/api/workflows/monitoring/alerts", params={"rule": rule}, headers=KEY)
            return next((a["state"] for a in r.json()["alerts"]), None)

        async def send_two_failures() -> None:
            r = await http.post("/api/events", json={"events": [failed_run(), failed_run()]}, headers=KEY)
            assert r.status_code == 202, r.text

        await asyncio.sleep(2)  # the rules reach the agent before the failures
        await send_two_failures()

        async def two_in_the_window() -> bool:
            return await state_of("restart-seen") == "pending"

        await eventually(two_in_the_window, timeout_s=60)
        assert await state_of("restart-count") is None
        worker.kill()  # SIGKILL: no shutdown, no final commit
        worker.start()
        await send_two_failures()

        async def fired() -> bool:
            return await state_of("restart-count") == "firing"

        await eventually(fired, timeout_s=150, every_s=1)
