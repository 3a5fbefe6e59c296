"""/metrics on the real stack: every documented metric, and counters that move with ingest, runs and projection."""

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from prometheus_client.parser import text_string_to_metric_families

from flowledger.broker import ensure_topics
from flowledger.lag import consumer_lag
from projections.alert_queries import firing_by_severity
from projections.projector import flush
from projections.slicing import LogRecord, project_slice
from projections.troubleshooting_queries import count_open_sessions
from schemas.monitoring import AlertFired, AlertNotified, AlertResolved
from schemas.registry import encode
from schemas.troubleshooting import SessionClosed, SessionOpened
from tests.factories import as_json, run_with_retry
from tests.integration.conftest import KEYS, auth, eventually
from tests.integration.test_execution import define, start, step, wait_run

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"


def documented_metrics() -> set[str]:
    """Metric names in the README's Prometheus table (first column), as families: counters without ``_total``."""
    section = README.read_text().split("### Prometheus", 1)[1].split("\n## ", 1)[0]
    return {name.removesuffix("_total") for name in re.findall(r"^\| `(flowledger_[a-z_]+)`", section, re.MULTILINE)}


async def scrape(http) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    r = await http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    for key, tenant in KEYS.items():
        assert key not in r.text and f'"{tenant}"' not in r.text
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(r.text):
        found.setdefault(family.name, {})  # a family with no series yet is still present
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def value(found, name: str, **labels: str) -> float:
    return found.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


async def test_metrics_move_with_ingest_runs_and_projection(http, worker):
    before = await scrape(http)
    documented = documented_metrics()
    assert len(documented) >= 15
    assert documented <= set(before), documented - set(before)

    run_id = f"prom-{uuid.uuid4().hex[:8]}"
    events = as_json(run_with_retry("tenant-a", "wf-prom", run_id))
    assert (await http.post("/api/events", json={"events": events}, headers=auth("key-a"))).status_code == 202
    invalid = [{**events[0], "type": "NoSuchEvent"}, events[1]]
    assert (await http.post("/api/events", json={"events": invalid}, headers=auth("key-a"))).status_code == 422
    workflow_id = await define(http, [step("one", "asana")])
    await wait_run(http, await start(http, workflow_id), "succeeded", timeout_s=150)

    async def moved():
        after = await scrape(http)
        changes = {
            "accepted": value(after, "flowledger_ingest_events_total", type="RunStarted", outcome="accepted")
            - value(before, "flowledger_ingest_events_total", type="RunStarted", outcome="accepted"),
            "rejected": value(after, "flowledger_ingest_events_total", type="unknown", outcome="rejected")
            - value(before, "flowledger_ingest_events_total", type="unknown", outcome="rejected"),
            "projected": value(after, "flowledger_projector_records_projected_total")
            - value(before, "flowledger_projector_records_projected_total"),
            "steps": value(after, "flowledger_worker_steps_executed_total", role="all")
            - value(before, "flowledger_worker_steps_executed_total", role="all"),
            "batches": value(after, "flowledger_projector_batch_records_count")
            - value(before, "flowledger_projector_batch_records_count"),
        }
        print(changes)  # in the report when the wait fails
        return (after, changes) if all(v > 0 for v in changes.values()) else None

    after, changes = await eventually(moved, timeout_s=60, every_s=1)
    assert changes["projected"] >= len(events)
    lag = after["flowledger_consumer_lag_records"]
    groups = {dict(labels)["group"]: set() for labels in lag}
    for labels in lag:
        groups[dict(labels)["group"]].add(dict(labels)["topic"])
    assert {"workflow-events", "workflow-commands", "worker-heartbeats"} <= groups["it-projector"]
    assert "workflow-commands" in groups["flowledger"]  # the worker runs every role: app and group `flowledger`
    assert all(v >= 0 for v in lag.values())
    assert value(after, "flowledger_metrics_source_up", source="broker") == 1
    assert value(after, "flowledger_metrics_source_up", source="clickhouse") == 1
    assert value(after, "flowledger_workers_alive", role="all") >= 1
    assert value(after, "flowledger_troubleshooting_sessions_open") >= 0


async def test_lag_counts_records_not_batches(broker):
    """The embedded broker's ListOffsets counts batches; the lag must count records."""
    topic, group = f"lag-{uuid.uuid4().hex[:8]}", f"lag-group-{uuid.uuid4().hex[:6]}"
    await ensure_topics(broker.bootstrap, {topic: 2})
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=50)
    await producer.start()
    try:
        sent = [await producer.send(topic, b"x" * 200, partition=0) for _ in range(300)]
        sent += [await producer.send(topic, b"y", partition=1) for _ in range(5)]
        for future in sent:
            await future
    finally:
        await producer.stop()
    assert await consumer_lag(broker.bootstrap, [group], [topic]) == {}  # nothing committed yet

    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        await consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(120, "")})
    finally:
        await consumer.stop()
    assert await consumer_lag(broker.bootstrap, [group, "nobody"], [topic]) == {(group, topic): 180 + 5}


def test_firing_alerts_and_open_sessions_are_counted_over_every_tenant(warehouse):
    firing, sessions = firing_by_severity(warehouse), count_open_sessions(warehouse)
    t0 = datetime.now(UTC)

    def record(cls, tenant, minutes, **payload):
        return cls(event_id=str(uuid.uuid4()), occurred_at=t0 + timedelta(minutes=minutes), tenant_id=tenant,
                   workflow_id="wf-count", payload=payload)  # fmt: skip

    def alert(alert_id, severity):
        return {"alert_id": alert_id, "rule": "r", "severity": severity}

    records = [
        record(AlertFired, "count-a", 0, **alert("x", "high")),
        record(AlertNotified, "count-a", 1, **alert("x", "high"), channel="log", delivered=True),
        record(AlertFired, "count-b", 0, **alert("x", "high")),  # the same alert id in another tenant
        record(AlertFired, "count-b", 0, **alert("y", "low")),
        record(AlertResolved, "count-b", 1, **alert("y", "low")),
        record(SessionOpened, "count-a", 0, session_id="s1", trigger="failed_run", summary="s"),
        record(SessionOpened, "count-b", 0, session_id="s1", trigger="failed_run", summary="s"),
        record(SessionClosed, "count-b", 1, session_id="s1"),
    ]
    log = [LogRecord("alerts", 0, offset, encode([r])) for offset, r in enumerate(records)]
    flush(warehouse, project_slice(log, now=datetime.now(UTC)).batch)
    assert firing_by_severity(warehouse).get("high", 0) - firing.get("high", 0) == 2
    assert firing_by_severity(warehouse).get("low", 0) == firing.get("low", 0)
    assert count_open_sessions(warehouse) - sessions == 1
