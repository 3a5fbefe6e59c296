"""The producer example of docs/producers.md, run as a user runs it, against the real embedded stack."""

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.integration.conftest import auth, eventually

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "report_step_results.py"


def run_example(bootstrap: str, run_id: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--bootstrap", bootstrap, "--tenant", "tenant-a", "--run-id", run_id,
         "--started-at", "2026-03-02T09:14:06+00:00"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout


async def test_the_example_reports_a_run_that_reads_back_through_the_api_once_even_if_sent_twice(broker, http):
    run_id = f"run-example-{uuid.uuid4().hex[:8]}"
    first = run_example(broker.bootstrap, run_id)
    assert first == f"published 8 events of run {run_id} in 1 Kafka message(s)\n"
    assert run_example(broker.bootstrap, run_id) == first  # a producer that re-sends after a crash

    async def succeeded():
        r = await http.get(f"/api/runs/{run_id}", headers=auth("key-a"))
        return r.json() if r.status_code == 200 and r.json()["status"] == "succeeded" else None

    run = await eventually(succeeded)
    assert (run["workflow_id"], run["duration_ms"]) == ("important-email-to-asana-slack", 2340.0)
    steps = {s["step_id"]: s for s in run["steps"]}
    task = steps["create-task"]
    assert (task["status"], task["attempts"], task["service"]) == ("succeeded", 2, "asana")
    assert task["total_duration_ms"] == 1010.0  # 400 + 610: each attempt counted once
    assert task["last_error"]["status_code"] == 429
    assert task["output"] == {"task_id": "1204938475610293"}
    assert (steps["notify-team"]["status"], steps["notify-team"]["attempts"]) == ("succeeded", 1)
