"""Generation: a workflow definition from a sentence (``POST /api/workflows/automation/generate``).

The detectors are built once per process (``api.detectors``). The tenant's
service history comes from the projections and is cached for
``HISTORY_TTL_S``.
"""

import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from api import examples
from api.deps import State, Tenant
from domain.dag import DefinitionError, plan_definition
from domain.generation import MAX_INPUT_CHARS, GenerationError, History, generate
from domain.patterns import Patterns, mine
from projections import queries
from schemas.envelope import Identifier
from schemas.workflows import WorkflowDefinition

router = APIRouter(prefix="/api/workflows/automation", tags=["generation"])

HISTORY_TTL_S = 30.0


_history: dict[str, tuple[float, History, Patterns]] = {}


def _history_of(state: Any, tenant: str) -> tuple[History, Patterns]:
    """The services the tenant used and the patterns of its workflows, from the projections (cached)."""
    cached = _history.get(tenant)
    if cached and time.monotonic() - cached[0] < HISTORY_TTL_S:
        return cached[1], cached[2]
    history = History(queries.service_history(state.warehouse, tenant))
    patterns = mine(queries.current_definitions(state.warehouse, tenant), ())
    _history[tenant] = (time.monotonic(), history, patterns)
    return history, patterns


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "user_input": "when an important email arrives, create an Asana task and notify the team on Slack",
        "user_id": "maria@acme",
    }]})  # fmt: skip

    user_input: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_INPUT_CHARS)]
    """What the workflow should do, in plain words."""
    user_id: Identifier | None = None
    """Who asks; echoed back (history is the tenant's: events carry the tenant, not the user)."""
    enhanced_intelligence: bool = True
    """The learned detector; ``false``: the keyword path alone."""
    context_aware: bool = True
    """Let the tenant's history pick among generic services ("email" -> the Gmail they use), rank other
    readings by the tenant's workflow patterns and suggest its templates."""


class GeneratedPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "workflow": {
            "name": "when an important email arrives, create an Asana ...",
            "description": "when an important email arrives, create an Asana task and notify the team on Slack",
            "trigger": {"service": "email", "event": "send_ifttt_an_email_tagged",
                        "filter": 'trigger.importance == "high"'},
            "steps": [
                {"id": "asana", "service": "asana", "action": "task", "params": {"name": "{{ trigger.subject }}"}},
                {"id": "slack", "service": "slack", "action": "new_message", "params": {"text": "{{ trigger.body }}"}},
            ],
        },
        "suggested_id": "email-to-asana-to-slack", "order": ["asana", "slack"],
        "services": [
            {"service": "email", "role": "trigger", "confidence": 0.9, "function": "send_ifttt_an_email_tagged"},
            {"service": "asana", "role": "action", "confidence": 0.9, "function": "task"},
            {"service": "slack", "role": "action", "confidence": 0.9, "function": "new_message"},
        ],
        "confidence": 0.81, "alternatives": [],
        "explanation": [
            "trigger: Email 'send_ifttt_an_email_tagged'", "only when 'important': trigger.importance == \"high\"",
            "step asana: Asana 'task'", "step slack: Slack 'new_message'",
            "asana, slack do not depend on each other and run in parallel",
        ],
        "missing_params": {}, "templates": [], "detector": "learned", "history_services": 4,
        "user_id": "maria@acme", "elapsed_ms": 3.42,
    }]})  # fmt: skip

    workflow: dict[str, Any]
    """A definition `POST /api/workflows` accepts (add an `id`)."""
    suggested_id: str
    order: list[str]
    services: list[dict[str, Any]]
    confidence: float = Field(ge=0, le=1)
    alternatives: list[dict[str, Any]]
    explanation: list[str]
    missing_params: dict[str, list[str]]
    """Step id -> required parameters the text does not give: fill them before running against a real service."""
    templates: list[dict[str, Any]]
    """The tenant's frequent workflow shapes starting with the same trigger (at least two workflows each)."""
    detector: str
    """``learned`` or ``keyword``."""
    history_services: int
    """How many services of the tenant's history were known to the generator (0 when not context-aware)."""
    user_id: str | None
    elapsed_ms: float


@router.post(
    "/generate",
    response_model=GeneratedPublic,
    responses={422: examples.error("the text names nothing to do, or the request is malformed", {
        "message": "no service or action found in the text", "detected": {"services": [], "conditions": []}})},
)
async def generate_workflow(body: GenerateRequest, state: State, tenant: Tenant) -> GeneratedPublic:
    """A workflow definition from a sentence: services, functions, conditions, order, and why."""
    started = time.perf_counter()
    detectors = state.detectors
    detector = (await run_in_threadpool(detectors.learned)) if body.enhanced_intelligence else None
    kind = "learned" if detector is not None else "keyword"
    detector = detector or detectors.keyword
    history, patterns = await run_in_threadpool(_history_of, state, tenant) if body.context_aware else (None, None)
    detection = detector.detect(body.user_input)
    try:
        made = generate(body.user_input, detection, detector.catalog, history=history, patterns=patterns)
    except GenerationError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, {"message": str(exc), "detected": detection.to_json()}
        ) from exc
    try:
        plan = plan_definition(WorkflowDefinition.model_validate(made.definition))
    except (DefinitionError, ValueError) as exc:  # a generator bug: say so rather than hand out a broken workflow
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, f"generated an invalid workflow: {exc}") from exc
    return GeneratedPublic(
        workflow=made.definition,
        suggested_id=_suggested_id(made.definition),
        order=list(plan.order),
        services=made.services,
        confidence=made.confidence,
        alternatives=made.alternatives,
        explanation=made.explanation,
        missing_params=made.missing_params,
        detector=kind,
        templates=made.templates,
        history_services=len(history.services) if history else 0,
        user_id=body.user_id,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 2),
    )


def _suggested_id(definition: dict[str, Any]) -> str:
    services = [definition["trigger"]["service"], *(s["service"] for s in definition["steps"])]
    return "-to-".join(dict.fromkeys(services))[:128]
