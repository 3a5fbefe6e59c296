"""The one envelope every Flowledger event and command travels in.

Every record on every topic is an ``Envelope`` subclass: the envelope fields
are fixed, ``type`` names the record and selects the ``payload`` model, and
``schema_version`` says which shape of that payload the producer wrote. Events
are named in the past tense (``StepFailed``), commands in the imperative
(``RetryStep``).

Identifiers are deliberately restricted to a safe alphabet so they can be
used as Kafka keys, ClickHouse values and URL path segments without escaping.
"""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$"),
]
"""A tenant, workflow, run or step id: 1-128 characters, no spaces."""


EventId = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
]
"""A UUID in its canonical lowercase text form (RFC 9562), e.g. from ``uuid.uuid4()``."""

UtcDatetime = AwareDatetime
"""An RFC 3339 timestamp with an explicit zone. Any offset is accepted and kept;
storage and the query API work in UTC (it is not converted here: that cost a
tenth of decode time on the projection hot path)."""


class FrozenModel(BaseModel):
    """Base of every schema model: immutable and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Envelope(FrozenModel):
    """Fields shared by every event and command.

    Subclasses pin ``type`` to a literal and ``schema_version`` to the current
    version of their payload, and declare ``payload``.
    """

    event_id: EventId = Field(description="Unique id; re-sending the same id is harmless.")
    type: str
    schema_version: int = Field(ge=1)
    occurred_at: UtcDatetime = Field(description="When it happened (RFC 3339, with zone).")
    tenant_id: Identifier
    workflow_id: Identifier
    run_id: Identifier | None = None
    step_id: Identifier | None = None
    causation_id: EventId | None = Field(default=None, description="event_id of the record that caused this one.")
    correlation_id: str | None = Field(
        default=None, max_length=128, description="Groups every record of one business flow."
    )
    payload: Any

    @property
    def partition_key(self) -> str:
        """Kafka key: every record of one run (or one workflow) lands in one partition."""
        return self.run_id or self.workflow_id


def new_event_id() -> str:
    return str(uuid.uuid4())


def deterministic_event_id(*parts: str) -> str:
    """An id derived from its causes, so a replayed decision produces the same id."""
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))


_NAMESPACE = uuid.UUID("6f1c7f8e-3d0b-5b8e-9a57-0c6b1f5e2a11")


def utcnow() -> datetime:
    return datetime.now(UTC)
