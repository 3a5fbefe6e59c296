from datetime import UTC, datetime

import orjson
import pytest

from projections.rows import ProjectionBatch, run_row_for, step_row_for
from projections.slicing import LogRecord, project_slice
from schemas import validate_item
from tests.factories import as_json, failed_run, run_with_retry

NOW = datetime(2026, 2, 1, tzinfo=UTC)
RECORDS = [validate_item(i) for i in as_json(run_with_retry("acme", "wf", "r1"))]
FAILED = [validate_item(i) for i in as_json(failed_run("acme", "wf", "r2"))]


@pytest.mark.parametrize(
    ("record", "status", "rank"),
    [
        (RECORDS[0], "running", 1),
        (RECORDS[1], "running", 1),
        (RECORDS[-1], "succeeded", 2),
        (FAILED[-1], "failed", 2),
    ],
)
def test_run_rows(record, status, rank):
    row = run_row_for(record)
    assert row[5:7] == (status, rank)


@pytest.mark.parametrize(
    ("index", "status", "attempt", "error_type"),
    [(1, "running", 1, ""), (2, "succeeded", 1, ""), (4, "failed", 1, "RateLimited"), (6, "succeeded", 2, "")],
)
def test_step_rows(index, status, attempt, error_type):
    row = step_row_for(RECORDS[index])
    assert (row[7], row[4], row[14]) == (status, attempt, error_type)


def test_non_run_records_touch_only_the_archive():
    assert run_row_for(RECORDS[0]) is not None
    assert step_row_for(RECORDS[0]) is None


def test_slice_keeps_good_items_and_dead_letters_bad_ones_with_their_source():
    batch_value = orjson.dumps([*as_json(run_with_retry("acme", "wf", "r3"))[:2], {"tenant_id": "acme"}])
    result = project_slice(
        [LogRecord("workflow-events", 2, 40, batch_value), LogRecord("workflow-events", 2, 41, b"\xffgarbage")],
        now=NOW,
    )
    assert result.records == 2
    assert len(result.batch.events) == 2
    sources = [d.source for d in result.new_dead_letters]
    assert sources == ["workflow-events[2]@40#2", "workflow-events[2]@41"]
    assert result.new_dead_letters[0].tenant_id == "acme"
    assert "\\xffgarbage" in result.new_dead_letters[1].raw_preview


def test_dead_letter_topic_records_become_rows_not_new_dead_letters():
    letter = project_slice([LogRecord("workflow-events", 0, 1, b"nope")], now=NOW).new_dead_letters[0]
    result = project_slice([LogRecord("dead-letters", 0, 0, letter.model_dump_json().encode())], now=NOW)
    assert len(result.batch.dead_letters) == 1 and result.new_dead_letters == []


def test_batch_columns_line_up():
    batch = ProjectionBatch()
    for r in RECORDS:
        batch.add_record(r, "workflow-events", 0, 0)
    for table in batch.tables():
        assert len(table.data) == len(table.columns)
        assert len({len(c) for c in table.data}) == 1
    batch.tables()
    # RunStarted, RunSucceeded, and the earliest and latest "running" facts of step events
    assert (len(batch.events), len(batch.runs), len(batch.steps)) == (10, 4, 8)
