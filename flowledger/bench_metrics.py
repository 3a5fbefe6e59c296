"""``flowledger bench metrics``: the metric agents against a stream of step results.

Starts its own broker and Faust worker, waits until the worker closes a
window (its group join takes a while on the embedded broker), then produces
``--events`` run and step results as fast as it can: runs of 20 workflows of
5 steps over 10 services, spread over ``--span-min`` minutes of event time
that start now, so 1-minute windows close as the stream moves on. A final
run in each partition pushes the watermarks past the last window. Runs go
out 500 at a time, packed as the Python client packs them (records grouped
by partition, up to 500 a message); ``--per-run-messages`` sends one message
a run instead, as a producer that sends each run on its own would.

* ``eps``: events over the time from the first produce to the arrival of the
  last window on ``metric-windows``;
* ``window_emit_lag_*``: from the moment the first event beyond a window's
  end + grace was produced (the window could close) to the window's arrival;
* ``detector_us_per_point``: the worker's own count (detector time over
  points scored), from its last heartbeat.
"""

import asyncio
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from domain.windows import window_start
from flowledger import progress
from flowledger.bench import cpu_seconds, percentile
from flowledger.broker import EmbeddedBroker, ensure_topics
from flowledger.client import Producer, pack_encoded
from flowledger.procs import child_env, flowledger_command, spawn, terminate
from schemas import topics

TENANT = "bench"
WINDOW_S, GRACE_S = 60.0, 5.0
WORKFLOWS, STEPS, SERVICES = 20, 5, 10
CHUNK_RUNS = 500
"""Runs handed to the producer at a time (3,000 results): a busy executor's or ingest batch."""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_records(t: float, run: int, rng: random.Random) -> list[dict[str, Any]]:
    """One run's results as JSON-ready dicts: five steps, then the run."""
    wf = f"wf-{run % WORKFLOWS}"
    base = {"schema_version": 1, "tenant_id": TENANT, "workflow_id": wf, "run_id": f"r{run}-{uuid.uuid4().hex[:6]}"}
    records = []
    failed = False
    for s in range(STEPS):
        ms = rng.lognormvariate(4.0, 0.6)
        at = datetime.fromtimestamp(t + s * 0.01, UTC).isoformat()
        payload: dict[str, Any] = {"service": f"svc-{(run + s) % SERVICES}", "action": "call", "duration_ms": ms}
        if rng.random() < 0.02:
            failed = True
            payload["error"] = {"type": "ServerError", "message": "503", "status_code": 503}
            kind = "StepFailed"
        else:
            payload["cost"] = 0.001
            kind = "StepSucceeded"
        records.append({**base, "event_id": str(uuid.uuid4()), "type": kind, "occurred_at": at, "step_id": f"s{s}",
                        "payload": payload})  # fmt: skip
        if failed:
            break
    end = datetime.fromtimestamp(t + 0.06, UTC).isoformat()
    records.append({**base, "event_id": str(uuid.uuid4()), "type": "RunFailed" if failed else "RunSucceeded",
                    "occurred_at": end, "payload": {"duration_ms": 60.0}})  # fmt: skip
    return records


def closing_runs(t: float, first: int, rng: random.Random) -> list[list[dict[str, Any]]]:
    """One run at ``t`` in each partition of ``workflow-events``, to move every partition's watermark past ``t``.

    The last window closes only when every partition has seen an event beyond
    it; runs keyed at random would leave a partition out now and then.
    """
    count = topics.PARTITIONS[topics.WORKFLOW_EVENTS]
    partitioner, every = DefaultPartitioner(), list(range(count))
    runs: dict[int, list[dict[str, Any]]] = {}
    run = first
    while len(runs) < count:
        records = run_records(t, run, rng)
        runs.setdefault(partitioner(records[0]["run_id"].encode(), every, every), records)
        run += 1
    return [runs[p] for p in every]


def _messages(runs: list[list[dict[str, Any]]], per_run: bool) -> list[tuple[str, bytes, bytes]]:
    """The runs as the Python client packs them (records grouped by partition), or one message a run."""
    if per_run:
        return [(topics.WORKFLOW_EVENTS, r[0]["run_id"].encode(), orjson.dumps(r)) for r in runs]
    items = ((topics.WORKFLOW_EVENTS, record["run_id"], orjson.dumps(record)) for run in runs for record in run)
    return pack_encoded(items, topics.PARTITIONS)


class WindowReader:
    """Arrival time of every window on metric-windows, and the worker's last heartbeat."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, check_crcs=False)
        self.arrived: dict[tuple[str, str, str, float], float] = {}
        self.heartbeat: dict[str, Any] = {}

    async def start(self) -> None:
        await self.consumer.start()
        await self.consumer.topics()
        parts = [
            TopicPartition(topic, p)
            for topic in (topics.METRIC_WINDOWS, topics.WORKER_HEARTBEATS)
            for p in sorted(self.consumer.partitions_for_topic(topic) or ())
        ]
        self.consumer.assign(parts)
        await self.consumer.seek_to_beginning(*parts)

    async def poll(self, timeout_ms: int = 100) -> None:
        fetched = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=10_000)
        now = time.perf_counter()
        for messages in fetched.values():
            for message in messages:
                record = orjson.loads(message.value)
                if record["type"] == "WorkerHeartbeat":
                    self.heartbeat = record["payload"]
                    continue
                p = record["payload"]
                start = datetime.fromisoformat(p["window_start"]).timestamp()
                self.arrived.setdefault((record["tenant_id"], p["scope"], p["key"], start), now)

    async def drain(self, quiet_s: float) -> None:
        """Read until nothing new has arrived for ``quiet_s``."""
        seen, quiet_since = len(self.arrived), time.monotonic()
        while time.monotonic() - quiet_since < quiet_s:
            await self.poll()
            if len(self.arrived) != seen:
                seen, quiet_since = len(self.arrived), time.monotonic()

    async def until(self, check: Any, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not check():
            if time.monotonic() > deadline:
                raise RuntimeError(f"no progress in {timeout_s:.0f}s")
            await self.poll()


async def measure(bootstrap: str, events: int, span_min: float, per_run: bool) -> dict[str, Any]:
    rng = random.Random(42)
    reader = WindowReader(bootstrap)
    await reader.start()
    async with Producer(bootstrap, linger_ms=5) as producer:
        say("warming up the worker (its consumer group join takes a while) ...")
        past = time.time() - 600
        warm = [run_records(past, i, rng) for i in range(8)]
        await producer.send_messages(_messages(warm, per_run))
        await reader.until(lambda: any(k[0] == TENANT for k in reader.arrived), timeout_s=240)
        reader.arrived.clear()

        runs = max(1, events // (STEPS + 1))
        t_begin = window_start(time.time(), WINDOW_S) + WINDOW_S
        step_s = span_min * 60 / runs
        times = [t_begin + run * step_s for run in range(runs)]
        batches = [run_records(t, run, rng) for run, t in enumerate(times)]
        batches += closing_runs(t_begin + span_min * 60 + WINDOW_S + GRACE_S + 1, runs, rng)
        times += [t_begin + span_min * 60 + WINDOW_S + GRACE_S + 1] * (len(batches) - len(times))
        produced = sum(len(r) for r in batches)
        sent_at: list[float] = [0.0] * len(batches)

        say(f"producing {produced} events ({runs} runs) over {span_min:g} min of event time ...")
        chunks = [(first, _messages(batches[first : first + CHUNK_RUNS], per_run))
                  for first in range(0, len(batches), CHUNK_RUNS)]  # fmt: skip
        t0 = time.perf_counter()
        for first, messages in progress.bar("produce", iterable=chunks, unit="chunk"):
            sent_at[first : first + CHUNK_RUNS] = [time.perf_counter()] * len(batches[first : first + CHUNK_RUNS])
            await producer.send_messages(messages)
            await reader.poll(timeout_ms=0)  # note what arrived without holding the producer up
        produce_s = time.perf_counter() - t0
        last = window_start(times[runs - 1], WINDOW_S)
        await reader.until(lambda: any(k[3] == last and k[1] == "tenant" for k in reader.arrived), timeout_s=600)
        await reader.drain(quiet_s=2.5)  # the other scopes' windows of the same close, and a fresh heartbeat
        t_end = max(at for key, at in reader.arrived.items() if key[3] <= last)
        heartbeat = reader.heartbeat
    await reader.consumer.stop()

    closable: dict[float, float] = {}  # window start -> when the first event past its end + grace was sent
    for t, at in zip(times, sent_at, strict=True):
        closable.setdefault(window_start(t - WINDOW_S - GRACE_S, WINDOW_S), at)
    lags = []
    for (_tenant, _scope, _key, start), arrived in reader.arrived.items():
        if start in closable:
            lags.append((arrived - closable[start]) * 1000)
    counts = heartbeat.get("agent_counts", {})
    points = counts.get("metrics_detector_points", 0)
    return {
        "bench": "metrics",
        "events": produced,
        "eps": round(produced / (t_end - t0), 1),
        "window_emit_lag_p50_ms": round(percentile(lags, 0.5), 1),
        "window_emit_lag_p99_ms": round(percentile(lags, 0.99), 1),
        "detector_us_per_point": round(counts.get("metrics_detector_ns", 0) / points / 1000, 2) if points else None,
        "windows": len(reader.arrived),
        "detector_points": points,
        "produce_eps": round(produced / produce_s, 1),
        "messages": "one per run" if per_run else "grouped by partition",
    }


def bench_metrics(*, events: int, span_min: float = 30.0, per_run: bool = False) -> int:
    with tempfile.TemporaryDirectory(prefix="flowledger-bench-metrics-") as tmp, EmbeddedBroker() as broker:
        asyncio.run(ensure_topics(broker.bootstrap))
        env = child_env(
            KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap,
            FLOWLEDGER_DATA_DIR=tmp,
            FLOWLEDGER_WORKER_HEARTBEAT_S="1",
            FLOWLEDGER_METRICS_WINDOW_S=str(WINDOW_S),
            FLOWLEDGER_METRICS_GRACE_S=str(GRACE_S),
        )
        worker = spawn(flowledger_command("worker"), env, log=Path(tmp) / "worker.log")
        try:
            result = asyncio.run(measure(broker.bootstrap, events, span_min, per_run))
            say(f"worker cpu seconds: {cpu_seconds(worker.pid):.1f}")
        except RuntimeError as exc:
            say(f"bench metrics: {exc}; worker log:")
            say((Path(tmp) / "worker.log").read_text()[-3000:])
            return 1
        finally:
            terminate(worker)
    print(orjson.dumps(result).decode(), flush=True)
    return 0
