"""The command line against the real stack: produce, schemas export, and `up` itself."""

import os
import signal
import subprocess
import sys
import time
import uuid

import httpx
import orjson
import pytest

from flowledger.broker import free_port
from flowledger.procs import alive, descendants
from projections.migrations import load_migrations
from tests.factories import as_json, failed_run
from tests.integration.conftest import auth, eventually

pytestmark = pytest.mark.integration


def flowledger(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flowledger", *args], capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=120,
    )  # fmt: skip


async def test_produce_refuses_a_file_with_bad_lines_then_publishes_a_good_one(broker, http, tmp_path):
    run_id = f"cli-{uuid.uuid4().hex[:8]}"
    lines = [orjson.dumps(e).decode() for e in as_json(failed_run("tenant-a", "wf-cli", run_id))]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([lines[0], "{oops", '{"type": "RunStarted"}', *lines[1:]]) + "\n")
    env = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap}
    result = flowledger("produce", str(bad), env=env)
    assert result.returncode == 2
    assert "bad.jsonl:2: not JSON" in result.stderr and "bad.jsonl:3:" in result.stderr
    assert "nothing published" in result.stderr

    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(lines) + "\n")
    result = flowledger("produce", str(good), env=env)
    assert result.returncode == 0, result.stderr
    assert "published 4 records" in result.stdout

    async def visible():
        r = await http.get(f"/api/runs/{run_id}", headers=auth("key-a"))
        return r.status_code == 200 and r.json()["status"] == "failed"

    await eventually(visible)


def test_init_creates_topics_and_migrations_idempotently(broker, tmp_path):
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "CLICKHOUSE_URL": f"chdb://{tmp_path / 'ch'}",
    }
    first = flowledger("init", env=env)
    assert first.returncode == 0, first.stderr
    assert f"migrations applied: {[m.version for m in load_migrations()]}" in first.stdout
    again = flowledger("init", env=env)
    assert again.returncode == 0 and "topics created: none; migrations applied: none" in again.stdout


def test_schemas_export_writes_one_file_per_record(tmp_path):
    result = flowledger("schemas", "export", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"StepFailed.schema.json", "RunStarted.schema.json", "Record.schema.json"} <= files
    schema = orjson.loads((tmp_path / "out" / "StepFailed.schema.json").read_bytes())
    assert "error" in str(schema)


def test_up_demo_serves_api_worker_and_demo_runs_and_ctrl_c_leaves_no_process(tmp_path):
    port = free_port()
    env = {
        **os.environ, "FLOWLEDGER_DATA_DIR": str(tmp_path / "data"), "PYTHON_API_PORT": str(port),
        "FLOWLEDGER_BROKER_PORT": "0", "FLOWLEDGER_WORKER_HEARTBEAT_S": "1",
    }  # fmt: skip
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    env.pop("FLOWLEDGER_API_KEYS", None)
    log = (tmp_path / "up.log").open("w+")
    up = subprocess.Popen(
        [sys.executable, "-m", "flowledger", "up", "--demo"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while "Ctrl-C stops everything" not in (tmp_path / "up.log").read_text():
            assert up.poll() is None, (tmp_path / "up.log").read_text()
            assert time.monotonic() < deadline, "stack not up within 60 s"
            time.sleep(0.2)
        key = (tmp_path / "data" / "dev-api-key").read_text().strip()
        assert key in (tmp_path / "up.log").read_text()
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200

        children = descendants(up.pid)
        assert len(children) >= 5  # broker, sandbox, API, worker, demo driver

        deadline = time.monotonic() + 120
        while True:
            body = httpx.get(f"http://127.0.0.1:{port}/api/workflows/monitoring/status", headers=auth(key)).json()
            if body["workers"]["status"] == "ok":
                break
            assert time.monotonic() < deadline, f"no worker heartbeat: {body['workers']}"
            time.sleep(1)
        assert body["broker"]["status"] == "ok"

        deadline = time.monotonic() + 90
        while True:  # the demo's runs execute against the sandbox
            page = httpx.get(
                f"http://127.0.0.1:{port}/api/workflows/new-lead-enrichment/runs",
                params={"status": "succeeded"}, headers=auth(key),
            ).json()  # fmt: skip
            if page.get("runs"):
                break
            assert time.monotonic() < deadline, "no demo run succeeded"
            time.sleep(1)
        children |= descendants(up.pid)
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(60)
    assert up.returncode == 0, (tmp_path / "up.log").read_text()[-3000:]
    time.sleep(0.5)
    assert [pid for pid in children if alive(pid)] == []


def test_bench_broker_prints_fetch_cost_by_log_length_and_by_fetch_setting():
    result = flowledger("bench", "broker", "--batches", "40", "--step", "20", "--poll-s", "0.5")
    assert result.returncode == 0, result.stderr
    figures = orjson.loads(result.stdout.strip().splitlines()[-1])
    assert figures["batches"] == 40
    assert set(figures["fetch_ms"]) == {"0", "20", "40"} and all(ms > 0 for ms in figures["fetch_ms"].values())
    settings = [(row["max_wait_ms"], row["min_bytes"]) for row in figures["polls"]]
    assert settings == [(10, 1), (100, 1), (100, 65536), (250, 1)]
    assert all(row["latency_p99_ms"] >= row["latency_p50_ms"] > 0 for row in figures["polls"])
