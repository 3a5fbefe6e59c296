"""`WORKFLOW_MONITORING_ENABLED=false` on a stack of its own: windows still close, rules are not evaluated.

An operator turning evaluation off keeps the metrics and the alerts other
systems raise; only the rules stop. The failures below would fire the rule
within a second or two with evaluation on; the test waits for more than that:
until the window holding them has closed and been projected.
"""

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from flowledger.broker import EmbeddedBroker, ensure_topics
from tests.integration.conftest import ServeProcess, WorkerProcess, auth, eventually

pytestmark = pytest.mark.integration

KEY = auth("key-a")
WORKFLOW = f"wf-off-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, sandbox, smtp):
    root = tmp_path_factory.mktemp("monitoring-off")
    with EmbeddedBroker() as broker:
        asyncio.run(ensure_topics(broker.bootstrap))
        serve = ServeProcess(broker.bootstrap, root / "api", group="monitoring-off-projector")
        serve.env["FLOWLEDGER_METRICS_WINDOW_S"] = "5"
        serve.start()
        worker = WorkerProcess(broker.bootstrap, root / "worker", sandbox, smtp.port)
        worker.env |= {
            "WORKFLOW_MONITORING_ENABLED": "false",
            "FLOWLEDGER_METRICS_WINDOW_S": "5", "FLOWLEDGER_METRICS_GRACE_S": "1", "FLOWLEDGER_METRICS_IDLE_S": "2",
        }  # fmt: skip
        worker.start()
        try:
            yield serve
        finally:
            worker.stop()
            serve.stop()


def failed_run(run_id: str) -> list[dict[str, Any]]:
    common = {"occurred_at": datetime.now(UTC).isoformat(), "tenant_id": "tenant-a", "workflow_id": WORKFLOW,
              "run_id": run_id}  # fmt: skip
    step = {"service": "crm", "action": "upsert", "error": {"type": "ServiceUnavailable", "message": "503"}}
    return [
        {"type": "StepFailed", "event_id": str(uuid.uuid4()), "step_id": "upsert", **common,
         "payload": {"duration_ms": 30.0, **step}},
        {"type": "RunFailed", "event_id": str(uuid.uuid4()), **common, "payload": {"duration_ms": 30.0}},
    ]  # fmt: skip


async def test_with_monitoring_off_windows_close_and_raised_alerts_fire_but_no_rule_does(stack):
    rule = {"name": "off-runs-failing", "scope": "workflow", "match": WORKFLOW, "condition": "failures > 0",
            "range_s": 10}  # fmt: skip
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as http:
        assert (await http.post("/api/workflows/monitoring/rules", json=rule, headers=KEY)).status_code == 201
        await asyncio.sleep(2)  # the rule reaches the agent before the failures, as with evaluation on
        events = [e for i in range(5) for e in failed_run(f"r-{i}-{uuid.uuid4().hex[:6]}")]
        assert (await http.post("/api/events", json={"events": events}, headers=KEY)).status_code == 202

        async def closed_failures() -> int | None:
            """The failures in the workflow's closed windows, once all five are there."""
            r = await http.get("/api/workflows/monitoring/metrics", headers=KEY,
                               params={"scope": "workflow", "key": WORKFLOW, "live": "false"})  # fmt: skip
            assert r.status_code == 200, r.text
            failures = sum(w["failures"] for s in r.json()["series"] for w in s["windows"])
            return failures if failures >= 5 else None

        assert await eventually(closed_failures, timeout_s=60) == 5

        raised = {"alert_id": f"outside-{uuid.uuid4().hex[:6]}", "rule": "disk_full", "severity": "high"}
        assert (await http.post("/api/workflows/monitoring/alerts", json=raised, headers=KEY)).status_code == 202

        async def states(rule: str) -> list[tuple[str, int]]:
            """The rule's alerts: their state and how many notifications were delivered."""
            r = await http.get("/api/workflows/monitoring/alerts", params={"rule": rule}, headers=KEY)
            return [(a["state"], a["notifications"]) for a in r.json()["alerts"] if a["notifications"]]

        assert await eventually(lambda: states("disk_full"), timeout_s=30) == [("firing", 1)]  # to the log
        r = await http.get("/api/workflows/monitoring/alerts", params={"status": "firing"}, headers=KEY)
        assert [a["rule"] for a in r.json()["alerts"]] == ["disk_full"]  # neither rule, nor the built-in ones
