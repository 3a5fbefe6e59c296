"""One troubleshooting analysis: classify, rank causes, propose actions, as session events (pure).

``analyze(request, attempts)`` takes what a person or system reports (a
workflow and error lines from its logs) and the step attempts of the time
before it, and returns the session: each error line classified, the causes
ranked over the attempts (the lines count as failures of the workflow too),
the actions for the top cause, and the events that record all of it:
``SessionOpened``, ``EvidenceAdded`` (one per error line, one for the
failures found), ``RootCauseRanked``, ``ResolutionProposed`` per action.

Only attempts that bear on the workflow are ranked: its own, and those of
other workflows on the services its failures involve (an outage shows in
them). Log lines are redacted before they enter an event.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.error_classifier import classify
from domain.rca import Attempt, Candidate, rank
from domain.redaction import redact
from domain.remedies import Proposal, propose
from schemas.envelope import Envelope, deterministic_event_id
from schemas.troubleshooting import (
    EvidenceAdded,
    EvidencePayload,
    ResolutionPayload,
    ResolutionProposed,
    RootCauseCandidate,
    RootCauseRanked,
    RootCauseRankedPayload,
    SessionOpened,
    SessionOpenedPayload,
)

MAX_LINES = 200
MAX_LINE_CHARS = 8192
MAX_CANDIDATES = 10


@dataclass(frozen=True)
class Request:
    session_id: str
    tenant_id: str
    workflow_id: str
    at: datetime
    error_logs: Sequence[str] = ()
    user_id: str | None = None
    trigger: str = "analyze"
    """What opened the session: ``analyze`` (asked for), ``failed_run``, ``failure_burst`` ..."""


@dataclass(frozen=True)
class Analysis:
    session_id: str
    classifications: list[dict[str, Any]]
    candidates: list[Candidate]
    proposals: list[Proposal]
    summary: str
    events: list[Envelope] = field(repr=False)
    failures_seen: int = 0


def analyze(request: Request, attempts: Sequence[Attempt]) -> Analysis:
    lines = [redact(line[:MAX_LINE_CHARS]) for line in request.error_logs[:MAX_LINES] if line.strip()]
    classified = [(line, classify(line)) for line in lines]
    at = request.at.timestamp()
    from_logs = [
        Attempt(request.tenant_id, request.workflow_id, f"log-{i}", "log", c.service or "unknown", at, False,
                c.error_class, None, line)
        for i, (line, c) in enumerate(classified)
    ]  # fmt: skip
    relevant = _relevant(request, attempts) + from_logs
    candidates = rank(relevant)[:MAX_CANDIDATES]
    top = candidates[0] if candidates else None
    affected = sorted({a.workflow_id for a in relevant if not a.ok and top and (a.run_id, a.step_id) in top.failures})
    proposals = propose(top, workflows=affected) if top else []
    failures = sum(1 for a in relevant if not a.ok)
    summary = _summary(request, top, failures)
    classifications = [
        {"line": line[:500], "error_class": c.error_class, "confidence": round(c.confidence, 3),
         "retryable": c.retryable, "service": c.service, "retry_after_s": c.retry_after_s, "why": c.explain()}
        for line, c in classified
    ]  # fmt: skip
    events = _events(request, classifications, candidates, proposals, summary, failures)
    return Analysis(request.session_id, classifications, candidates, proposals, summary, events, failures)


def _relevant(request: Request, attempts: Sequence[Attempt]) -> list[Attempt]:
    key = (request.tenant_id, request.workflow_id)
    own = [a for a in attempts if (a.tenant_id, a.workflow_id) == key]
    services = {a.service for a in own if not a.ok}
    return own + [a for a in attempts if a.service in services and (a.tenant_id, a.workflow_id) != key]


def _summary(request: Request, top: Candidate | None, failures: int) -> str:
    if top is None:
        return f"{request.workflow_id}: no failures found to explain"
    about = ", ".join(f"{k} {v}" for k, v in top.subject.items() if k != "tenant_id") or "no shared subject"
    return f"{request.workflow_id}: {failures} failures; likeliest cause {top.cause} ({about}), {top.confidence:.0%}"


def _events(
    request: Request,
    classifications: list[dict[str, Any]],
    candidates: list[Candidate],
    proposals: list[Proposal],
    summary: str,
    failures: int,
) -> list[Envelope]:
    sid = request.session_id
    base = {"occurred_at": request.at, "tenant_id": request.tenant_id, "workflow_id": request.workflow_id,
            "correlation_id": sid}  # fmt: skip
    opened = SessionOpened(
        event_id=deterministic_event_id(sid, "opened"), **base,
        payload=SessionOpenedPayload(session_id=sid, trigger=request.trigger, summary=summary[:1024],
                                     detail={"user_id": request.user_id, "error_lines": len(classifications)}),
    )  # fmt: skip
    after = {**base, "causation_id": opened.event_id}
    events: list[Envelope] = [opened]
    for i, c in enumerate(classifications):
        events.append(EvidenceAdded(
            event_id=deterministic_event_id(sid, "log", str(i)), **after,
            payload=EvidencePayload(session_id=sid, kind="log_line", error_class=c["error_class"], detail=c),
        ))  # fmt: skip
    events.append(EvidenceAdded(
        event_id=deterministic_event_id(sid, "failures"), **after,
        payload=EvidencePayload(session_id=sid, kind="step_failures",
                                error_class=candidates[0].error_class if candidates else None,
                                detail={"failures": failures}),
    ))  # fmt: skip
    if candidates:
        ranked = RootCauseRanked(
            event_id=deterministic_event_id(sid, "ranked"), **after,
            payload=RootCauseRankedPayload(session_id=sid, candidates=tuple(
                RootCauseCandidate(cause=c.cause, confidence=c.confidence,
                                   evidence={"subject": c.subject, "role": c.role, "error_class": c.error_class,
                                             **c.evidence})
                for c in candidates
            )),
        )  # fmt: skip
        events.append(ranked)
        for i, p in enumerate(proposals):
            events.append(ResolutionProposed(
                event_id=deterministic_event_id(sid, "proposed", str(i)), **{**base, "causation_id": ranked.event_id},
                payload=ResolutionPayload(session_id=sid, action=p.action, detail=p.to_json()),
            ))  # fmt: skip
    return [e.model_copy(update={"payload": e.payload.model_copy(update={"seq": i})}) for i, e in enumerate(events)]
