"""The live stream's pure parts: summaries of records, the subscriber hub, the SSE framing."""

import asyncio
from datetime import UTC, datetime

import orjson
import pytest

from api.routes.stream import sse
from projections.live import LiveHub
from projections.slicing import LogRecord, project_slice
from projections.summaries import summarize
from schemas import topics
from schemas.monitoring import AlertAcknowledged, AlertFired, AnomalyDetected, SilenceCreated, SilenceExpired
from schemas.registry import encode
from schemas.workflows import WorkflowDefined
from tests.factories import failed_run, run_with_retry

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _summary(tenant: str, n: int = 0) -> dict[str, object]:
    return {"kind": "run.started", "tenant_id": tenant, "workflow_id": "wf", "run_id": f"run-{n}"}


def test_a_run_with_a_retry_becomes_started_step_and_finished_summaries():
    records = run_with_retry("t1", "wf-1", "run-1")
    kinds = [(s["kind"], s.get("step_id"), s.get("attempt")) for s in map(summarize, records) if s]
    assert kinds[0] == ("run.started", None, None)
    assert ("step.failed", "create-task", 1) in kinds
    assert ("step.succeeded", "create-task", 2) in kinds
    assert kinds[-1] == ("run.finished", None, None)
    finished = summarize(records[-1])
    assert finished is not None and finished["status"] == "succeeded" and finished["duration_ms"] == 4600.0
    failed = summarize(records[4])
    assert failed is not None and failed["error"] == {"type": "RateLimited", "message": "429 Too Many Requests"}


def test_a_failed_run_carries_its_error_and_everything_is_json():
    records = failed_run("t1", "wf-1", "run-2")
    finished = summarize(records[-1])
    assert finished is not None
    assert (finished["status"], finished["error"]) == ("failed", "invalid_auth")
    for record in records:
        assert orjson.loads(orjson.dumps(summarize(record))) == summarize(record)


@pytest.mark.parametrize(
    ("record", "kind", "field", "value"),
    [
        (AlertFired(event_id="00000000-0000-4000-8000-000000000001", occurred_at=NOW, tenant_id="t", workflow_id="wf",
                    payload={"alert_id": "a-1", "rule": "error_rate_increase", "severity": "high"}),
         "alert.fired", "severity", "high"),
        (AlertAcknowledged(event_id="00000000-0000-4000-8000-000000000002", occurred_at=NOW, tenant_id="t",
                           workflow_id="all", payload={"alert_id": "a-1", "acknowledged_by": "ana"}),
         "alert.acknowledged", "acknowledged_by", "ana"),
        (SilenceCreated(event_id="00000000-0000-4000-8000-000000000003", occurred_at=NOW, tenant_id="t",
                        workflow_id="all", payload={"silence_id": "s-1", "matchers": {"rule": "x"}, "starts_at": NOW,
                                                    "ends_at": NOW}),
         "alert.silenced", "silence_id", "s-1"),
        (SilenceExpired(event_id="00000000-0000-4000-8000-000000000006", occurred_at=NOW, tenant_id="t",
                        workflow_id="all", payload={"silence_id": "s-1", "expired_by": "ana"}),
         "alert.unsilenced", "expired_by", "ana"),
        (AnomalyDetected(event_id="00000000-0000-4000-8000-000000000004", occurred_at=NOW, tenant_id="t",
                         workflow_id="wf", payload={"series": "workflow:wf:latency_p95_ms", "scope": "workflow",
                                                    "key": "wf", "metric": "latency_p95_ms", "value": 900.0,
                                                    "score": 0.99, "expected_low": 100.0, "expected_high": 300.0,
                                                    "explanation": "slow"}),
         "anomaly.detected", "expected_high", 300.0),
    ],
)  # fmt: skip
def test_monitoring_records_have_their_kind(record, kind, field, value):
    summary = summarize(record)
    assert summary is not None
    assert (summary["kind"], summary[field], summary["tenant_id"]) == (kind, value, "t")


def test_definitions_have_no_summary():
    record = WorkflowDefined(
        event_id="00000000-0000-4000-8000-000000000005", occurred_at=NOW, tenant_id="t", workflow_id="wf",
        payload={"version": 1, "definition": {"name": "n", "trigger": {"service": "webhook", "event": "call"},
                                              "steps": [{"id": "s", "service": "slack", "action": "post_message"}]}},
    )  # fmt: skip
    assert summarize(record) is None


def test_a_slice_builds_summaries_only_when_asked():
    run = run_with_retry("t1", "wf-1", "run-1")
    records = [LogRecord(topics.WORKFLOW_EVENTS, 0, 7, encode(run))]
    assert project_slice(records, now=NOW).summaries == []
    asked = project_slice(records, now=NOW, summarize_records=True)
    assert asked.summaries == [s for s in map(summarize, run) if s is not None]
    assert "step.started" not in {s["kind"] for s in asked.summaries}  # a step's end carries its timing


def test_the_hub_fans_out_by_tenant_and_the_operator_sees_all():
    hub = LiveHub()
    assert not hub.active
    with hub.subscribe("a") as a, hub.subscribe("b") as b, hub.subscribe("*") as operator:
        assert hub.active and len(hub) == 3
        hub.publish([_summary("a", 1), _summary("b", 2), _summary("a", 3)])
        assert [s["run_id"] for s in a.take().items] == ["run-1", "run-3"]
        assert [s["run_id"] for s in b.take().items] == ["run-2"]
        assert [s["run_id"] for s in operator.take().items] == ["run-1", "run-2", "run-3"]
        assert a.take().items == []
    assert not hub.active and len(hub) == 0


def test_a_full_queue_drops_the_oldest_and_says_how_many():
    hub = LiveHub()
    with hub.subscribe("a", max_queue=3) as slow, hub.subscribe("a", max_queue=100) as fast:
        hub.publish([_summary("a", n) for n in range(5)])
        batch = slow.take()
        assert [s["run_id"] for s in batch.items] == ["run-2", "run-3", "run-4"]
        assert batch.dropped == 2
        assert fast.take().dropped == 0
        assert slow.take().dropped == 0
    assert hub.dropped == 2 and hub.published == 5


def test_a_subscription_ends_even_when_its_reader_fails():
    hub = LiveHub()
    with pytest.raises(RuntimeError), hub.subscribe("a"):
        raise RuntimeError("client went away")
    assert len(hub) == 0


async def test_next_wakes_on_publish_and_returns_empty_when_idle():
    hub = LiveHub()
    with hub.subscribe("a") as sub:
        assert (await sub.next(0.01)).items == []
        waiting = asyncio.create_task(sub.next(30))
        await asyncio.sleep(0)
        hub.publish([_summary("b"), _summary("a", 9)])
        batch = await waiting
        assert [s["run_id"] for s in batch.items] == ["run-9"]


async def test_closing_the_hub_wakes_waiting_readers():
    hub = LiveHub()
    with hub.subscribe("a") as sub:
        waiting = asyncio.create_task(sub.next(30))
        await asyncio.sleep(0)
        hub.close()
        assert (await waiting).items == []
        assert hub.closed


def test_sse_frames_one_event_with_json_data_on_one_line():
    frame = sse("run.started", {"kind": "run.started", "note": "two\nlines"})
    assert frame.endswith(b"\n\n") and frame.count(b"\n") == 3
    event, data = frame.decode().strip().split("\n")
    assert event == "event: run.started"
    assert orjson.loads(data.removeprefix("data: "))["note"] == "two\nlines"
