"""Turn a slice of the log into table rows and dead letters (pure, no Kafka).

A slice is any sequence of ``LogRecord``; the projector feeds what one
``getmany`` returned. Nothing here raises on bad data: undecodable values and
invalid items become ``DeadLetter`` values carrying the reason and
``topic[partition]@offset#index``.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from pydantic import ValidationError

from projections.rows import ProjectionBatch
from projections.summaries import Summary, summarize
from schemas import topics
from schemas.deadletters import DeadLetter, preview
from schemas.registry import decode


@dataclass(frozen=True, slots=True)
class LogRecord:
    topic: str
    partition: int
    offset: int
    value: bytes | None


@dataclass
class SliceResult:
    batch: ProjectionBatch
    new_dead_letters: list[DeadLetter]
    """Dead letters found in this slice, to publish on the dead-letter topic."""
    records: int = 0
    summaries: list[Summary] = field(default_factory=list)
    """Live summaries of the slice's records, when asked for (``summarize_records=True``)."""


def project_slice(records: Iterable[LogRecord], *, now: datetime, summarize_records: bool = False) -> SliceResult:
    batch = ProjectionBatch()
    letters: list[DeadLetter] = []
    summaries: list[Summary] = []
    count = 0
    for rec in records:
        if rec.topic == topics.DEAD_LETTERS:
            _project_dead_letter(batch, rec)
            continue
        good, bad = decode(rec.value)
        for record in good:
            batch.add_record(record, rec.topic, rec.partition, rec.offset)
        if summarize_records:
            summaries += [s for s in map(summarize, good) if s is not None]
        count += len(good)
        for rejected in bad:
            letters.append(
                DeadLetter(
                    source_topic=rec.topic,
                    source_partition=rec.partition,
                    source_offset=rec.offset,
                    item_index=-1 if rejected.index is None else rejected.index,
                    reason=rejected.reason,
                    raw_preview=preview(rec.value),
                    tenant_id=_guess_tenant(rec.value, rejected.index),
                    dead_lettered_at=now,
                )
            )
    return SliceResult(batch, letters, count, summaries)


def _project_dead_letter(batch: ProjectionBatch, rec: LogRecord) -> None:
    try:
        batch.add_dead_letter(DeadLetter.model_validate_json(rec.value or b""))
    except ValidationError:
        # A malformed record on the dead-letter topic itself has nowhere further to go.
        pass


def _guess_tenant(value: bytes | None, index: int | None) -> str:
    """Best-effort tenant of a bad item, so the tenant can see its own dead letters."""
    try:
        parsed = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return ""
    if isinstance(parsed, list) and index is not None and index < len(parsed):
        parsed = parsed[index]
    tenant = parsed.get("tenant_id") if isinstance(parsed, dict) else None
    return tenant if isinstance(tenant, str) and len(tenant) <= 128 else ""
