"""The public event contract: one envelope, a discriminated union of records.

Non-Python producers validate against the JSON Schemas written by
``flowledger schemas export DIR``.
"""

from schemas.envelope import Envelope, deterministic_event_id, new_event_id, utcnow
from schemas.registry import (
    RECORD_TYPES,
    TOPIC_BY_TYPE,
    Record,
    Rejected,
    decode,
    encode,
    json_schemas,
    to_json,
    validate_item,
)
from schemas.runs import (
    RunCancelled,
    RunFailed,
    RunResumed,
    RunStarted,
    RunSucceeded,
    StepFailed,
    StepRetryScheduled,
    StepSkipped,
    StepStarted,
    StepSucceeded,
)

__all__ = [
    "RECORD_TYPES",
    "TOPIC_BY_TYPE",
    "Envelope",
    "Record",
    "Rejected",
    "RunCancelled",
    "RunFailed",
    "RunResumed",
    "RunStarted",
    "RunSucceeded",
    "StepFailed",
    "StepRetryScheduled",
    "StepSkipped",
    "StepStarted",
    "StepSucceeded",
    "decode",
    "deterministic_event_id",
    "encode",
    "json_schemas",
    "new_event_id",
    "to_json",
    "utcnow",
    "validate_item",
]
