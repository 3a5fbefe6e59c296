"""Workflow patterns: frequent shapes and failure points of a tenant's workflows (``GET /api/workflows/patterns``)."""

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from api import examples
from api.deps import State, Tenant, tenant_for
from domain.patterns import mine
from projections import queries

router = APIRouter(prefix="/api/workflows", tags=["generation"])


class PatternsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "tenant_id": examples.TENANT, "workflows": 14, "min_support": 2,
        "pairs": [{"trigger": "gmail", "action": "slack", "workflows": 5, "runs": 1840}],
        "sequences": [{"services": ["gmail", "asana", "slack"], "workflows": 3, "runs": 1210}],
        "templates": [{"trigger": "gmail", "actions": ["asana", "slack"], "workflows": 3, "runs": 1210,
                       "example": examples.WORKFLOW_ID}],
        "failure_points": [{"service": "slack", "action": "post_to_channel", "attempts": 1840, "failed": 37,
                            "failure_rate": 0.0201, "workflows": 5, "top_error": "RateLimited"}],
    }]})  # fmt: skip

    tenant_id: str
    workflows: int
    """Workflows mined (their current definitions)."""
    min_support: int
    pairs: list[dict[str, Any]]
    """Trigger service -> action service, with the workflows and runs that have it."""
    sequences: list[dict[str, Any]]
    """Service paths along the workflows' dependencies, two to four services long."""
    templates: list[dict[str, Any]]
    """Whole shapes (trigger and actions in order) defined at least `min_support` times, with an example."""
    failure_points: list[dict[str, Any]]
    """(service, action) with failed attempts: most failures first, with the rate and the top error type."""


@router.get("/patterns", response_model=PatternsPublic)
async def get_patterns(
    state: State,
    caller: Tenant,
    min_support: Annotated[int, Query(ge=1, le=100_000, description="workflows a shape needs to be listed")] = 2,
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many of each kind")] = 50,
    tenant: Annotated[str | None, Query(description="operator keys: the tenant to read")] = None,
) -> PatternsPublic:
    """What the tenant's workflows have in common, mined from its definitions and step results."""
    tenant_id = tenant_for(caller, tenant)

    def read() -> tuple[int, Any]:
        workflows = queries.current_definitions(state.warehouse, tenant_id)
        outcomes = queries.step_outcomes(state.warehouse, tenant_id)
        return len(workflows), mine(workflows, outcomes, min_support=min_support)

    count, found = await run_in_threadpool(read)
    return PatternsPublic(
        tenant_id=tenant_id,
        workflows=count,
        min_support=min_support,
        pairs=[asdict(p) for p in found.pairs[:limit]],
        sequences=[asdict(s) for s in found.sequences[:limit]],
        templates=[asdict(t) for t in found.templates[:limit]],
        failure_points=[asdict(f) for f in found.failure_points[:limit]],
    )
