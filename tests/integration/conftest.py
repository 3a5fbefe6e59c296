"""The real embedded stack for integration tests: Tansu broker, chdb, API processes.

Everything listens on free ports and lives in temporary directories, and every
process started here is stopped when the session ends.
"""

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowledger.broker import EmbeddedBroker, ensure_topics, free_port
from flowledger.client import Producer
from flowledger.procs import child_preexec, terminate
from projections.migrations import migrate
from projections.warehouse import Warehouse

KEYS = {
    "key-a": "tenant-a", "key-b": "tenant-b", "key-crash": "tenant-crash", "key-gen": "tenant-gen",
    "key-history": "tenant-history", "key-patterns": "tenant-patterns",
    "key-trouble": "tenant-trouble", "key-opt": "tenant-opt", "key-routes": "tenant-routes", "key-op": "*",
}  # fmt: skip


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class ServeProcess:
    """``flowledger serve`` (API + projector) as a child process on a free port."""

    def __init__(self, bootstrap: str, data_dir: Path, *, group: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "CLICKHOUSE_URL": f"chdb://{data_dir / 'clickhouse'}",
            "FLOWLEDGER_DATA_DIR": str(data_dir),
            "PYTHON_API_PORT": str(self.port),
            "FLOWLEDGER_API_KEYS": ",".join(f"{k}={t}" for k, t in KEYS.items()),
            "FLOWLEDGER_PROJECTOR_GROUP": group,
        }
        self.log = data_dir / "serve.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60) -> "ServeProcess":
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "flowledger", "serve"], env=self.env, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=child_preexec,
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("serve did not become healthy")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)


@pytest.fixture(scope="session")
def broker():
    with EmbeddedBroker() as embedded:
        asyncio.run(ensure_topics(embedded.bootstrap))
        yield embedded


@pytest.fixture(scope="session")
def api(broker, tmp_path_factory):
    serve = ServeProcess(broker.bootstrap, tmp_path_factory.mktemp("api"), group="it-projector").start()
    yield serve
    serve.stop()


@pytest.fixture
async def http(api):
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
async def producer(broker):
    async with Producer(broker.bootstrap) as p:
        yield p


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory):
    """This test process's own chdb (one path per process)."""
    wh = Warehouse(f"chdb://{tmp_path_factory.mktemp('wh') / 'clickhouse'}")
    migrate(wh)
    yield wh
    wh.close()


async def eventually(check: Callable[[], Awaitable[Any]], timeout_s: float = 30, every_s: float = 0.2) -> Any:
    """Poll ``check`` until it returns a truthy value; fail with the last value."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(every_s)
    raise AssertionError(f"condition not met in {timeout_s}s; last: {last!r}")


async def define_workflow(
    http: httpx.AsyncClient, headers: dict[str, str], prefix: str, steps: list[dict[str, Any]]
) -> str:
    """A webhook-triggered workflow of ``steps`` under a fresh id, once the API serves it."""
    workflow_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
    body = {"id": workflow_id, "name": "t", "trigger": {"service": "webhook", "event": "call"}, "steps": steps}
    r = await http.post("/api/workflows", json=body, headers=headers)
    assert r.status_code == 201, r.text

    async def visible() -> bool:
        return (await http.get(f"/api/workflows/{workflow_id}", headers=headers)).status_code == 200

    await eventually(visible)
    return workflow_id


async def start_run(http: httpx.AsyncClient, headers: dict[str, str], workflow_id: str) -> str:
    r = await http.post(f"/api/workflows/{workflow_id}/runs", json={"trigger": {}}, headers=headers)
    assert r.status_code == 202, r.text
    return str(r.json()["run_id"])


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited: {log.read_text()[-2000:]}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


class SandboxProcess:
    """``flowledger sandbox`` on a free port."""

    def __init__(self, directory: Path, latency: str = "fixed:150") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "sandbox.log"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "flowledger", "sandbox", "--port", str(self.port), "--latency", latency,
                 "--seed", "7"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=child_preexec,
            )  # fmt: skip
        _wait_http(f"{self.url}/_sandbox/stats", self.proc, self.log)

    def faults(self, schedule: list[dict[str, Any]]) -> None:
        httpx.put(f"{self.url}/_sandbox/faults", json=schedule).raise_for_status()

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/_sandbox/stats").json()

    def stop(self) -> None:
        terminate(self.proc)


class WorkerProcess:
    """``flowledger worker`` (the Faust app: executor and counters)."""

    def __init__(self, bootstrap: str, data_dir: Path, sandbox: SandboxProcess, smtp_port: int) -> None:
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "FLOWLEDGER_DATA_DIR": str(data_dir),
            "FLOWLEDGER_SERVICE_BASE_URL": sandbox.url,
            "FLOWLEDGER_SMTP_HOST": "127.0.0.1",
            "FLOWLEDGER_SMTP_PORT": str(smtp_port),
            "FLOWLEDGER_WORKER_HEARTBEAT_S": "1",
            "FLOWLEDGER_WORKER_SESSION_TIMEOUT_S": "10",  # a killed worker's partitions come back in seconds
        }
        self.log = data_dir / "worker.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "WorkerProcess":
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "flowledger", "worker"], env=self.env, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=child_preexec,
            )  # fmt: skip
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc, timeout_s=15)


class SmtpSink:
    """A real SMTP server (aiosmtpd) on a free port, keeping what it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Any] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
                sink.messages.append(envelope)
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory):
    process = SandboxProcess(tmp_path_factory.mktemp("sandbox"))
    yield process
    process.stop()


@pytest.fixture(scope="session")
def smtp():
    sink = SmtpSink()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def worker(broker, sandbox, smtp, tmp_path_factory):
    process = WorkerProcess(broker.bootstrap, tmp_path_factory.mktemp("worker"), sandbox, smtp.port).start()
    yield process
    process.stop()
