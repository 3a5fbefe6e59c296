"""Live metrics and anomaly detection on a stack of their own (event time is global to a broker).

Runs of one workflow are produced in event time, minute by minute: the
``notify`` step's latency jumps tenfold at window SHIFT. The worker is
SIGKILLed between the two phases and restarted; windows must be exact (no
event lost or counted twice), the detector must still know the series (a
fresh one would still be warming up) and flag the shift within two windows.
"""

import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from flowledger.broker import EmbeddedBroker, ensure_topics
from flowledger.client import Producer
from schemas.runs import RunFailed, RunStarted, RunSucceeded, StepFailed, StepSucceeded
from tests.integration.conftest import ServeProcess, WorkerProcess, auth, eventually

pytestmark = pytest.mark.integration

TENANT_KEY = "key-a"
WF = "wf-metrics"
RUNS_PER_WINDOW = 20
SHIFT = 60
WINDOWS = 80
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=3)


def _run_events(window: int, i: int, rng: random.Random) -> tuple[list, float | None, float]:
    """One run inside ``window``: fetch (fails for every tenth run), then notify."""
    run = f"r-{window}-{i}"
    ids = {"tenant_id": "tenant-a", "workflow_id": WF, "run_id": run}
    t = T0 + timedelta(minutes=window, seconds=i * 2.5)
    fetch_ms = rng.lognormvariate(4.6, 0.15)  # ~100 ms
    notify_ms = rng.lognormvariate(4.6 if window < SHIFT else 6.9, 0.15)  # ~100 ms, then ~1 s

    def eid() -> str:
        return str(uuid.uuid4())

    def step(sid: str, service: str, ms: float, at: timedelta) -> dict:
        return {**ids, "event_id": eid(), "step_id": sid, "occurred_at": t + at,
                "payload": {"service": service, "action": "call", "duration_ms": ms, "cost": 0.01}}  # fmt: skip

    events: list = [RunStarted(event_id=eid(), occurred_at=t, **ids)]
    if i % 10 == 0:
        failed = step("fetch", "gmail", fetch_ms, timedelta(seconds=0.2))
        failed["payload"] |= {"error": {"type": "ServerError", "message": "503", "status_code": 503}}
        failed["payload"].pop("cost")
        events += [StepFailed(**failed), RunFailed(event_id=eid(), occurred_at=t + timedelta(seconds=0.3), **ids)]
        return events, None, fetch_ms
    events += [
        StepSucceeded(**step("fetch", "gmail", fetch_ms, timedelta(seconds=0.2))),
        StepSucceeded(**step("notify", "slack", notify_ms, timedelta(seconds=1.4))),
        RunSucceeded(event_id=eid(), occurred_at=t + timedelta(seconds=1.5), **ids, payload={"duration_ms": 1500.0}),
    ]
    return events, notify_ms, fetch_ms


def _produce_windows(windows: range, rng: random.Random, fetch: dict[int, list[float]]) -> list[list]:
    batches = []
    for w in windows:
        for i in range(RUNS_PER_WINDOW):
            events, _notify, fetch_ms = _run_events(w, i, rng)
            fetch.setdefault(w, []).append(fetch_ms)
            batches.append(events)
    return batches


def _late_event() -> list:
    """A fetch result for window 5, sent after window 5 has long closed."""
    ids = {"tenant_id": "tenant-a", "workflow_id": WF, "run_id": "r-late"}
    return [StepSucceeded(event_id=str(uuid.uuid4()), occurred_at=T0 + timedelta(minutes=5, seconds=1), step_id="fetch",
                          **ids, payload={"service": "gmail", "action": "call", "duration_ms": 50.0})]  # fmt: skip


@pytest.fixture(scope="module")
def stack(tmp_path_factory, sandbox, smtp):
    root = tmp_path_factory.mktemp("metrics")
    with EmbeddedBroker() as broker:
        asyncio.run(ensure_topics(broker.bootstrap))
        serve = ServeProcess(broker.bootstrap, root / "api", group="metrics-projector").start()
        worker = WorkerProcess(broker.bootstrap, root / "worker", sandbox, smtp.port)
        worker.env["FLOWLEDGER_METRICS_IDLE_S"] = "3600"  # event time only: the test replays the past
        try:
            yield broker, serve, worker
        finally:
            worker.stop()
            serve.stop()


async def _windows(http: httpx.AsyncClient, key: str, scope: str = "step", window: str = "") -> list[dict]:
    params = {"scope": scope, "key": key, "start": T0.isoformat(), "end": (T0 + timedelta(hours=2)).isoformat(),
              "live": "false"} | ({"window": window} if window else {})  # fmt: skip
    r = await http.get("/api/workflows/monitoring/metrics", params=params, headers=auth(TENANT_KEY))
    assert r.status_code == 200, r.text
    series = r.json()["series"]
    return series[0]["windows"] if series else []


async def test_windows_are_exact_and_a_latency_shift_is_flagged_across_a_worker_restart(stack):
    broker, serve, worker = stack
    rng = random.Random(7)
    fetch: dict[int, list[float]] = {}
    async with Producer(broker.bootstrap) as producer, httpx.AsyncClient(base_url=serve.url, timeout=30) as http:
        worker.start()
        for batch in _produce_windows(range(SHIFT), rng, fetch):
            await producer.send(batch)

        async def baseline_closed():
            return len(await _windows(http, f"{WF}/fetch")) >= SHIFT - 2

        await eventually(baseline_closed, timeout_s=150, every_s=1)
        worker.kill()  # SIGKILL: no shutdown, no final commit
        worker.start()
        started = time.monotonic()
        phase2 = _produce_windows(range(SHIFT, WINDOWS), rng, fetch)
        for n, batch in enumerate(phase2):
            await producer.send(batch)
            if n == len(phase2) // 2:
                await producer.send(_late_event())

        async def all_closed():
            return len(await _windows(http, f"{WF}/fetch")) >= WINDOWS - 2

        await eventually(all_closed, timeout_s=150, every_s=1)
        print(f"phase 2 closed {time.monotonic() - started:.1f}s after the restart")

        closed = await _windows(http, f"{WF}/fetch")
        by_start = {datetime.fromisoformat(w["window_start"]): w for w in closed}
        for w in range(WINDOWS - 2):
            window = by_start[T0 + timedelta(minutes=w)]
            assert (window["count"], window["failures"]) == (RUNS_PER_WINDOW, 2), (w, window)
            durations = sorted(fetch[w])
            exact_p95 = durations[int(0.95 * (len(durations) - 1))]
            assert window["latency_p95_ms"] == pytest.approx(exact_p95, rel=0.011)
        assert sum(w["late_events"] for w in closed) == 1

        # hopping 5-minute views, merged from the 1-minute windows
        views = await _windows(http, f"{WF}/fetch", window="5m")
        assert {v["count"] for v in views[4:-4]} == {5 * RUNS_PER_WINDOW}

        runs = await _windows(http, WF, scope="workflow")
        assert runs[10]["count"] == RUNS_PER_WINDOW and runs[10]["error_rate"] == pytest.approx(0.1)

        async def shift_flagged():
            r = await http.get("/api/workflows/monitoring/anomalies", params={"scope": "step", "key": f"{WF}/notify"},
                               headers=auth(TENANT_KEY))  # fmt: skip
            return [a for a in r.json()["anomalies"] if a["metric"].startswith("latency")]

        flagged = await eventually(shift_flagged, timeout_s=30)
        first = min(datetime.fromisoformat(a["window_start"]) for a in flagged)
        assert T0 + timedelta(minutes=SHIFT) <= first <= T0 + timedelta(minutes=SHIFT + 1), flagged
        assert "expected" in flagged[-1]["explanation"]
