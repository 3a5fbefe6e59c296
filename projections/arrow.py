"""Encode a ``ProjectionBatch`` as Arrow IPC streams, one per table.

Arrow is how a slice crosses from a decoding worker process to the process
that owns ClickHouse: building the arrays happens where the rows were made,
and the owner hands the bytes to ClickHouse (``FORMAT ArrowStream``) without
touching a single row in Python.
"""

from typing import Any

import pyarrow as pa

from projections.rows import ProjectionBatch, TableBatch

_STRING = pa.string()
_TIME = pa.timestamp("ms", tz="UTC")
_TYPES: dict[str, pa.DataType] = {
    "schema_version": pa.uint16(), "partition": pa.uint16(), "offset": pa.uint64(),
    "status_rank": pa.uint8(), "attempt": pa.uint16(), "definition_version": pa.uint32(),
    "source_partition": pa.uint16(), "source_offset": pa.uint64(), "item_index": pa.int32(),
    "error_status_code": pa.uint16(),
    "duration_ms": pa.float64(), "cost": pa.float64(), "retry_after_s": pa.float64(),
    "occurred_at": _TIME, "started_at": _TIME, "ended_at": _TIME, "dead_lettered_at": _TIME,
}  # fmt: skip


def _array(name: str, values: list[Any]) -> pa.Array:
    return pa.array(values, _TYPES.get(name, _STRING))


def table_to_ipc(table: TableBatch) -> bytes:
    arrays = [_array(name, column) for name, column in zip(table.columns, table.data, strict=True)]
    sink = pa.BufferOutputStream()
    record_batch = pa.RecordBatch.from_arrays(arrays, names=list(table.columns))
    with pa.ipc.new_stream(sink, record_batch.schema) as writer:
        writer.write_batch(record_batch)
    stream: bytes = sink.getvalue().to_pybytes()
    return stream


def batch_to_ipc(batch: ProjectionBatch) -> list[tuple[str, tuple[str, ...], bytes]]:
    """``(table, columns, arrow_stream_bytes)`` for every table that has rows."""
    return [(t.table, t.columns, table_to_ipc(t)) for t in batch.tables() if len(t)]
