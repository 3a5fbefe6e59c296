"""Troubleshooting: analyse a workflow's failures and read the sessions that record it."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from api import examples
from api.deps import State, Tenant, tenant_for
from domain.troubleshooting import MAX_LINE_CHARS, MAX_LINES, Request, analyze
from projections import troubleshooting_queries as queries
from schemas.envelope import Identifier

router = APIRouter(prefix="/api/workflows/troubleshooting", tags=["troubleshooting"])

LogLine = Annotated[str, StringConstraints(max_length=MAX_LINE_CHARS)]


class AnalyzeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "workflow_id": examples.WORKFLOW_ID,
        "error_logs": ["slack: 429 Too Many Requests: rate limited, retry after 30s",
                       "asana: 401 Unauthorized: token expired"],
        "user_id": "maria@acme", "window_s": 3600,
    }]})  # fmt: skip

    workflow_id: Identifier
    error_logs: list[LogLine] = Field(default_factory=list, max_length=MAX_LINES)
    """Error lines from the workflow's logs or a service's answers (redacted before they are stored)."""
    user_id: Identifier | None = None
    window_s: float = Field(default=3600.0, ge=60, le=7 * 86400)
    """How far back to read the workflow's step attempts."""


class SessionPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "session_id": "ts-3b9d2f7a1c4e8d06", "workflow_id": examples.WORKFLOW_ID, "status": "open",
        "summary": f"{examples.WORKFLOW_ID}: 2 failures; likeliest cause rate_limit (service slack), 90%",
        "classifications": [{
            "line": "slack: 429 Too Many Requests: rate limited, retry after 30s", "error_class": "rate_limited",
            "confidence": 0.9, "retryable": True, "service": "slack", "retry_after_s": 30.0,
            "why": "rate_limited (0.90): text 'too many requests' -> rate_limited +3; "
                   "status '429' -> rate_limited +2.5",
        }],
        "causes": [{"cause": "rate_limit", "subject": {"service": "slack"}, "error_class": "rate_limited",
                    "confidence": 0.9, "role": "cause",
                    "evidence": {"failures": 12, "calls": 40, "failure_share": 1.0}}],
        "proposals": [{"action": "lower_concurrency", "automatic": True, "reason": "slack answers 429 on 30% of calls",
                       "params": {"service": "slack", "factor": 0.5}}],
        "failures_seen": 12,
    }]})  # fmt: skip

    session_id: str
    workflow_id: str
    status: str
    summary: str
    classifications: list[dict[str, Any]]
    """Each error line: its class, confidence, whether it is transient, the service it names, and why."""
    causes: list[dict[str, Any]]
    """Ranked: the first is the cause, the others symptoms or alternatives, each with its evidence."""
    proposals: list[dict[str, Any]]
    """What to do about the cause: `automatic` actions are safe to apply unattended."""
    failures_seen: int


@router.post("/analyze", response_model=SessionPublic, status_code=status.HTTP_201_CREATED)
async def analyze_workflow(body: AnalyzeRequest, state: State, tenant: Tenant) -> SessionPublic:
    """Classify the error lines, rank the causes of the workflow's recent failures, propose actions.

    The session is recorded as events (`SessionOpened`, `EvidenceAdded`, `RootCauseRanked`,
    `ResolutionProposed`) on the troubleshooting topic; read it back with `GET .../sessions/{id}`.
    """
    now = datetime.now(UTC)
    found = await run_in_threadpool(
        queries.attempts, state.warehouse, tenant, now - timedelta(seconds=body.window_s), now
    )
    request = Request(f"ts-{uuid.uuid4().hex[:16]}", tenant, body.workflow_id, now, body.error_logs, body.user_id)
    result = await run_in_threadpool(analyze, request, found)
    await state.producer.send(result.events)
    return SessionPublic(
        session_id=result.session_id,
        workflow_id=body.workflow_id,
        status="open",
        summary=result.summary,
        classifications=result.classifications,
        causes=[c.to_json() for c in result.candidates],
        proposals=[p.to_json() for p in result.proposals],
        failures_seen=result.failures_seen,
    )


class SessionsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"sessions": [{
        "session_id": "ts-3b9d2f7a1c4e8d06", "workflow_id": examples.WORKFLOW_ID,
        "opened_at": "2026-03-02T09:20:00.000Z", "updated_at": "2026-03-02T09:26:31.200Z", "opened_by": "api",
        "summary": f"{examples.WORKFLOW_ID}: 12 failures; likeliest cause rate_limit (service slack), 90%",
        "applied": 1, "verified": 1, "failed": 0, "status": "closed",
        "top_cause": {"cause": "rate_limit", "subject": {"service": "slack"}, "confidence": 0.9, "role": "cause"},
    }]}]})  # fmt: skip

    sessions: list[dict[str, Any]]


@router.get("/sessions", response_model=SessionsPublic)
async def list_sessions(
    state: State,
    caller: Tenant,
    workflow_id: Annotated[str, Query(max_length=128)] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    tenant: Annotated[str | None, Query(description="operator keys: the tenant to read")] = None,
) -> SessionsPublic:
    """Sessions, newest first: open or closed, what opened them, the top cause, resolutions applied."""
    rows = await run_in_threadpool(queries.sessions, state.warehouse, tenant_for(caller, tenant), workflow_id, limit)
    return SessionsPublic(sessions=rows)


class TimelinePublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"session_id": "ts-3b9d2f7a1c4e8d06", "events": [
        {"event_id": "c2a1f0e9-8d7c-4b6a-9f5e-4d3c2b1a0f9e", "type": "SessionOpened",
         "occurred_at": "2026-03-02T09:20:00.000Z", "workflow_id": examples.WORKFLOW_ID, "causation_id": None,
         "payload": {"session_id": "ts-3b9d2f7a1c4e8d06", "seq": 0, "trigger": "api"}},
        {"event_id": "d3b2a1f0-9e8d-4c7b-8a6f-5e4d3c2b1a0f", "type": "RootCauseRanked",
         "occurred_at": "2026-03-02T09:20:00.000Z", "workflow_id": examples.WORKFLOW_ID,
         "causation_id": "c2a1f0e9-8d7c-4b6a-9f5e-4d3c2b1a0f9e",
         "payload": {"session_id": "ts-3b9d2f7a1c4e8d06", "seq": 2,
                     "candidates": [{"cause": "rate_limit", "subject": {"service": "slack"}, "confidence": 0.9}]}},
    ]}]})  # fmt: skip

    session_id: str
    events: list[dict[str, Any]]


@router.get(
    "/sessions/{session_id}", response_model=TimelinePublic,
    responses={404: examples.error("no such session", "no session 'ts-3b9d2f7a1c4e8d06'")},
)
async def get_session(
    state: State,
    caller: Tenant,
    session_id: Annotated[str, Path(max_length=128)],
    tenant: Annotated[str | None, Query(description="operator keys: the tenant to read")] = None,
) -> TimelinePublic:
    """The session's events in order: what was seen, ranked, proposed, applied and verified."""
    events = await run_in_threadpool(queries.timeline, state.warehouse, tenant_for(caller, tenant), session_id)
    if not events:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no session '{session_id}'")
    return TimelinePublic(session_id=session_id, events=events)
