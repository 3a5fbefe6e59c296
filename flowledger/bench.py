"""``flowledger bench ingest``: producer -> Kafka -> projector -> ClickHouse -> REST.

Starts its own embedded stack (Tansu and a ``flowledger serve`` process with a
fresh chdb directory, on free ports), then:

* produces N events (runs of 10 events, one Kafka message per run) with the
  Python producer client, as fast as it can or at ``--rate`` events/s, and
  times it (``produce_eps``);
* meanwhile probes a sample of runs through ``GET /api/runs?run_id=...`` and records
  the time from producing a run to that run being fully visible
  (``visible_p50_ms``, ``visible_p99_ms``);
* polls ``GET /api/events/stats`` until all N are queryable
  (``projected_eps``: N over the time from first produce to that moment);
* finally reads the same topic with a bare aiokafka consumer + orjson decode
  (``raw_consume_eps``, the ceiling on this machine).

The last line printed is one JSON object with those figures.
"""

import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from flowledger import progress
from flowledger.broker import EmbeddedBroker, ensure_topics, free_port
from flowledger.client import Producer
from flowledger.procs import flowledger_command, spawn, stack_env, terminate, wait_http
from schemas import topics
from schemas.registry import validate_item

BENCH_KEY = "bench-key"
TENANT = "bench"
EVENTS_PER_RUN = 10


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_events(run_id: str, workflow_id: str, t0: datetime) -> list[dict[str, Any]]:
    """One run: start, three steps (the second fails once and is retried), success."""
    ids = {"tenant_id": TENANT, "workflow_id": workflow_id, "run_id": run_id, "schema_version": 1}
    out: list[dict[str, Any]] = []

    def add(kind: str, dt_ms: int, step: str | None = None, payload: dict[str, Any] | None = None) -> None:
        out.append({
            "event_id": str(uuid.uuid4()), "type": kind,
            "occurred_at": (t0 + timedelta(milliseconds=dt_ms)).isoformat(), **ids,
            **({"step_id": step} if step else {}), **({"payload": payload} if payload is not None else {}),
        })  # fmt: skip

    add("RunStarted", 0, payload={"definition_version": 1})
    for i, (step, service, action) in enumerate(
        [
            ("fetch", "gmail", "new_email"),
            ("task", "asana", "create_task"),
            ("notify", "slack", "post_message"),
        ]
    ):
        base = {"service": service, "action": action}
        add("StepStarted", 100 * i + 1, step, {**base, "attempt": 1})
        if step == "task":
            error = {"type": "RateLimited", "message": "429", "status_code": 429, "retry_after_s": 1}
            add("StepFailed", 100 * i + 2, step, {**base, "attempt": 1, "duration_ms": 40.0, "error": error})
            add("StepStarted", 100 * i + 3, step, {**base, "attempt": 2})
        add("StepSucceeded", 100 * i + 4, step, {**base, "attempt": 2 if step == "task" else 1,
            "duration_ms": 35.5, "cost": 0.001})  # fmt: skip
    add("RunSucceeded", 400, payload={"duration_ms": 400.0})
    return out


def build_messages(n_events: int) -> tuple[list[tuple[str, bytes, bytes]], list[str]]:
    runs = max(1, n_events // EVENTS_PER_RUN)
    t0 = datetime.now(UTC) - timedelta(hours=1)
    messages, run_ids = [], []
    for i in range(runs):
        run_id = f"bench-run-{i}"
        events = run_events(run_id, f"bench-wf-{i % 20}", t0 + timedelta(milliseconds=i))
        if i == 0:
            assert all(not isinstance(validate_item(e), str) for e in events), "bench events invalid"
        messages.append((topics.WORKFLOW_EVENTS, run_id.encode(), orjson.dumps(events)))
        run_ids.append(run_id)
    return messages, run_ids


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _offset_callback(callback: Callable[[int], None], base: int, index: int) -> None:
    callback(base + index)


async def paced_send(producer: Producer, messages, on_sent, rate: float) -> None:  # type: ignore[no-untyped-def]
    """Send at ``rate`` events/s (0: as fast as possible), in 10 ms ticks."""
    if rate <= 0:
        await producer.send_messages(messages, on_sent=on_sent)
        return
    per_tick = max(1, round(rate / 100 / EVENTS_PER_RUN))
    started = time.perf_counter()
    for tick, first in enumerate(range(0, len(messages), per_tick)):
        chunk = messages[first : first + per_tick]
        await producer.send_messages(chunk, on_sent=partial(_offset_callback, on_sent, first))
        delay = started + (tick + 1) * 0.01 - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)


async def measure(bootstrap: str, api: str, n_events: int, samples: int, rate: float) -> dict[str, Any]:
    messages, run_ids = build_messages(n_events)
    total = len(messages) * EVENTS_PER_RUN
    step = max(1, len(messages) // samples)
    sample_index = set(range(0, len(messages), step)) | {len(messages) - 1}
    sent_at: dict[int, float] = {}
    visible_ms: list[float] = []
    headers = {"Authorization": f"Bearer {BENCH_KEY}"}

    def on_sent(index: int) -> None:
        produced_bar.update()
        if index in sample_index:
            sent_at[index] = time.perf_counter()

    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=30) as http:

        async def probe() -> None:
            """Every 20 ms, one batch lookup of every sampled run sent but not yet seen."""
            seen: set[int] = set()
            while len(seen) < len(sample_index):
                oldest = sorted(i for i in sent_at if i not in seen)[:20]
                pending = {run_ids[i]: i for i in oldest}
                if pending:
                    r = await http.get("/api/runs", params=[("run_id", rid) for rid in pending])
                    now = time.perf_counter()
                    for run in r.json():
                        if run["status"] == "succeeded":
                            index = pending[run["run_id"]]
                            visible_ms.append((now - sent_at[index]) * 1000)
                            seen.add(index)
                await asyncio.sleep(0.025)

        probing = asyncio.create_task(probe())
        async with Producer(bootstrap) as producer:
            pace = f" at {rate:.0f} events/s" if rate > 0 else " as fast as possible"
            say(f"producing {total} events in {len(messages)} messages{pace} ...")
            produced_bar = progress.bar("produce", len(messages), "msg")
            started = time.perf_counter()
            await paced_send(producer, messages, on_sent, rate)
            produced = time.perf_counter()
            produced_bar.close()
        say(f"produced in {produced - started:.2f}s; waiting until all are queryable ...")
        # The probe is cheap; the exact count is not, so it is asked only once the
        # last run produced has been seen (and again until it matches).
        with progress.bar("queryable", total, "ev") as queryable:
            await asyncio.wait_for(probing, 300)
            while True:
                count = (await http.get("/api/events/stats")).json()["events"]
                queryable.update(count - queryable.n)
                if count >= total:
                    break
                await asyncio.sleep(0.02)
        projected = time.perf_counter()
        say(f"all {count} queryable after {projected - started:.2f}s")
        status = (await http.get("/api/workflows/monitoring/status")).json()
        say(f"projector: {orjson.dumps(status['projector']['detail']).decode()}")

    raw_eps = await raw_consume(bootstrap, total)
    projected_eps = total / (projected - started)
    return {
        "bench": "ingest",
        "events": total,
        "rate_limit_eps": rate or None,
        "produce_eps": round(total / (produced - started)),
        "projected_eps": round(projected_eps),
        "visible_p50_ms": round(statistics.median(visible_ms), 1),
        "visible_p99_ms": round(percentile(visible_ms, 0.99), 1),
        "raw_consume_eps": round(raw_eps),
        "projected_to_raw_ratio": round(projected_eps / raw_eps, 3),
        "visibility_samples": len(visible_ms),
    }


async def raw_consume(bootstrap: str, total: int) -> float:
    """Events/s of a bare aiokafka getmany + orjson decode of the same topic."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, max_partition_fetch_bytes=16 << 20,
                                fetch_max_bytes=64 << 20)  # fmt: skip
    await consumer.start()
    try:
        await consumer.topics()
        parts = [TopicPartition(topics.WORKFLOW_EVENTS, p)
                 for p in sorted(consumer.partitions_for_topic(topics.WORKFLOW_EVENTS) or ())]  # fmt: skip
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        seen, started = 0, None
        while seen < total:
            fetched = await consumer.getmany(timeout_ms=1000, max_records=20_000)
            if started is None and fetched:
                started = time.perf_counter()
            for batch in fetched.values():
                for message in batch:
                    seen += len(orjson.loads(message.value))
        return total / (time.perf_counter() - (started or time.perf_counter()))
    finally:
        await consumer.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its reaped children (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    ticks = sum(int(f) for f in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def live_children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def bench_ingest(*, events: int, samples: int, rate: float = 0.0) -> int:
    with tempfile.TemporaryDirectory(prefix="flowledger-bench-") as tmp, EmbeddedBroker() as broker:
        asyncio.run(ensure_topics(broker.bootstrap))
        port = free_port()
        env = stack_env(broker.bootstrap, tmp, port, f"{BENCH_KEY}={TENANT}")
        serve = spawn(flowledger_command("serve"), env)
        try:
            api = f"http://127.0.0.1:{port}"
            try:
                wait_http(f"{api}/healthz", 60, {"serve": serve})
            except RuntimeError as exc:
                say(f"the API did not start: {exc}")
                return 1
            result = asyncio.run(measure(broker.bootstrap, api, events, samples, rate))
            workers = live_children(serve.pid)
            cpu = {
                "api_and_projector": cpu_seconds(serve.pid),
                "decode_workers": sum(cpu_seconds(w) for w in workers),
                "broker": cpu_seconds(broker.pid or 0),
                "bench_client": cpu_seconds(os.getpid()),
            }
            say("cpu seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()))
        finally:
            terminate(serve)
    print(orjson.dumps(result).decode(), flush=True)
    return 0
