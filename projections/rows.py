"""Pure mapping from records to table rows (no ClickHouse import).

The projector writes two tables itself: ``events`` (every record, the archive)
and ``dead_letters``. ``runs`` and ``steps`` are derived from ``events`` by
materialized views inside ClickHouse (``sql/0002_runs_steps.sql``).
"""

from dataclasses import dataclass, field
from typing import Any

from schemas.deadletters import DeadLetter
from schemas.envelope import Envelope

EVENT_COLUMNS = (
    "event_id", "type", "schema_version", "occurred_at", "tenant_id", "workflow_id", "run_id",
    "step_id", "causation_id", "correlation_id", "payload", "topic", "partition", "offset",
)  # fmt: skip
DEAD_LETTER_COLUMNS = (
    "source_topic", "source_partition", "source_offset", "item_index", "source", "tenant_id",
    "reason", "raw_preview", "dead_lettered_at",
)  # fmt: skip


@dataclass
class TableBatch:
    """Rows of one table, appended as tuples and handed over column by column."""

    table: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def add(self, *values: Any) -> None:
        self.rows.append(values)

    @property
    def data(self) -> list[list[Any]]:
        """Column-oriented view (``data[i]`` holds every value of ``columns[i]``)."""
        if not self.rows:
            return [[] for _ in self.columns]
        return [list(column) for column in zip(*self.rows, strict=True)]

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class ProjectionBatch:
    """Rows for the tables the projector writes, from one slice of the log."""

    events: TableBatch = field(default_factory=lambda: TableBatch("events", EVENT_COLUMNS))
    dead_letters: TableBatch = field(default_factory=lambda: TableBatch("dead_letters", DEAD_LETTER_COLUMNS))

    def tables(self) -> tuple[TableBatch, ...]:
        return (self.events, self.dead_letters)

    def add_record(self, record: Envelope, topic: str, partition: int, offset: int) -> None:
        self.events.rows.append(event_row(record, topic, partition, offset))

    def add_dead_letter(self, letter: DeadLetter) -> None:
        self.dead_letters.rows.append((
            letter.source_topic, letter.source_partition, letter.source_offset,
            letter.item_index, letter.source, letter.tenant_id, letter.reason,
            letter.raw_preview, letter.dead_lettered_at,
        ))  # fmt: skip

    def __len__(self) -> int:
        return sum(len(t) for t in self.tables())


def event_row(record: Envelope, topic: str, partition: int, offset: int) -> tuple[Any, ...]:
    """The archive row of a record; the payload is kept as its canonical JSON."""
    payload = record.payload
    return (
        record.event_id, record.type, record.schema_version, record.occurred_at,
        record.tenant_id, record.workflow_id, record.run_id or "", record.step_id or "",
        record.causation_id, record.correlation_id or "",
        payload.__pydantic_serializer__.to_json(payload).decode(), topic, partition, offset,
    )  # fmt: skip
