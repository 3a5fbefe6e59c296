"""What /metrics exposes, built from fixed inputs: names, labels, sums over live workers, histograms."""

import asyncio
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition as TP
from fastapi import HTTPException
from prometheus_client.parser import text_string_to_metric_families

from api.routes.prometheus import metrics
from api.telemetry import Snapshot, Telemetry, event_type, live_heartbeats, worker_role
from domain.distribution import Distribution
from flowledger.lag import lag_by_group_topic
from flowledger.settings import Settings
from projections.projector import ProjectorStats

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def samples(telemetry: Telemetry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = telemetry.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def beat(worker: str, age_s: float = 1, **counts: int) -> dict:
    return {"worker": worker, "last_seen": datetime.now(UTC) - timedelta(seconds=age_s), "agent_counts": counts}


@pytest.mark.parametrize(
    ("item", "label"),
    [
        ({"type": "RunStarted"}, "RunStarted"),
        ({"type": "DropTable; --"}, "unknown"),
        ({"no": "type"}, "unknown"),
        ([1, 2], "unknown"),
        (SimpleNamespace(type="StepFailed"), "StepFailed"),
    ],
)
def test_only_types_of_the_contract_become_labels(item, label):
    assert event_type(item) == label


@pytest.mark.parametrize(
    ("worker", "role"),
    [("executor-host-1", "executor"), ("monitor-host-1", "monitor"), ("host-1", "all"), ("all-x", "all")],
)
def test_a_worker_role_comes_from_its_id(worker, role):
    assert worker_role({"worker": worker}) == role


def test_stale_heartbeats_are_not_live():
    beats = [{"last_seen": NOW - timedelta(seconds=5)}, {"last_seen": NOW - timedelta(seconds=31)}]
    assert live_heartbeats(beats, now=NOW) == beats[:1]


def test_ingest_is_counted_per_type_and_outcome():
    telemetry = Telemetry()
    telemetry.count_events([{"type": "RunStarted"}, {"type": "RunStarted"}, {"type": "bogus"}], "rejected")
    telemetry.count_events([SimpleNamespace(type="RunStarted")], "accepted")
    got = samples(telemetry)
    assert got[("flowledger_ingest_events_total", (("outcome", "rejected"), ("type", "RunStarted")))] == 2
    assert got[("flowledger_ingest_events_total", (("outcome", "rejected"), ("type", "unknown")))] == 1
    assert got[("flowledger_ingest_events_total", (("outcome", "accepted"), ("type", "RunStarted")))] == 1


def test_gauges_sum_live_workers_and_counters_keep_what_gone_workers_counted():
    telemetry = Telemetry()
    telemetry.snapshot = Snapshot(
        heartbeats=[
            beat("executor-a", executor_steps_finished=3, executor_records_handled=10, executor_runs_running=1),
            beat("executor-b", executor_steps_finished=4, executor_records_handled=5, executor_runs_running=2),
            beat("executor-gone", age_s=300, executor_steps_finished=1000),
            beat("monitor-a", ingested_records=42, metrics_windows=2, not_exposed=9),
        ],
        taken_at=1.0,
    )
    got = samples(telemetry)
    assert got[("flowledger_worker_steps_executed_total", (("role", "executor"),))] == 1007  # gone, still counted
    assert got[("flowledger_worker_records_processed_total", (("agent", "executor"), ("role", "executor")))] == 15
    assert got[("flowledger_worker_records_processed_total", (("agent", "metrics"), ("role", "monitor")))] == 42
    assert got[("flowledger_worker_metric_windows_closed_total", (("role", "monitor"),))] == 2
    assert got[("flowledger_worker_runs_running", (("role", "executor"),))] == 3
    assert got[("flowledger_workers_alive", (("role", "executor"),))] == 2
    assert not any("not_exposed" in name for name, _ in got)


def test_a_worker_restarted_under_the_same_id_does_not_make_its_counters_fall():
    telemetry = Telemetry()
    seen = []
    for steps in (5, 9, 2, 4):  # restarted after 9
        telemetry.snapshot = Snapshot(heartbeats=[beat("executor-a", executor_steps_finished=steps)], taken_at=1.0)
        seen.append(samples(telemetry)[("flowledger_worker_steps_executed_total", (("role", "executor"),))])
    assert seen == [5, 9, 11, 13]


def test_the_hosted_projector_exposes_counts_and_histograms():
    stats = ProjectorStats(records=12, batches=2)
    for n, seconds in ((2, 0.02), (10, 0.3)):
        stats.batch_records.observe(n)
        stats.batch_seconds.observe(seconds)
    telemetry = Telemetry(projector_stats=stats)
    got = samples(telemetry)
    assert got[("flowledger_projector_records_projected_total", ())] == 12
    assert got[("flowledger_projector_batches_total", ())] == 2
    assert got[("flowledger_projector_batch_records_bucket", (("le", "10.0"),))] == 2
    assert got[("flowledger_projector_batch_records_bucket", (("le", "1.0"),))] == 0
    assert got[("flowledger_projector_batch_duration_seconds_bucket", (("le", "0.025"),))] == 1
    assert got[("flowledger_projector_batch_duration_seconds_count", ())] == 2
    assert got[("flowledger_projector_batch_duration_seconds_sum", ())] == pytest.approx(0.32)


def test_a_remote_projector_is_counted_from_its_heartbeats():
    telemetry = Telemetry(snapshot=Snapshot(heartbeats=[{**beat("projector-h-1", records=30), "role": "projector"}]))
    got = samples(telemetry)
    assert got[("flowledger_projector_records_projected_total", ())] == 30
    assert ("flowledger_workers_alive", (("role", "all"),)) not in got


def test_lag_alerts_sessions_and_sources_from_the_snapshot():
    telemetry = Telemetry(
        snapshot=Snapshot(lag={("flowledger-projector", "workflow-events"): 7}, firing={"high": 2}, open_sessions=1)
    )
    got = samples(telemetry)
    lag = ("flowledger_consumer_lag_records", (("group", "flowledger-projector"), ("topic", "workflow-events")))
    assert got[lag] == 7
    assert got[("flowledger_alerts_firing", (("severity", "high"),))] == 2
    assert got[("flowledger_troubleshooting_sessions_open", ())] == 1
    assert got[("flowledger_metrics_source_up", (("source", "broker"),))] == 1
    unread = samples(Telemetry())
    assert unread[("flowledger_metrics_source_up", (("source", "clickhouse"),))] == 0
    assert ("flowledger_troubleshooting_sessions_open", ()) not in unread


@pytest.mark.parametrize(
    ("committed", "ends", "lag"),
    [
        ({"g": {TP("t", 0): 5, TP("t", 1): 2}}, {TP("t", 0): 8, TP("t", 1): 2}, {("g", "t"): 3}),
        # a partition never committed on counts from 0, once the group consumes the topic at all
        ({"g": {TP("t", 0): 5, TP("t", 1): -1}}, {TP("t", 0): 5, TP("t", 1): 4}, {("g", "t"): 4}),
        # a topic the group never committed on is not its topic
        ({"g": {TP("t", 0): -1}}, {TP("t", 0): 9}, {}),
        # an end that is unknown leaves its partition out; a commit past a stale end is 0 behind
        ({"g": {TP("t", 0): 5, TP("t", 1): 9}}, {TP("t", 1): 4}, {("g", "t"): 0}),
        ({"a": {TP("t", 0): 1}, "b": {TP("t", 0): 3}}, {TP("t", 0): 4}, {("a", "t"): 3, ("b", "t"): 1}),
    ],
)
def test_lag_per_group_and_topic(committed, ends, lag):
    assert lag_by_group_topic(committed, ends) == lag


def test_distribution_bounds_must_ascend():
    with pytest.raises(ValueError, match="ascend"):
        Distribution((1.0, 1.0))
    assert Distribution(()).cumulative() == [(float("inf"), 0)]


def _state(**settings: object) -> SimpleNamespace:
    fresh = Telemetry(snapshot=Snapshot(open_sessions=3, taken_at=time.monotonic()))  # no read of its sources
    config = Settings(kafka_bootstrap_servers="x:1", **settings)
    return SimpleNamespace(settings=config, telemetry=fresh, warehouse=None)


def test_metrics_can_be_turned_off_or_protected():
    with pytest.raises(HTTPException) as off:
        asyncio.run(metrics(_state(flowledger_metrics_enabled=False)))
    assert off.value.status_code == 404
    for header in (None, "Bearer wrong", "s3cret"):
        with pytest.raises(HTTPException) as refused:
            asyncio.run(metrics(_state(flowledger_metrics_token="s3cret"), header))
        assert refused.value.status_code == 401


def test_metrics_behind_a_token_answer_the_token():
    response = asyncio.run(metrics(_state(flowledger_metrics_token="s3cret"), "Bearer s3cret"))
    assert response.status_code == 200 and response.media_type.startswith("text/plain")
    assert b"flowledger_troubleshooting_sessions_open 3.0" in response.body
