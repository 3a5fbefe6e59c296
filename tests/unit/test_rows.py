from datetime import UTC, datetime

import orjson

from projections.rows import EVENT_COLUMNS, ProjectionBatch, event_row
from projections.slicing import LogRecord, project_slice
from schemas import validate_item
from tests.factories import as_json, run_with_retry

NOW = datetime(2026, 2, 1, tzinfo=UTC)
RECORDS = [validate_item(i) for i in as_json(run_with_retry("acme", "wf", "r1"))]


def test_event_row_keeps_the_envelope_and_the_canonical_payload():
    failed = RECORDS[4]
    row = dict(zip(EVENT_COLUMNS, event_row(failed, "workflow-events", 1, 99), strict=True))
    assert (row["type"], row["run_id"], row["step_id"], row["partition"], row["offset"]) == (
        "StepFailed", "r1", "create-task", 1, 99,
    )  # fmt: skip
    assert orjson.loads(row["payload"])["error"]["status_code"] == 429
    assert row["causation_id"] is None and row["correlation_id"] == ""


def test_slice_keeps_good_items_and_dead_letters_bad_ones_with_their_source():
    batch_value = orjson.dumps([*as_json(run_with_retry("acme", "wf", "r3"))[:2], {"tenant_id": "acme"}])
    result = project_slice(
        [
            LogRecord("workflow-events", 2, 40, batch_value),
            LogRecord("workflow-events", 2, 41, b"\xffgarbage"),
        ],
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
    garbage = project_slice([LogRecord("dead-letters", 0, 1, b"{}")], now=NOW)
    assert len(garbage.batch) == 0 and garbage.new_dead_letters == []


def test_batch_columns_line_up():
    batch = ProjectionBatch()
    for r in RECORDS:
        batch.add_record(r, "workflow-events", 0, 0)
    for table in batch.tables():
        assert len(table.data) == len(table.columns)
        assert len({len(c) for c in table.data}) == 1
    assert (len(batch.events), len(batch.dead_letters)) == (10, 0)
