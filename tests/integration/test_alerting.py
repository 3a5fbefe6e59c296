"""Alerting end to end on a stack of its own: executor, sandbox faults, windows, rules, real receivers.

A workflow runs continuously; its service fails for 30 s. `error_rate_increase`
(redefined with a 20 s cooldown and three channels) must fire, reach a real
HTTP receiver and a real SMTP server, notify at most once per cooldown while
the failures go on, and resolve once after recovery.
"""

import asyncio
import email
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

        mail = email.message_from_bytes((await eventually(mailed, timeout_s=10))[0].content)
        assert summary in mail.get_payload(decode=True).decode()
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
        alertmanager = {**channel, "format": "alertmanager"}  # the same endpoint, told as Alertmanager tells it
        body = {"alert_id": "disk-full-db1", "rule": "disk_full", "severity": "high", "labels": {"host": "db1"},
                "annotations": {"summary": "disk 97% full"}, "value": 0.97,
                "channels": [channel, alertmanager]}  # fmt: skip
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

        async def alertmanager_told():
            told = [m for _, m in receiver.received if m.get("version") == "4" and m["groupLabels"] == {
                "alertname": "disk_full"}]  # fmt: skip
            return told if len(told) == 2 else None

        fired, ended = await eventually(alertmanager_told)
        assert [fired["status"], ended["status"]] == ["firing", "resolved"]
        [am_alert] = fired["alerts"]
        assert am_alert["labels"] == {"alertname": "disk_full", "severity": "high", "host": "db1"}
        assert am_alert["fingerprint"] == "disk-full-db1" and am_alert["endsAt"].startswith("0001-")
        assert ended["alerts"][0]["endsAt"] > am_alert["startsAt"]


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
            return [m for _, m in receiver.received
                    if any(a.get("rule") == "disk_full_db2" for a in m.get("alerts", []))]  # fmt: skip

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


def failed_runs(n: int, workflow: str, service: str) -> list[dict[str, Any]]:
    """``n`` runs of ``workflow`` failing on their one step's call to ``service``."""
    runs = [f"r-{uuid.uuid4().hex[:10]}" for _ in range(n)]
    return [failure(kind, run, workflow, service) for run in runs for kind in ("StepFailed", "RunFailed")]


async def define_rules(http: httpx.AsyncClient, receiver: Receiver, *rules: dict[str, Any]) -> None:
    hook = {"secret": {"url": f"http://127.0.0.1:{receiver.port}/hook/{TOKEN}"}}  # as the first test stores it
    assert (await http.put("/api/credentials/ops-hook", json=hook, headers=KEY)).is_success
    for rule in rules:
        assert (await http.post("/api/workflows/monitoring/rules", json=rule, headers=KEY)).status_code == 201
    await asyncio.sleep(2)  # the rules reach the agent before the failures


async def firing(http: httpx.AsyncClient, rule: str) -> dict[str, Any] | None:
    r = await http.get("/api/workflows/monitoring/alerts", params={"rule": rule}, headers=KEY)
    return next((a for a in r.json()["alerts"] if a["state"] == "firing"), None)


async def waiting(http: httpx.AsyncClient, rule: str) -> dict[str, Any] | None:
    """The rule's firing alert once it is recorded as waiting for its group's first notification."""
    alert = await firing(http, rule)
    return alert if alert and alert["notify_after"] else None


async def explained(http: httpx.AsyncClient, service_rule: str, workflow_rule: str) -> tuple[Any, Any] | None:
    """The firing alerts of both rules, once the service's was told and the workflow's recorded as muted."""
    service, workflow = await firing(http, service_rule), await firing(http, workflow_rule)
    return (service, workflow) if service and workflow and service["notifications"] and workflow["muted"] else None


def failure(kind: str, run_id: str, workflow: str, service: str) -> dict[str, Any]:
    """A failed run of ``workflow`` (``RunFailed``), or its step's failed call to ``service`` (``StepFailed``)."""
    event = {
        "type": kind,
        "event_id": str(uuid.uuid4()),
        "occurred_at": datetime.now(UTC).isoformat(),
        "tenant_id": "tenant-a",
        "workflow_id": workflow,
        "run_id": run_id,
        "payload": {"duration_ms": 30.0},
    }
    if kind == "StepFailed":
        event["step_id"] = "upsert"
        event["payload"] |= {
            "service": service,
            "action": "upsert",
            "error": {"type": "ServiceUnavailable", "message": "503"},
        }
    return event  # fmt: skip


async def test_a_service_alert_inhibits_the_alert_of_a_workflow_that_calls_the_service(stack):
    """A service fails, and so do the runs of a workflow calling it: the service's alert is told, the workflow's
    is recorded as inhibited by it and not told."""
    serve, _worker, _sandbox, receiver, _smtp = stack
    channel = {"type": "webhook", "credential_id": "ops-hook"}
    common = {"condition": "failures > 0", "range_s": 10, "channels": [channel]}
    service_rule = {"name": "inhib-service-down", "scope": "service", "match": "inhib-crm", **common}
    workflow_rule = {"name": "inhib-runs-failing", "scope": "workflow", "match": "wf-inhib", **common}

    async with httpx.AsyncClient(base_url=serve.url, timeout=30) as http:
        await define_rules(http, receiver, service_rule, workflow_rule)
        events = failed_runs(3, "wf-inhib", "inhib-crm")
        assert (await http.post("/api/events", json={"events": events}, headers=KEY)).status_code == 202
        service_alert, workflow_alert = await eventually(
            lambda: explained(http, "inhib-service-down", "inhib-runs-failing"), timeout_s=60
        )
        assert workflow_alert["labels"]["services"] == "inhib-crm"
        assert workflow_alert["muted"] == f"inhibited:{service_alert['alert_id']}"
        assert workflow_alert["notifications"] == 0
        told = {a.get("rule") for _, m in receiver.received for a in m.get("alerts", [])}
        assert "inhib-service-down" in told and "inhib-runs-failing" not in told

        async def by_labels(*labels: str) -> list[str]:
            r = await http.get("/api/workflows/monitoring/alerts", params={"label": list(labels)}, headers=KEY)
            assert r.status_code == 200, r.text
            return [a["alert_id"] for a in r.json()["alerts"]]

        workflow_alerts = await by_labels("workflow=wf-inh*", "services=inhib-?rm")  # the built-in rule's too
        assert workflow_alert["alert_id"] in workflow_alerts
        assert sorted(workflow_alerts) == sorted(await by_labels("workflow=wf-inhib", "scope=workflow"))
        assert await by_labels("service=inhib-crm", "scope=service") == [service_alert["alert_id"]]
        assert await by_labels("workflow=wf-inhib", "services=other") == []
        bad = await http.get("/api/workflows/monitoring/alerts", params={"label": "workflow"}, headers=KEY)
        assert bad.status_code == 422 and "expected name=glob" in bad.text


async def test_a_workflow_alert_waiting_for_its_group_is_inhibited_by_a_service_alert_firing_later(stack):
    """Three runs fail: the workflow's rule fires, and its group waits 10 s. A fourth failed call fires the
    service's rule, which explains the workflow's alert: told at once, that alert would have paged before the
    outage behind it was known; waiting, it is inhibited and never told."""
    serve, _worker, _sandbox, receiver, _smtp = stack
    channel = {"type": "webhook", "credential_id": "ops-hook"}
    common = {"range_s": 30, "channels": [channel]}  # both still firing when the wait ends
    service_rule = {"name": "wait-service-down", "scope": "service", "match": "wait-crm",
                    "condition": "failures >= 4", **common}  # fmt: skip
    workflow_rule = {"name": "wait-runs-failing", "scope": "workflow", "match": "wf-wait",
                     "condition": "failures > 0", "group_wait_s": 10, **common}  # fmt: skip

    async with httpx.AsyncClient(base_url=serve.url, timeout=30) as http:
        await define_rules(http, receiver, service_rule, workflow_rule)
        events = failed_runs(3, "wf-wait", "wait-crm")
        assert (await http.post("/api/events", json={"events": events}, headers=KEY)).status_code == 202
        workflow_alert = await eventually(lambda: waiting(http, "wait-runs-failing"), timeout_s=30)
        assert workflow_alert["labels"]["services"] == "wait-crm" and workflow_alert["notifications"] == 0
        wait_s = (datetime.fromisoformat(workflow_alert["notify_after"])
                  - datetime.fromisoformat(workflow_alert["fired_at"])).total_seconds()  # fmt: skip
        assert abs(wait_s - 10) < 0.01, workflow_alert
        events = failed_runs(1, "wf-wait", "wait-crm")
        assert (await http.post("/api/events", json={"events": events}, headers=KEY)).status_code == 202
        service_alert, workflow_alert = await eventually(
            lambda: explained(http, "wait-service-down", "wait-runs-failing"), timeout_s=60
        )
        assert workflow_alert["muted"] == f"inhibited:{service_alert['alert_id']}"
        assert workflow_alert["notify_after"] is None  # inhibited: it no longer waits to be told
        fired_at = datetime.fromisoformat(workflow_alert["fired_at"]).timestamp()
        await asyncio.sleep(max(0.0, fired_at + 12 - time.time()))  # past the group's wait
        workflow_alert = await firing(http, "wait-runs-failing")
        assert workflow_alert is not None and workflow_alert["notifications"] == 0
        told = {a.get("rule") for _, m in receiver.received for a in m.get("alerts", [])}
        assert "wait-service-down" in told and "wait-runs-failing" not in told


async def test_routes_send_alerts_by_their_labels_besides_their_own_channels(stack):
    serve, _worker, _sandbox, receiver, _smtp = stack
    pager = {"type": "webhook", "credential_id": "ops-hook", "format": "alertmanager"}
    routes = [{"matchers": {"rule": "routed-*", "severity": "critical"}, "channels": [pager]}]

    def raised(rule: str, severity: str) -> dict[str, Any]:
        return {"alert_id": f"{rule}-{uuid.uuid4().hex[:6]}", "rule": rule, "severity": severity,
                "labels": {"host": "db3"}, "channels": [{"type": "log"}]}  # fmt: skip

    def paged() -> list[str]:
        return [a["labels"]["alertname"] for _, m in receiver.received if m.get("version") == "4"
                for a in m["alerts"] if a["labels"]["alertname"].startswith("routed-")]  # fmt: skip

    async with httpx.AsyncClient(base_url=serve.url, timeout=30) as http:
        hook = {"secret": {"url": f"http://127.0.0.1:{receiver.port}/hook/{TOKEN}"}}  # as the first test stores it
        assert (await http.put("/api/credentials/ops-hook", json=hook, headers=KEY)).is_success
        assert (await http.put("/api/workflows/monitoring/routes", json={"routes": routes}, headers=KEY)).is_success
        await asyncio.sleep(2)  # the routes reach the agent before the alerts
        for body in (raised("routed-minor", "low"), raised("routed-page", "critical")):
            assert (await http.post("/api/workflows/monitoring/alerts", json=body, headers=KEY)).status_code == 202

        async def the_page():
            return paged()

        assert await eventually(the_page) == ["routed-page"]  # the low one, sent first, matched no route
        assert (await http.put("/api/workflows/monitoring/routes", json={"routes": []}, headers=KEY)).is_success
