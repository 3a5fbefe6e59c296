"""Pure mapping from records to table rows (no ClickHouse import).

``TableBatch`` accumulates rows column by column, the layout clickhouse-connect
inserts fastest. ``rows_for`` decides which tables a record touches.
"""

from dataclasses import dataclass, field
from typing import Any

from schemas.deadletters import DeadLetter
from schemas.envelope import Envelope
from schemas.runs import (
    RunCancelled,
    RunFailed,
    RunStarted,
    RunSucceeded,
    StepFailed,
    StepStarted,
    StepSucceeded,
)

EVENT_COLUMNS = (
    "event_id", "type", "schema_version", "occurred_at", "tenant_id", "workflow_id", "run_id",
    "step_id", "causation_id", "correlation_id", "payload", "topic", "partition", "offset",
)  # fmt: skip
RUN_COLUMNS = (
    "tenant_id", "workflow_id", "run_id", "event_id", "occurred_at", "status", "status_rank",
    "started_at", "ended_at", "duration_ms", "definition_version", "error_message",
)  # fmt: skip
STEP_COLUMNS = (
    "tenant_id", "workflow_id", "run_id", "step_id", "attempt", "event_id", "occurred_at",
    "status", "status_rank", "service", "action", "credential_id", "duration_ms", "cost",
    "error_type", "error_message", "error_status_code", "retry_after_s",
)  # fmt: skip
DEAD_LETTER_COLUMNS = (
    "source_topic", "source_partition", "source_offset", "item_index", "source", "tenant_id",
    "reason", "raw_preview", "dead_lettered_at",
)  # fmt: skip

RUNNING, TERMINAL = 1, 2
_STEP_TYPES = frozenset({"StepStarted", "StepSucceeded", "StepFailed"})
_RUN_TYPES = frozenset({"RunStarted", "RunSucceeded", "RunFailed", "RunCancelled"})


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
    """Rows for every projected table from one slice of the log."""

    events: TableBatch = field(default_factory=lambda: TableBatch("events", EVENT_COLUMNS))
    runs: TableBatch = field(default_factory=lambda: TableBatch("runs", RUN_COLUMNS))
    steps: TableBatch = field(default_factory=lambda: TableBatch("steps", STEP_COLUMNS))
    dead_letters: TableBatch = field(
        default_factory=lambda: TableBatch("dead_letters", DEAD_LETTER_COLUMNS)
    )

    _running: dict[tuple[str, str, str], list[tuple[Any, ...]]] = field(default_factory=dict)
    """Per run, the earliest and latest "running" row seen from step events."""

    def tables(self) -> tuple[TableBatch, ...]:
        for rows in self._running.values():
            for row in rows:
                self.runs.add(*row)
        self._running.clear()
        return (self.events, self.runs, self.steps, self.dead_letters)

    def add_record(self, record: Envelope, topic: str, partition: int, offset: int) -> None:
        payload = record.payload
        self.events.rows.append((
            record.event_id, record.type, record.schema_version, record.occurred_at,
            record.tenant_id, record.workflow_id, record.run_id or "", record.step_id or "",
            record.causation_id, record.correlation_id or "",
            payload.__pydantic_serializer__.to_json(payload).decode(), topic, partition, offset,
        ))  # fmt: skip
        if record.type in _STEP_TYPES:
            self.steps.rows.append(step_row_for(record))  # type: ignore[arg-type]
            self._keep_running_bounds(run_row_for(record))  # type: ignore[arg-type]
        elif record.type in _RUN_TYPES:
            self.runs.rows.append(run_row_for(record))  # type: ignore[arg-type]

    def _keep_running_bounds(self, row: tuple[Any, ...]) -> None:
        """Step events only say "the run is running at t": the fold reads just the
        earliest (start fallback) and latest (status) of them, so a batch keeps two."""
        key = (row[0], row[1], row[2])
        bounds = self._running.get(key)
        if bounds is None:
            self._running[key] = [row]
        elif row[4] < bounds[0][4]:
            bounds[:] = [row, bounds[-1]]
        elif row[4] >= bounds[-1][4]:
            bounds[1:] = [row]

    def add_dead_letter(self, letter: DeadLetter) -> None:
        self.dead_letters.add(
            letter.source_topic, letter.source_partition, letter.source_offset,
            letter.item_index, letter.source, letter.tenant_id, letter.reason,
            letter.raw_preview, letter.dead_lettered_at,
        )  # fmt: skip

    def __len__(self) -> int:
        return sum(len(t) for t in self.tables())


def run_row_for(record: Envelope) -> tuple[Any, ...] | None:
    """The ``runs`` row of a run event, or None for records that are not about a run."""
    started = ended = duration = version = None
    error = ""
    match record:
        case RunStarted():
            status, rank, started = "running", RUNNING, record.occurred_at
            version = record.payload.definition_version
        case StepStarted() | StepSucceeded() | StepFailed():
            status, rank = "running", RUNNING
        case RunSucceeded():
            status, rank, ended = "succeeded", TERMINAL, record.occurred_at
            duration = record.payload.duration_ms
        case RunFailed():
            status, rank, ended = "failed", TERMINAL, record.occurred_at
            duration = record.payload.duration_ms
            error = record.payload.error.message if record.payload.error else ""
        case RunCancelled():
            status, rank, ended = "cancelled", TERMINAL, record.occurred_at
            error = record.payload.reason or ""
        case _:
            return None
    return (
        record.tenant_id, record.workflow_id, record.run_id, record.event_id, record.occurred_at,
        status, rank, started, ended, duration, version, error,
    )  # fmt: skip


def step_row_for(record: Envelope) -> tuple[Any, ...] | None:
    """The ``steps`` row of a step event, or None."""
    match record:
        case StepStarted():
            status, rank, duration, cost, err = "running", RUNNING, None, None, None
        case StepSucceeded():
            status, rank, err = "succeeded", TERMINAL, None
            duration, cost = record.payload.duration_ms, record.payload.cost
        case StepFailed():
            status, rank, err = "failed", TERMINAL, record.payload.error
            duration, cost = record.payload.duration_ms, record.payload.cost
        case _:
            return None
    p = record.payload
    return (
        record.tenant_id, record.workflow_id, record.run_id, record.step_id, p.attempt,
        record.event_id, record.occurred_at, status, rank, p.service, p.action,
        p.credential_id or "", duration, cost,
        err.type if err else "", err.message if err else "",
        err.status_code if err else None, err.retry_after_s if err else None,
    )  # fmt: skip
