"""The discriminated union of every record, decoding, upcasting, JSON Schema.

``decode`` is the one way raw bytes become records. It never raises on bad
input: each item that fails comes back as a ``Rejected`` with its index in the
batch and a readable reason, so callers can dead-letter it and go on.

Old shapes are read through *upcasters*: pure functions registered for
``(type, schema_version)`` that return the dict in the next version's shape.
The current shape of each record is pinned by its ``schema_version`` literal.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Union

import orjson
from pydantic import Field, TypeAdapter, ValidationError

from schemas import topics
from schemas.envelope import Envelope
from schemas.monitoring import MONITORING_RECORDS
from schemas.optimization import OPTIMIZATION_RECORDS
from schemas.runs import RUN_EVENTS
from schemas.troubleshooting import TROUBLESHOOTING_RECORDS
from schemas.workflows import WORKFLOW_RECORDS

ALL_RECORDS: tuple[type[Envelope], ...] = (
    *RUN_EVENTS,
    *WORKFLOW_RECORDS,
    *MONITORING_RECORDS,
    *TROUBLESHOOTING_RECORDS,
    *OPTIMIZATION_RECORDS,
)

RECORD_TYPES: dict[str, type[Envelope]] = {cls.model_fields["type"].default: cls for cls in ALL_RECORDS}

Record = Annotated[Union[*ALL_RECORDS], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007

_ONE: TypeAdapter[Envelope] = TypeAdapter(Record)
_MANY: TypeAdapter[list[Envelope]] = TypeAdapter(list[Record])

TOPIC_BY_TYPE: dict[str, str] = {
    **{cls.model_fields["type"].default: topics.WORKFLOW_EVENTS for cls in RUN_EVENTS},
    **{cls.model_fields["type"].default: topics.WORKFLOW_COMMANDS for cls in WORKFLOW_RECORDS},
    "MetricWindowClosed": topics.METRIC_WINDOWS,
    "AnomalyDetected": topics.ANOMALIES,
    "AlertFired": topics.ALERTS,
    "AlertNotified": topics.ALERTS,
    "AlertResolved": topics.ALERTS,
    "AlertPending": topics.ALERTS,
    "AlertCleared": topics.ALERTS,
    "AlertRuleDefined": topics.ALERT_CONTROL,
    "AlertRuleDeleted": topics.ALERT_CONTROL,
    "AlertRoutesDefined": topics.ALERT_CONTROL,
    "SilenceCreated": topics.ALERT_CONTROL,
    "SilenceExpired": topics.ALERT_CONTROL,
    "AlertRaised": topics.ALERT_CONTROL,
    "AlertAcknowledged": topics.ALERT_CONTROL,
    "WorkerHeartbeat": topics.WORKER_HEARTBEATS,
    **{cls.model_fields["type"].default: topics.TROUBLESHOOTING_SESSIONS for cls in TROUBLESHOOTING_RECORDS},
    "OptimizationAnalyzed": topics.OPTIMIZATIONS,
}

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
UPCASTERS: dict[tuple[str, int], Upcaster] = {}
"""``(type, version) -> function`` returning the record in ``version + 1`` shape."""


def register_upcaster(record_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    def register(fn: Upcaster) -> Upcaster:
        UPCASTERS[(record_type, from_version)] = fn
        return fn

    return register


def upcast(raw: dict[str, Any]) -> dict[str, Any]:
    """Apply registered upcasters until the record reaches its current version."""
    while True:
        version, record_type = raw.get("schema_version"), raw.get("type")
        if not isinstance(version, int) or not isinstance(record_type, str):
            return raw
        step = UPCASTERS.get((record_type, version))
        if step is None:
            return raw
        raw = {**step(raw), "schema_version": version + 1}


@dataclass(frozen=True, slots=True)
class Rejected:
    """One item that could not become a record."""

    index: int | None
    """Position in a batch; None when the whole value was unreadable."""
    reason: str


def describe(error: ValidationError) -> str:
    """A compact, human-readable summary of a pydantic error."""
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"] if not _is_union_tag(p)) or "record"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts[:8]) + (f" (+{len(parts) - 8} more)" if len(parts) > 8 else "")


def _is_union_tag(part: object) -> bool:
    return isinstance(part, str) and part in RECORD_TYPES


def validate_item(item: Any) -> Envelope | str:
    """Validate one decoded JSON value; a string is the reason it was refused."""
    if not isinstance(item, dict):
        return f"expected a JSON object, got {type(item).__name__}"
    try:
        return _ONE.validate_python(upcast(item))
    except ValidationError as exc:
        return describe(exc)


def decode(value: bytes | None) -> tuple[list[Envelope], list[Rejected]]:
    """Decode one Kafka record value (one object or an array of them).

    The fast path validates the whole value in one pass of pydantic's JSON
    parser; only when that fails is it taken apart item by item so that the
    valid items survive and each bad one gets its own reason.
    """
    if not value:
        return [], [Rejected(None, "empty record value")]
    try:
        if value[:1] == b"[":
            return _MANY.validate_json(value), []
        return [_ONE.validate_json(value)], []
    except ValidationError:
        pass
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return [], [Rejected(None, f"not valid UTF-8 JSON: {exc}")]
    if isinstance(parsed, dict):
        outcome = validate_item(parsed)
        return ([outcome], []) if isinstance(outcome, Envelope) else ([], [Rejected(None, outcome)])
    if not isinstance(parsed, list):
        return [], [Rejected(None, f"expected an object or an array, got {type(parsed).__name__}")]
    good: list[Envelope] = []
    bad: list[Rejected] = []
    for index, item in enumerate(parsed):
        outcome = validate_item(item)
        if isinstance(outcome, Envelope):
            good.append(outcome)
        else:
            bad.append(Rejected(index, outcome))
    return good, bad


def encode(records: Iterable[Envelope]) -> bytes:
    """Encode records as one JSON array value (they should share a partition key)."""
    return b"[" + b",".join(r.__pydantic_serializer__.to_json(r) for r in records) + b"]"


def to_json(record: Envelope) -> bytes:
    return record.__pydantic_serializer__.to_json(record)


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every record type, plus ``Record`` (the union) itself."""
    schemas = {name: cls.model_json_schema() for name, cls in RECORD_TYPES.items()}
    schemas["Record"] = _ONE.json_schema()
    return schemas
