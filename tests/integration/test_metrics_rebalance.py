"""Windows stay exact when partitions that nobody has committed yet change hands.

Two monitor workers of one consumer group share the partitions while the
topics are empty; the second is SIGKILLed before it commits anything, then
runs are produced in event time. The first worker goes through rebalances
(its own assignment, then the dead member's partitions when its session
expires) with records waiting in partitions that have no committed offset.
Faust drops a fetch that returns while a rebalance has suspended the flow and
reads again from the committed offset; for a partition without one that must
be its beginning (``streams.app._perform_seek``), or the dropped records are
never counted. Whether a fetch is in flight at that moment is timing, which
this sequence makes likely, not certain: each closed window must count exactly
its runs.
"""

import random
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from flowledger.broker import EmbeddedBroker, ensure_topics
from flowledger.client import Producer
from flowledger.settings import WORKER_APP_IDS
from tests.integration import test_metrics
from tests.integration.conftest import ServeProcess, WorkerProcess, auth, eventually

pytestmark = pytest.mark.integration

WINDOWS = 20
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=6)


def _monitor(bootstrap: str, directory, sandbox, smtp, worker_id: str) -> WorkerProcess:
    worker = WorkerProcess(bootstrap, directory, sandbox, smtp.port)
    worker.env |= {
        "FLOWLEDGER_WORKER_ROLE": "monitor",
        "FLOWLEDGER_WORKER_ID": worker_id,
        "FLOWLEDGER_METRICS_IDLE_S": "3600",  # event time only: the test replays the past
        "FLOWLEDGER_WORKER_SESSION_TIMEOUT_S": "6",
    }
    return worker


async def _stable_with(admin: AIOKafkaAdminClient, members: int) -> bool:
    """The monitor group has settled with this many members."""
    [response] = await admin.describe_consumer_groups([WORKER_APP_IDS["monitor"]])
    [group] = response.groups
    state, current = group[2], group[5]
    return state == "Stable" and len(current) == members


async def _windows(http: httpx.AsyncClient) -> list[dict]:
    params = {"scope": "step", "key": f"{test_metrics.WF}/fetch", "start": T0.isoformat(),
              "end": (T0 + timedelta(minutes=WINDOWS + 5)).isoformat(), "live": "false"}  # fmt: skip
    r = await http.get("/api/workflows/monitoring/metrics", params=params, headers=auth(test_metrics.TENANT_KEY))
    assert r.status_code == 200, r.text
    series = r.json()["series"]
    return series[0]["windows"] if series else []


async def test_windows_are_exact_when_uncommitted_partitions_move(tmp_path, sandbox, smtp, monkeypatch):
    monkeypatch.setattr(test_metrics, "T0", T0)
    rng = random.Random(11)
    runs = [test_metrics._run_events(w, i, rng)[0] for w in range(WINDOWS) for i in range(test_metrics.RUNS_PER_WINDOW)]
    with EmbeddedBroker() as broker:
        await ensure_topics(broker.bootstrap)
        serve = ServeProcess(broker.bootstrap, tmp_path / "api", group="rebalance-projector").start()
        first = _monitor(broker.bootstrap, tmp_path / "w1", sandbox, smtp, "w1")
        second = _monitor(broker.bootstrap, tmp_path / "w2", sandbox, smtp, "w2")
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            second.start()
            await eventually(lambda: _stable_with(admin, 1), timeout_s=60, every_s=0.2)
            first.start()
            await eventually(lambda: _stable_with(admin, 2), timeout_s=60, every_s=0.2)
            second.kill()  # holds its partitions, uncommitted, until its session expires
            async with Producer(broker.bootstrap) as producer:
                for batch in runs:
                    await producer.send(batch)
            async with httpx.AsyncClient(base_url=serve.url, timeout=30) as http:

                async def all_closed():
                    return len(await _windows(http)) >= WINDOWS - 2

                await eventually(all_closed, timeout_s=120, every_s=1)
                closed = {datetime.fromisoformat(w["window_start"]): w for w in await _windows(http)}
            counts = {w: (closed[T0 + timedelta(minutes=w)]["count"], closed[T0 + timedelta(minutes=w)]["failures"])
                      for w in range(WINDOWS - 2)}  # fmt: skip
            assert counts == dict.fromkeys(range(WINDOWS - 2), (test_metrics.RUNS_PER_WINDOW, 2))
        finally:
            await admin.close()
            second.stop()
            first.stop()
            serve.stop()
