"""A troubleshooting session is an event stream keyed by ``session_id``.

SessionOpened -> EvidenceAdded* -> RootCauseRanked -> ResolutionProposed ->
ResolutionApplied -> ResolutionVerified | ResolutionFailed -> SessionClosed
"""

from typing import Any, Literal

from pydantic import Field

from schemas.envelope import Envelope, FrozenModel, Identifier

ErrorClass = Literal[
    "credentials",
    "rate_limited",
    "timeout",
    "network",
    "upstream_5xx",
    "bad_input",
    "not_found",
    "quota_exhausted",
    "step_bug",
    "unknown",
]


class SessionPayload(FrozenModel):
    session_id: Identifier
    detail: dict[str, Any] = Field(default_factory=dict)
    seq: int = Field(default=0, ge=0, description="Order within the session (events of one moment share a time).")


class SessionOpenedPayload(SessionPayload):
    trigger: str = Field(max_length=128, description="failed_run, failure_burst, stuck_run ...")
    summary: str = Field(max_length=1024)


class EvidencePayload(SessionPayload):
    kind: str = Field(max_length=64)
    error_class: ErrorClass | None = None


class RootCauseCandidate(FrozenModel):
    cause: str = Field(max_length=64)
    confidence: float = Field(ge=0, le=1)
    evidence: dict[str, Any] = Field(default_factory=dict)


class RootCauseRankedPayload(SessionPayload):
    candidates: tuple[RootCauseCandidate, ...]


class ResolutionPayload(SessionPayload):
    action: str = Field(max_length=64)


class SessionOpened(Envelope):
    type: Literal["SessionOpened"] = "SessionOpened"
    schema_version: Literal[1] = 1
    payload: SessionOpenedPayload


class EvidenceAdded(Envelope):
    type: Literal["EvidenceAdded"] = "EvidenceAdded"
    schema_version: Literal[1] = 1
    payload: EvidencePayload


class RootCauseRanked(Envelope):
    type: Literal["RootCauseRanked"] = "RootCauseRanked"
    schema_version: Literal[1] = 1
    payload: RootCauseRankedPayload


class ResolutionProposed(Envelope):
    type: Literal["ResolutionProposed"] = "ResolutionProposed"
    schema_version: Literal[1] = 1
    payload: ResolutionPayload


class ResolutionApplied(Envelope):
    type: Literal["ResolutionApplied"] = "ResolutionApplied"
    schema_version: Literal[1] = 1
    payload: ResolutionPayload


class ResolutionVerified(Envelope):
    type: Literal["ResolutionVerified"] = "ResolutionVerified"
    schema_version: Literal[1] = 1
    payload: ResolutionPayload


class ResolutionFailed(Envelope):
    type: Literal["ResolutionFailed"] = "ResolutionFailed"
    schema_version: Literal[1] = 1
    payload: ResolutionPayload


class SessionClosed(Envelope):
    type: Literal["SessionClosed"] = "SessionClosed"
    schema_version: Literal[1] = 1
    payload: SessionPayload


TROUBLESHOOTING_RECORDS = (
    SessionOpened,
    EvidenceAdded,
    RootCauseRanked,
    ResolutionProposed,
    ResolutionApplied,
    ResolutionVerified,
    ResolutionFailed,
    SessionClosed,
)
