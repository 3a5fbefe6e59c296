from datetime import UTC, datetime, timedelta

from api.routes.monitoring import _remote_projector, _workers
from projections.projector import PartitionProgress, ProjectorStats, heartbeat, lag_by_topic


def beat(age_s: float, **extra):
    return {"worker": "w", "last_seen": datetime.now(UTC) - timedelta(seconds=age_s), **extra}


def test_workers_are_down_when_every_heartbeat_is_stale():
    assert _workers([]).status == "unknown"
    assert _workers([beat(2)]).status == "ok"
    assert _workers([beat(120)]).status == "down"
    assert _workers([beat(120), beat(1)]).status == "ok"


def test_a_remote_projector_is_known_by_its_latest_heartbeat_and_reports_lag():
    component, lag = _remote_projector([beat(50, lag={"a": 1}), beat(3, lag={"workflow-events": 7})])
    assert component.status == "ok"
    assert [(t.topic, t.lag) for t in lag] == [("workflow-events", 7)]
    assert _remote_projector([beat(90)])[0].status == "down"
    assert _remote_projector([])[0].status == "unknown"


def test_projector_heartbeat_carries_counts_and_lag_per_topic():
    stats = ProjectorStats(records=10, batches=2)
    stats.partitions = {
        "workflow-events[0]": PartitionProgress(position=5, highwater=9),
        "workflow-events[1]": PartitionProgress(position=3, highwater=3),
        "alerts[0]": PartitionProgress(position=0, highwater=None),
    }
    assert lag_by_topic(stats) == {"workflow-events": 4}
    record = heartbeat("projector-x", stats, rate=12.5)
    assert record.payload.role == "projector"
    assert record.payload.agent_counts["records"] == 10
    assert record.payload.lag == {"workflow-events": 4}
