"""SIGKILL the projector's process mid-stream: after a restart nothing is lost or doubled."""

import asyncio
import subprocess
import sys
import uuid

import httpx
import pytest

from tests.factories import run_with_retry
from tests.integration.conftest import ServeProcess, auth, eventually

pytestmark = pytest.mark.integration

RUNS = 400  # x 10 events


async def test_projector_killed_mid_stream_loses_and_duplicates_nothing(broker, producer, tmp_path):
    wf = f"wf-crash-{uuid.uuid4().hex[:6]}"
    serve = ServeProcess(broker.bootstrap, tmp_path / "crash", group=f"crash-{uuid.uuid4().hex[:6]}").start()
    try:
        async with httpx.AsyncClient(base_url=serve.url, timeout=30) as http:
            before = (await http.get("/api/events/stats", headers=auth("key-crash"))).json()["events"]

            async def produce():
                for i in range(RUNS):
                    await producer.send(run_with_retry("tenant-crash", wf, f"{wf}-{i}", t0=i))
                    if i % 20 == 0:
                        await asyncio.sleep(0.02)

            producing = asyncio.create_task(produce())

            async def projecting():
                r = await http.get("/api/events/stats", headers=auth("key-crash"))
                return r.json()["events"] > before

            await eventually(projecting, every_s=0.02)
            serve.kill()  # SIGKILL: no shutdown, no final commit
            await producing

        serve.start()
        async with httpx.AsyncClient(base_url=serve.url, timeout=30) as http:

            async def all_projected():
                r = await http.get("/api/events/stats", headers=auth("key-crash"))
                return r.json()["events"] == before + RUNS * 10

            await eventually(all_projected, timeout_s=60)
            runs, cursor = [], None
            while True:
                params = {"limit": 500} | ({"cursor": cursor} if cursor else {})
                page = (await http.get(f"/api/workflows/{wf}/runs", params=params, headers=auth("key-crash"))).json()
                runs += page["runs"]
                cursor = page["next_cursor"]
                if not cursor:
                    break
            assert len(runs) == RUNS
            assert {r["status"] for r in runs} == {"succeeded"}
            for i in (0, RUNS // 2, RUNS - 1):
                run = (await http.get(f"/api/runs/{wf}-{i}", headers=auth("key-crash"))).json()
                assert [s["cost"] for s in run["steps"]] == [0.25, 0.25, 0.25]
                assert [s["attempts"] for s in run["steps"]] == [1, 2, 1]
                assert run["steps"][1]["total_duration_ms"] == 1500.0
            before_replay = [
                (await http.get(f"/api/runs/{wf}-{i}", headers=auth("key-crash"))).json() for i in (0, 7, RUNS - 1)
            ]
        serve.stop()

        # `flowledger replay` on the stopped stack's warehouse rebuilds the projections.
        result = subprocess.run(
            [sys.executable, "-m", "flowledger", "replay", "--source", "archive"],
            env=serve.env | {"KAFKA_BOOTSTRAP_SERVERS": ""}, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "replayed" in result.stdout and "from archive" in result.stdout
        serve.start()
        async with httpx.AsyncClient(base_url=serve.url, timeout=30) as http:
            after_replay = [
                (await http.get(f"/api/runs/{wf}-{i}", headers=auth("key-crash"))).json() for i in (0, 7, RUNS - 1)
            ]
        assert after_replay == before_replay
    finally:
        serve.stop()
