"""``flowledger bench alerts``: from the first failing step to the notification received.

Starts its own broker, API and workers (one per role, as ``make up`` runs
them; metric windows of ``--window-s``) and an HTTP receiver, points
``error_rate_increase`` at the receiver through a stored webhook credential
(``--condition`` replaces its condition, e.g. ``failures > 5``; ``--range-s``
gives it its own range instead of the metric window's), and keeps
``--alerts`` workflows running (five successful runs a second each, on a
fixed schedule, event time = now). One after another, at moments spread over
the rule's range, each workflow starts failing: its runs fail instead of
succeeding (so a rate over the last minute crosses 0.1 only after 6 s), or
with ``--burst-per-s N`` its runs keep succeeding and N failing runs a second
come on top (a retry storm, a batch of triggers meeting a broken service).
The time from handing its first failing step to the producer to the receiver
getting the notification is one sample.

Prints ``notify_p50_ms`` and ``notify_p99_ms``, and
``pipeline_p50_ms``/``pipeline_p99_ms``: from the tick at which the rule's
condition held (the alert's ``started_at``) to the notification, the part the
pipeline adds to the time a rate over the window takes to cross its
threshold. ``records`` is what each topic holds at the end: the messages the
pipeline wrote for the input it got. Each alert's figures go to stderr, and
``--keep-logs DIR`` keeps the processes' logs.
"""

import asyncio
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiohttp import web

from flowledger import progress
from flowledger.bench import percentile
from flowledger.broker import EmbeddedBroker, ensure_topics, free_port
from flowledger.client import Producer
from flowledger.lag import topic_records
from flowledger.procs import flowledger_command, spawn, stack_env, terminate, wait_http
from flowledger.stack import WORKER_ROLES
from schemas.runs import RunFailed, RunStarted, RunSucceeded, StepFailed, StepSucceeded

KEY, TENANT = "bench-key", "bench"
RUNS_PER_S = 5.0
"""Each workflow's traffic."""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_events(workflow: str, *, failing: bool) -> list[Any]:
    ids = {"tenant_id": TENANT, "workflow_id": workflow, "run_id": f"r-{uuid.uuid4().hex[:12]}"}
    now = datetime.now(UTC)
    step = {**ids, "event_id": str(uuid.uuid4()), "occurred_at": now, "step_id": "sync"}
    base = {"service": "crm", "action": "upsert", "duration_ms": 12.0}
    if failing:
        error = {"type": "ServerError", "message": "503", "status_code": 503}
        return [
            RunStarted(event_id=str(uuid.uuid4()), occurred_at=now, **ids),
            StepFailed(**step, payload={**base, "error": error}),
            RunFailed(event_id=str(uuid.uuid4()), occurred_at=now, **ids),
        ]
    return [
        RunStarted(event_id=str(uuid.uuid4()), occurred_at=now, **ids),
        StepSucceeded(**step, payload=base),
        RunSucceeded(event_id=str(uuid.uuid4()), occurred_at=now, **ids, payload={"duration_ms": 12.0}),
    ]


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.arrived: dict[str, float] = {}
        self.started: dict[str, float] = {}
        """workflow -> the tick (event time) at which its alert's condition held."""
        self.event = asyncio.Event()

    async def start(self) -> web.AppRunner:
        async def hook(request: web.Request) -> web.Response:
            message = await request.json()
            if message.get("status") == "firing":
                for alert in message["alerts"]:
                    workflow = alert["labels"].get("workflow", "")
                    self.arrived.setdefault(workflow, time.time())
                    self.started.setdefault(workflow, datetime.fromisoformat(alert["started_at"]).timestamp())
                self.event.set()
            return web.json_response({})

        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        return runner


async def paced(per_s: float, send: Callable[[], Coroutine[Any, Any, None]], stop: asyncio.Event) -> None:
    """``send()`` ``per_s`` times a second on a fixed schedule, each in a task of its own: a slow
    acknowledgement neither lowers the rate nor delays the next run."""
    sending: set[asyncio.Task[None]] = set()
    next_at = time.monotonic()
    while not stop.is_set():
        task = asyncio.create_task(send())
        sending.add(task)
        task.add_done_callback(sending.discard)
        next_at += 1 / per_s
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    await asyncio.gather(*sending)


async def measure(
    bootstrap: str,
    api: str,
    alerts: int,
    window_s: float,
    condition: str,
    range_s: float | None,
    burst_per_s: float,
) -> dict[str, Any]:
    receiver = Receiver()
    runner = await receiver.start()
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=30) as http:
        hook = {"secret": {"url": f"http://127.0.0.1:{receiver.port}/hook"}}
        (await http.put("/api/credentials/bench-hook", json=hook)).raise_for_status()
        rule = {"name": "error_rate_increase", "condition": condition, "severity": "critical",
                "cooldown_s": 3600, "channels": [{"type": "webhook", "credential_id": "bench-hook"}]}  # fmt: skip
        if range_s is not None:
            rule["range_s"] = range_s
        (await http.put("/api/workflows/monitoring/rules/error_rate_increase", json=rule)).raise_for_status()
    failing: set[str] = set()
    sent_fail: dict[str, float] = {}
    """workflow -> when its first failing run was handed to the producer."""
    failed_runs: dict[str, int] = {}
    workflows = ["wf-warm"] + [f"wf-{i}" for i in range(alerts)]
    async with Producer(bootstrap, linger_ms=0) as producer:

        async def send_run(workflow: str, *, fail: bool) -> None:
            if fail:
                sent_fail.setdefault(workflow, time.time())
                failed_runs[workflow] = failed_runs.get(workflow, 0) + 1
            await producer.send(run_events(workflow, failing=fail))

        async def traffic(workflow: str) -> None:
            fail = workflow in failing and workflow not in receiver.arrived and not burst_per_s
            await send_run(workflow, fail=fail)

        async def burst() -> None:
            await asyncio.gather(*(send_run(w, fail=True) for w in failing - receiver.arrived.keys()))

        stop = asyncio.Event()
        tasks = [asyncio.create_task(paced(RUNS_PER_S, partial(traffic, w), stop)) for w in workflows]
        if burst_per_s:
            tasks.append(asyncio.create_task(paced(burst_per_s, burst, stop)))
        say("warming up (the worker's consumer group join takes a while) ...")
        failing.add("wf-warm")
        deadline = time.monotonic() + 300
        while "wf-warm" not in receiver.arrived:
            if time.monotonic() > deadline:
                raise RuntimeError("no notification within 300 s")
            await asyncio.sleep(0.5)
        rng = random.Random(5)
        span = range_s or window_s
        say(f"{alerts} alerts, one workflow failing at a time, at random phases of the rule's {span:g} s range ...")
        for workflow in progress.bar("alerts", len(workflows) - 1, "alert", iterable=workflows[1:]):
            await asyncio.sleep(rng.uniform(0, span))
            failing.add(workflow)
            deadline = time.monotonic() + span * 3 + 30
            while workflow not in receiver.arrived and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*tasks)
    await runner.cleanup()
    for w in workflows[1:]:
        if w in receiver.arrived:
            at = datetime.fromtimestamp(sent_fail[w], UTC).strftime("%H:%M:%S.%f")[:-3]
            notify_s, pipeline_s = receiver.arrived[w] - sent_fail[w], receiver.arrived[w] - receiver.started[w]
            say(
                f"{w}: first failing step at {at}, notified {notify_s * 1000:,.0f} ms later "
                f"(pipeline {pipeline_s * 1000:,.0f} ms; {failed_runs[w]} failing runs sent by then)"
            )
    lags = [(receiver.arrived[w] - sent_fail[w]) * 1000 for w in workflows[1:] if w in receiver.arrived]
    pipeline = [(receiver.arrived[w] - receiver.started[w]) * 1000 for w in workflows[1:] if w in receiver.arrived]
    return {
        "bench": "alerts",
        "alerts": alerts,
        "notified": len(lags),
        "window_s": window_s,
        "range_s": range_s or window_s,
        "condition": condition,
        "burst_per_s": burst_per_s,
        "notify_p50_ms": round(percentile(lags, 0.5), 1),
        "notify_p99_ms": round(percentile(lags, 0.99), 1),
        "notify_max_ms": round(max(lags), 1) if lags else None,
        "pipeline_p50_ms": round(percentile(pipeline, 0.5), 1),
        "pipeline_p99_ms": round(percentile(pipeline, 0.99), 1),
    }


def bench_alerts(
    *,
    alerts: int,
    window_s: float,
    condition: str = "error_rate > 0.1",
    range_s: float | None = None,
    burst_per_s: float = 0.0,
    keep_logs: Path | None = None,
) -> int:
    with tempfile.TemporaryDirectory(prefix="flowledger-bench-alerts-") as tmp, EmbeddedBroker() as broker:
        asyncio.run(ensure_topics(broker.bootstrap))
        api_port = free_port()
        env = stack_env(
            broker.bootstrap,
            tmp,
            api_port,
            f"{KEY}={TENANT}",
            FLOWLEDGER_METRICS_WINDOW_S=str(window_s),
            FLOWLEDGER_METRICS_GRACE_S="1",
            FLOWLEDGER_METRICS_IDLE_S="2",
        )
        procs = {"serve": spawn(flowledger_command("serve"), env, log=Path(tmp) / "serve.log")}
        for role in WORKER_ROLES:
            procs[role] = spawn(flowledger_command("worker", "--role", role), env, log=Path(tmp) / f"{role}.log")
        try:
            wait_http(f"http://127.0.0.1:{api_port}/healthz", 60, procs)
            api = f"http://127.0.0.1:{api_port}"
            result = asyncio.run(measure(broker.bootstrap, api, alerts, window_s, condition, range_s, burst_per_s))
            result["records"] = asyncio.run(topic_records(broker.bootstrap))
        except RuntimeError as exc:
            say(f"bench alerts: {exc}")
            say((Path(tmp) / "monitor.log").read_text()[-3000:])
            return 1
        finally:
            for proc in procs.values():
                terminate(proc)
            if keep_logs is not None:
                keep_logs.mkdir(parents=True, exist_ok=True)
                for name in procs:
                    shutil.copy(Path(tmp) / f"{name}.log", keep_logs / f"{name}.log")
    print(orjson.dumps(result).decode(), flush=True)
    return 0
