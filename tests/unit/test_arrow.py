from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa

from projections.arrow import batch_to_ipc
from projections.rows import ProjectionBatch
from schemas import validate_item
from tests.factories import as_json, run_with_retry


def _read(stream: bytes) -> pa.Table:
    return pa.ipc.open_stream(stream).read_all()


def test_every_table_encodes_with_its_columns_and_utc_instants():
    items = as_json(run_with_retry("acme", "wf", "r1"))
    items[0]["occurred_at"] = "2026-01-05T10:00:00+01:00"
    batch = ProjectionBatch()
    for item in items:
        batch.add_record(validate_item(item), "workflow-events", 3, 17)
    encoded = {table: (columns, _read(stream)) for table, columns, stream in batch_to_ipc(batch)}
    assert set(encoded) == {"events"}
    columns, events = encoded["events"]
    assert events.column_names == list(columns)
    assert events.num_rows == len(items)
    first = events.column("occurred_at")[0].as_py()
    assert first == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert events.column("partition").type == pa.uint16()
    assert events.column("type").to_pylist().count("StepFailed") == 1


def test_offsets_other_than_utc_convert_to_the_same_instant():
    tz = timezone(timedelta(hours=-5))
    value = datetime(2026, 3, 1, 7, 30, tzinfo=tz)
    array = pa.array([value], pa.timestamp("ms", tz="UTC"))
    assert array[0].as_py() == datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
