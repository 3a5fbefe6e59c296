"""``flowledger up``: the embedded stack in the foreground.

Starts, in order: the Tansu broker (unless KAFKA_BOOTSTRAP_SERVERS is set),
topics, the API process (which runs the ClickHouse migrations and hosts the
projector, because it owns the embedded ClickHouse path), and two Faust
workers: the executor and the monitor (metric agents), in separate processes
so that neither's CPU slows the other. Ctrl-C or SIGTERM stops them in reverse order. Children run in their
own sessions (so a terminal's Ctrl-C reaches only this supervisor, which
stops them in order) and carry a parent-death signal (so even a SIGKILL of
the supervisor leaves none behind).
"""

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from flowledger.broker import EmbeddedBroker, ensure_topics, free_port, port_is_free
from flowledger.procs import child_env, flowledger_command, spawn, terminate, wait_http
from flowledger.settings import Settings, parse_api_keys

WORKER_ROLES = ("executor", "monitor")
"""One worker process per role: the executor's latency does not queue behind metric work."""

DEFAULT_BROKER_PORT = 9092
"""Tried first (FLOWLEDGER_BROKER_PORT overrides; 0 = any free port); a free port if taken."""


def dev_api_key(data_dir: Path) -> str:
    """The development key, made once per data dir and kept (mode 0600) for restarts."""
    path = data_dir / "dev-api-key"
    if path.exists():
        return path.read_text().strip()
    key = "fl_dev_" + secrets.token_urlsafe(24)
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return key


def up(settings: Settings, *, with_worker: bool = True, demo: bool = False) -> int:
    data_dir = settings.flowledger_data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    stopping = {"signal": None}

    def on_signal(signum: int, _frame: object) -> None:
        stopping["signal"] = signum  # type: ignore[assignment]

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    broker = None
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        bootstrap = settings.kafka_bootstrap_servers
        if not bootstrap:
            wanted = int(os.environ.get("FLOWLEDGER_BROKER_PORT", DEFAULT_BROKER_PORT))
            port = wanted if wanted and port_is_free(wanted) else None
            broker = EmbeddedBroker(port).start()
            bootstrap = broker.bootstrap
        asyncio.run(ensure_topics(bootstrap))

        keys = settings.flowledger_api_keys
        printed_key = None
        if not keys:
            printed_key = dev_api_key(data_dir)
            keys = f"{printed_key}=default"
        sandbox_url = None
        extra: dict[str, str] = {}
        if demo:
            sandbox_port = free_port()
            sandbox_url = f"http://127.0.0.1:{sandbox_port}"
            extra["FLOWLEDGER_SERVICE_BASE_URL"] = sandbox_url
            # the demo shows optimization results too: its workflows are analysed every minute unless told otherwise
            for name, value in (("WORKFLOW_INTELLIGENT_OPTIMIZATION_ENABLED", "true"),
                                ("WORKFLOW_OPTIMIZATION_INTERVAL", "60")):  # fmt: skip
                if name not in os.environ:
                    extra[name] = value
        env = child_env(
            **extra,
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            FLOWLEDGER_API_KEYS=keys,
            CLICKHOUSE_URL=settings.warehouse_url,
            FLOWLEDGER_DATA_DIR=str(data_dir),
            PYTHON_API_PORT=str(settings.python_api_port),
        )

        def start(*command: str) -> subprocess.Popen[bytes]:
            return spawn(flowledger_command(*command), env, own_session=True)

        if demo:
            children["sandbox"] = start("sandbox", "--port", str(sandbox_port), "--latency", "trace")
        children["serve"] = start("serve")
        base = f"http://{settings.flowledger_api_host}:{settings.python_api_port}"
        wait_http(f"{base}/healthz", 60, children)
        if with_worker:
            for role in WORKER_ROLES:
                children[f"worker --role {role}"] = start("worker", "--role", role)
        if demo:
            demo_key = printed_key or next(iter(parse_api_keys(keys)))
            env["FLOWLEDGER_DEMO_KEY"] = demo_key
            children["demo"] = start("demo", "--api", base, "--sandbox", str(sandbox_url))

        print(f"Flowledger is up.\n  API:      {base}  (OpenAPI: {base}/docs)")
        print(f"  Kafka:    {bootstrap}{'  (embedded, in memory)' if broker else ''}")
        print(f"  ClickHouse: {settings.warehouse_url}")
        if sandbox_url:
            print(f"  Sandbox:  {sandbox_url}  (demo workflows run continuously)")
        if printed_key:
            print(f"  API key:  {printed_key}   (tenant 'default')")
            print(f"  try:      curl -H 'Authorization: Bearer {printed_key}' {base}/api/workflows/monitoring/status")
        print("Ctrl-C stops everything.", flush=True)

        while stopping["signal"] is None:
            for name, proc in children.items():
                if proc.poll() is not None:
                    print(f"flowledger {name} exited ({proc.returncode}); stopping", file=sys.stderr)
                    return 1
            time.sleep(0.3)
        return 0
    except RuntimeError as exc:
        print(f"flowledger up: {exc}", file=sys.stderr)
        return 1
    finally:
        for proc in reversed(children.values()):
            terminate(proc)
        if broker:
            broker.stop()
        print(f"stopped ({os.getpid()}).", flush=True)
