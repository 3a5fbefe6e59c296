"""Projecting the same log twice, or rebuilding from the archive or Kafka, answers the same."""

import uuid
from datetime import UTC, datetime

import pytest

from projections import queries
from projections.projector import flush
from projections.replay import replay_from_archive, replay_from_kafka
from projections.slicing import LogRecord, project_slice
from schemas.registry import encode
from tests.factories import failed_run, run_with_retry

pytestmark = pytest.mark.integration


def answers(wh, tenant, wf, run_ids):
    # Run events only: once the records are on the broker, the stack running beside
    # this test reacts to the failed run (a troubleshooting session of the same
    # tenant), whenever its monitor gets to it.
    run_events = wh.query(
        "SELECT uniqExact(event_id) FROM events WHERE tenant_id = {t:String} AND topic = 'workflow-events'",
        {"t": tenant},
    )[0][0]
    return (
        [queries.get_run(wh, tenant, r) for r in run_ids],
        queries.list_workflow_runs(wh, tenant, wf, limit=100),
        int(run_events),
    )


async def test_same_events_projected_twice_give_same_answers(warehouse, producer, broker):
    tenant, wf = f"idem-{uuid.uuid4().hex[:6]}", "wf-idem"
    runs = [run_with_retry(tenant, wf, f"r{i}", t0=i) for i in range(20)] + [failed_run(tenant, wf, "bad")]
    log = [LogRecord("workflow-events", 0, offset, encode(recs)) for offset, recs in enumerate(runs)]
    run_ids = [recs[0].run_id for recs in runs]

    flush(warehouse, project_slice(log, now=datetime.now(UTC)).batch)
    first = answers(warehouse, tenant, wf, run_ids)
    assert first[2] == sum(len(r) for r in runs)
    assert first[0][0].steps[0].cost == 0.25

    flush(warehouse, project_slice(log, now=datetime.now(UTC)).batch)  # a full redelivery
    flush(warehouse, project_slice(log[5:9], now=datetime.now(UTC)).batch)  # and a partial one
    assert answers(warehouse, tenant, wf, run_ids) == first

    replay_from_archive(warehouse)
    assert answers(warehouse, tenant, wf, run_ids) == first

    # The broker holds the same records: rebuild from Kafka as well.
    for recs in runs:
        await producer.send(recs)
    await replay_from_kafka(warehouse, broker.bootstrap, timeout_s=120)
    assert answers(warehouse, tenant, wf, run_ids) == first
