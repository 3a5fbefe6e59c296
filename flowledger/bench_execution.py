"""``flowledger bench execution``: the executor against sandbox services at zero latency.

Starts its own broker, API (with projector), sandbox and Faust workers on free
ports (as ``flowledger up`` does: an executor worker and a monitor worker
running the metric agents over the same events; ``--workers all`` runs both
in one process instead), defines a six-step workflow with two parallel branches

    fetch -> (enrich -> task) | (lookup -> sheet) -> notify

warms the worker up with one run, then starts ``--runs`` runs at ``--rate``
runs per second and reads every run event back from the log:

* ``steps_per_s``: steps succeeded over the time from the first StartRun to
  the last RunSucceeded;
* ``step_dispatch_*``: from the moment a step became ready (its last
  dependency's StepSucceeded, or StartRun) to the moment its connector call
  began (StepSucceeded time minus the call's duration): the executor's
  reaction, the log round trip and any wait for a free execution slot;
* ``step_call_*``: the connector call itself (HTTP to the sandbox and back),
  during which the step holds one of the execution slots;
* ``run_p99_ms``: StartRun to RunSucceeded.
"""

import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from flowledger import progress
from flowledger.bench import cpu_seconds, live_children, percentile
from flowledger.broker import EmbeddedBroker, ensure_topics, free_port
from flowledger.client import Producer
from flowledger.procs import child_env, flowledger_command, spawn, terminate, wait_http
from schemas import topics
from schemas.workflows import StartRun, StartRunPayload, WorkflowDefinition

KEY, TENANT = "bench-key", "bench"
STEPS = [
    {"id": "fetch", "service": "gmail", "action": "get_message"},
    {"id": "enrich", "service": "clearbit", "action": "enrich", "params": {"email": "{{ steps.fetch.output.id }}"}},
    {"id": "task", "service": "asana", "action": "create_task", "needs": ["enrich"]},
    {"id": "lookup", "service": "hubspot", "action": "find_contact", "needs": ["fetch"]},
    {"id": "sheet", "service": "google-sheets", "action": "append_row", "needs": ["lookup"]},
    {"id": "notify", "service": "slack", "action": "post_message", "needs": ["task", "sheet"]},
]


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class LogReader:
    """Every run event on workflow-events from now on, by run."""

    def __init__(self, bootstrap: str) -> None:
        # Read in bulk (up to 256 KiB or 100 ms per fetch): the reader shares the machine with the
        # system it measures, and the figures come from the events' own timestamps (only the end
        # of the steps_per_s interval is an arrival time, so it can only come later).
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, check_crcs=False,
            fetch_min_bytes=256 * 1024, fetch_max_wait_ms=100,
        )  # fmt: skip
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.finished: dict[str, float] = {}

    async def start(self) -> None:
        await self.consumer.start()
        await self.consumer.topics()
        parts = [
            TopicPartition(topics.WORKFLOW_EVENTS, p)
            for p in sorted(self.consumer.partitions_for_topic(topics.WORKFLOW_EVENTS) or ())
        ]
        self.consumer.assign(parts)
        await self.consumer.seek_to_end(*parts)

    async def read_until(self, run_ids: set[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with progress.bar("runs finished", len(run_ids), "run", when=len(run_ids) > 1) as shown:
            while not run_ids <= self.finished.keys():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{len(run_ids - self.finished.keys())} runs did not finish in {timeout_s:.0f}s")
                await self.poll(200)
                shown.update(len(run_ids & self.finished.keys()) - shown.n)

    async def poll(self, timeout_ms: int) -> int:
        """Read what the log has (waiting up to ``timeout_ms``); returns the number of run events read."""
        read = 0
        fetched = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=5000)
        for messages in fetched.values():
            for message in messages:
                value = orjson.loads(message.value)
                for event in value if isinstance(value, list) else [value]:
                    read += 1
                    self.events.setdefault(event["run_id"], []).append(event)
                    if event["type"] in ("RunSucceeded", "RunFailed", "RunCancelled"):
                        self.finished[event["run_id"]] = time.perf_counter()
        return read

    async def stop(self) -> None:
        await self.consumer.stop()


def _at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["occurred_at"])


def analyse(events: list[dict[str, Any]], started_at: datetime) -> tuple[list[float], float | None, int]:
    """Dispatch delays (ms), run duration (ms) and steps succeeded of one run."""
    by_id = {e["event_id"]: e for e in events}
    starts = {(e["step_id"], e["payload"]["attempt"]): e for e in events if e["type"] == "StepStarted"}
    dispatch = []
    succeeded = 0
    for event in events:
        if event["type"] != "StepSucceeded":
            continue
        succeeded += 1
        started = starts.get((event["step_id"], event["payload"]["attempt"]))
        cause = by_id.get(started["causation_id"]) if started else None
        ready_at = _at(cause) if cause else started_at
        call_began = _at(event).timestamp() - event["payload"]["duration_ms"] / 1000
        dispatch.append((call_began - ready_at.timestamp()) * 1000)
    end = next((e for e in events if e["type"] == "RunSucceeded"), None)
    duration = (_at(end) - started_at).total_seconds() * 1000 if end else None
    return dispatch, duration, succeeded


async def measure(
    bootstrap: str, api: str, runs: int, rate: float, on_start: Callable[[], None] = lambda: None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=30) as http:
        workflow = {"id": "bench-exec", "name": "bench", "trigger": {"service": "webhook", "event": "call"},
                    "steps": STEPS}  # fmt: skip
        (await http.post("/api/workflows", json=workflow)).raise_for_status()
    definition = WorkflowDefinition.model_validate({k: v for k, v in workflow.items() if k != "id"})
    reader = LogReader(bootstrap)
    await reader.start()
    async with Producer(bootstrap, linger_ms=1) as producer:

        async def start_runs(count: int, per_s: float) -> dict[str, datetime]:
            begun: dict[str, datetime] = {}
            t0 = time.perf_counter()
            for i in progress.bar("runs started", count, "run", iterable=range(count), when=count > 1):
                run_id = f"bench-{uuid.uuid4().hex[:12]}"
                now = datetime.now(UTC)
                command = StartRun(
                    event_id=str(uuid.uuid4()), occurred_at=now, tenant_id=TENANT, workflow_id="bench-exec",
                    run_id=run_id, payload=StartRunPayload(definition_version=1, definition=definition),
                )  # fmt: skip
                await producer.send([command])
                begun[run_id] = now
                if per_s > 0:
                    delay = t0 + (i + 1) / per_s - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
            return begun

        say("warming up the worker (its consumer group join takes a while) ...")
        warm = await start_runs(1, 0)
        await reader.read_until(set(warm), timeout_s=180)
        say(f"running {runs} runs at {rate:g} runs/s ...")
        on_start()
        t_start = time.perf_counter()
        begun = await start_runs(runs, rate)
        await reader.read_until(set(begun), timeout_s=120 + runs / max(rate, 1) * 2)
    t_end = max(reader.finished[r] for r in begun)
    await reader.stop()

    dispatch: list[float] = []
    durations: list[float] = []
    calls: list[float] = []
    steps = 0
    for run_id, started_at in begun.items():
        events = reader.events.get(run_id, [])
        d, duration, succeeded = analyse(events, started_at)
        dispatch += d
        calls += [e["payload"]["duration_ms"] for e in events if e["type"] == "StepSucceeded"]
        steps += succeeded
        if duration is not None:
            durations.append(duration)
    return {
        "bench": "execution",
        "runs": runs,
        "runs_succeeded": len(durations),
        "steps_per_s": round(steps / (t_end - t_start), 1),
        "step_dispatch_p50_ms": round(statistics.median(dispatch), 2),
        "step_dispatch_p99_ms": round(percentile(dispatch, 0.99), 2),
        "step_call_p50_ms": round(statistics.median(calls), 2),
        "step_call_p99_ms": round(percentile(calls, 0.99), 2),
        "run_p50_ms": round(statistics.median(durations), 1),
        "run_p99_ms": round(percentile(durations, 0.99), 1),
        "rate_runs_per_s": rate,
    }


WORKER_LAYOUTS = {"split": ("executor", "monitor"), "all": ("all",)}
"""``split``: one process per worker role, as ``flowledger up`` runs them; ``all``: one process for both."""


def bench_execution(*, runs: int, rate: float, workers: str = "split") -> int:
    with tempfile.TemporaryDirectory(prefix="flowledger-bench-exec-") as tmp, EmbeddedBroker() as broker:
        asyncio.run(ensure_topics(broker.bootstrap))
        tmp_path = Path(tmp)
        sandbox_port, api_port = free_port(), free_port()
        env = child_env(
            KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap,
            CLICKHOUSE_URL=f"chdb://{tmp_path / 'clickhouse'}",
            FLOWLEDGER_DATA_DIR=tmp,
            PYTHON_API_PORT=str(api_port),
            FLOWLEDGER_API_KEYS=f"{KEY}={TENANT}",
            FLOWLEDGER_SERVICE_BASE_URL=f"http://127.0.0.1:{sandbox_port}",
        )
        procs = {
            "sandbox": spawn(flowledger_command("sandbox", "--port", str(sandbox_port), "--latency", "zero"), env,
                             log=tmp_path / "sandbox.log"),
            "serve": spawn(flowledger_command("serve"), env, log=tmp_path / "serve.log"),
        }  # fmt: skip
        for role in WORKER_LAYOUTS[workers]:
            command = flowledger_command("worker", "--role", role)
            procs[f"worker-{role}"] = spawn(command, env, log=tmp_path / f"worker-{role}.log")
        try:
            wait_http(f"http://127.0.0.1:{sandbox_port}/_sandbox/stats", 60, procs)
            wait_http(f"http://127.0.0.1:{api_port}/healthz", 60, procs)

            def cpu() -> dict[str, float]:
                used = {name: cpu_seconds(p.pid) + sum(cpu_seconds(c) for c in live_children(p.pid))
                        for name, p in procs.items()}  # fmt: skip
                if broker.pid:
                    used["broker"] = cpu_seconds(broker.pid)
                used["bench client"] = cpu_seconds(os.getpid())
                return used

            before: dict[str, float] = {}
            result = asyncio.run(
                measure(broker.bootstrap, f"http://127.0.0.1:{api_port}", runs, rate, lambda: before.update(cpu()))
            )
            result["workers"] = "+".join(WORKER_LAYOUTS[workers])
            after = cpu()
            say("cpu seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in after.items()))
            say("cpu seconds during the measured runs: "
                + ", ".join(f"{k} {after[k] - before.get(k, 0):.1f}" for k in after))  # fmt: skip
        except RuntimeError as exc:
            say(f"bench execution: {exc}; logs in {tmp}")
            for role in WORKER_LAYOUTS[workers]:
                say(f"worker-{role}.log: " + (tmp_path / f"worker-{role}.log").read_text()[-3000:])
            return 1
        finally:
            for proc in procs.values():
                terminate(proc)
    print(orjson.dumps(result).decode(), flush=True)
    return 0
