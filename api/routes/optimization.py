"""Optimization: recommendations from a workflow's recorded runs, their predicted effect, and applying them."""

import asyncio
import hashlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool

from api import examples
from api.deps import State, Tenant, tenant_for
from api.routes.workflows import WorkflowPublic, define
from api.state import AppState
from domain.catalog import load_catalog
from domain.dag import DefinitionError, plan_definition
from domain.optimization import MIN_RUNS, Analysis, analyze, synthetic_runs
from projections import optimization_queries, queries
from schemas.envelope import Identifier, new_event_id
from schemas.optimization import OptimizationAnalyzed, OptimizationAnalyzedPayload, Recommendation, Strategy
from schemas.workflows import EXAMPLE_DEFINITION as DEFINITION
from schemas.workflows import WorkflowDefinition

router = APIRouter(prefix="/api/workflows/optimization", tags=["optimization"])
log = logging.getLogger(__name__)

HISTORY_DAYS = 7


class AnalyzeRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"workflow_id": examples.WORKFLOW_ID, "strategy": "performance"}]},
    )

    workflow_id: Identifier | None = None
    """A defined workflow: its current version is analysed against the runs recorded under it."""
    workflow: WorkflowDefinition | None = None
    """A definition to analyse instead (with `workflow_id`, the workflow's runs price it where its steps match)."""
    strategy: Strategy = "performance"
    weights: dict[str, float] | None = None
    """Override the strategy's weights: `duration`, `cost`, `success` (each >= 0)."""
    user_id: Identifier | None = None
    runs: int = Field(default=200, ge=1, le=5000)
    """How many of the latest recorded runs to replay."""

    @model_validator(mode="after")
    def _what(self) -> "AnalyzeRequest":
        if self.workflow_id is None and self.workflow is None:
            raise ValueError("send workflow_id (a defined workflow) or workflow (a definition), or both")
        if self.weights is not None:
            unknown = sorted(set(self.weights) - {"duration", "cost", "success"})
            if unknown or any(w < 0 for w in self.weights.values()) or not any(self.weights.values()):
                raise ValueError("weights: duration, cost and success, each >= 0, at least one > 0")
        return self


BEFORE: dict[str, Any] = {
    "runs": 200, "p50_ms": 1402.0, "p95_ms": 2210.5, "success_rate": 0.955, "cost_per_run": 0.0,
    "p50_interval_ms": [1380.0, 1425.5], "p95_interval_ms": [2105.0, 2330.0], "success_interval": [0.925, 0.98],
}  # fmt: skip
AFTER: dict[str, Any] = {
    **BEFORE, "p50_ms": 1398.0, "p95_ms": 2190.0, "success_rate": 0.995, "success_interval": [0.985, 1.0],
}  # fmt: skip
EFFECT: dict[str, Any] = {
    "before": BEFORE, "after": AFTER, "gain_p50": 0.0029, "gain_p50_interval": [-0.004, 0.01], "gain_p95": 0.0093,
    "cost_reduction": 0.0, "success_change": 0.04,
}  # fmt: skip
RECOMMENDATION: dict[str, Any] = {
    "kind": "retry", "step_ids": ["notify-team"],
    "rationale": "slack answered 429 to 8% of notify-team's attempts: back off from 30 s, as Retry-After asks",
    "evidence": {"attempts": 231, "rate_limited": 19, "retry_after_s_p50": 30.0},
    "estimated_effect": {**EFFECT, "score": 0.2113, "replayed_runs": 200, "history": "recorded"},
    "applied": True,
}  # fmt: skip


class AnalysisPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "analysis_id": "8d0e6b1a-2c3f-4a5b-9c8d-7e6f5a4b3c2d", "workflow_id": examples.WORKFLOW_ID,
        "strategy": "performance", "weights": {"duration": 1.0, "cost": 0.1, "success": 0.5},
        "definition_version": 2, "history": "recorded", "recommendations": [RECOMMENDATION],
        "optimized_definition": {**DEFINITION, "steps": [
            DEFINITION["steps"][0],
            {**DEFINITION["steps"][1], "retry": {"initial_interval_s": 30, "maximum_attempts": 5}},
        ]},
        "prediction": {"replayed_runs": 200, "history": "recorded", "cost_source": "recorded",
                       "recorded_p50_ms": 1398.5, **EFFECT},
    }]})  # fmt: skip

    analysis_id: str
    workflow_id: str | None
    strategy: str
    weights: dict[str, float]
    definition_version: int | None
    history: str
    """recorded: the workflow's own runs were replayed; catalog: too few runs, catalog latencies and prices."""
    recommendations: list[dict[str, Any]]
    """Each: kind, steps, rationale, evidence from history, estimated effect (replayed, with intervals), applied."""
    optimized_definition: dict[str, Any] | None
    """Every applied recommendation in one definition, valid for the executor; null when nothing applies."""
    prediction: dict[str, Any]
    """The replayed runs before and after: p50/p95 duration, success rate and cost, with bootstrap intervals."""


@router.post(
    "/analyze",
    response_model=AnalysisPublic,
    status_code=status.HTTP_201_CREATED,
    responses={
        404: examples.error("no such workflow", f"workflow '{examples.WORKFLOW_ID}' not found"),
        422: examples.error("not a valid definition", {"message": "the definition is not a valid workflow",
                                                       "problems": ["steps 'a' and 'b' need each other"]}),
    },
)
async def analyze_workflow(body: AnalyzeRequest, state: State, tenant: Tenant) -> AnalysisPublic:
    """Recommend changes, priced by replaying the workflow's recorded runs under the changed definition.

    The result is an `OptimizationAnalyzed` event (read back with `GET .../results`).
    """
    analysis, version, event = await run_analysis(state, tenant, body.workflow_id, body.workflow, body.strategy,
                                                  body.weights, body.runs)  # fmt: skip
    return _public(str(event.event_id), body.workflow_id, version, analysis)


async def run_analysis(
    state: AppState, tenant: str, workflow_id: str | None, workflow: WorkflowDefinition | None, strategy: str,
    weights: dict[str, float] | None, runs: int,
) -> tuple[Analysis, int | None, OptimizationAnalyzed]:  # fmt: skip
    version: int | None = None
    if workflow_id is not None:
        history = await run_in_threadpool(queries.workflow_definitions, state.warehouse, tenant, workflow_id)
        if not history and workflow is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"workflow '{workflow_id}' not found")
        if history:
            version = history[-1].version
            workflow = workflow or WorkflowDefinition.model_validate(history[-1].definition)
    assert workflow is not None
    try:
        dependencies = plan_definition(workflow).dependencies
    except DefinitionError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            {"message": "the definition is not a valid workflow", "problems": exc.problems},
        ) from exc
    catalog = load_catalog()

    def compute() -> Analysis:
        since = datetime.now(UTC) - timedelta(days=HISTORY_DAYS)
        resample = optimization_queries.service_history(state.warehouse, tenant, since, catalog)
        recorded = []
        if workflow_id is not None and version is not None:
            recorded = optimization_queries.recorded_runs(
                state.warehouse, tenant, workflow_id, version, dependencies, catalog, limit=runs
            )
            known = {s.id for s in workflow.steps}
            recorded = [r for r in recorded if set(r.steps) <= known]
        if len(recorded) >= MIN_RUNS:
            return analyze(workflow, recorded, resample, catalog, strategy=strategy, weights=weights)
        synthetic = synthetic_runs(workflow, resample)
        return analyze(workflow, synthetic, resample, catalog, strategy=strategy, weights=weights, history="catalog")

    analysis = await run_in_threadpool(compute)
    event = OptimizationAnalyzed(
        event_id=new_event_id(),
        occurred_at=datetime.now(UTC),
        tenant_id=tenant,
        workflow_id=workflow_id or _draft_id(workflow),
        payload=OptimizationAnalyzedPayload(
            strategy=strategy,
            draft=workflow_id is None,
            weights=dict(analysis.weights),
            definition_version=version,
            history=analysis.history,
            recommendations=tuple(Recommendation(**r.to_json()) for r in analysis.recommendations),
            optimized_definition=analysis.optimized_definition,
            prediction=analysis.prediction,
        ),
    )
    await state.producer.send([event])
    return analysis, version, event


def _draft_id(definition: WorkflowDefinition) -> str:
    """A stable id for a definition analysed on its own (events name a workflow)."""
    return "draft-" + hashlib.blake2b(definition.model_dump_json().encode(), digest_size=6).hexdigest()


def _public(analysis_id: str, workflow_id: str | None, version: int | None, a: Analysis) -> AnalysisPublic:
    return AnalysisPublic(
        analysis_id=analysis_id, workflow_id=workflow_id, strategy=a.strategy, weights=dict(a.weights),
        definition_version=version, history=a.history, recommendations=[r.to_json() for r in a.recommendations],
        optimized_definition=a.optimized_definition, prediction=a.prediction,
    )  # fmt: skip


class ResultsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"results": [{
        "analysis_id": "8d0e6b1a-2c3f-4a5b-9c8d-7e6f5a4b3c2d", "workflow_id": examples.WORKFLOW_ID,
        "analysed_at": "2026-03-02T10:00:00.000Z", "strategy": "performance", "draft": False,
        "definition_version": 2, "history": "recorded", "recommendations": [RECOMMENDATION],
    }]}]})  # fmt: skip

    results: list[dict[str, Any]]


@router.get("/results", response_model=ResultsPublic)
async def list_results(
    state: State,
    caller: Tenant,
    workflow_id: Annotated[str, Query(max_length=128)] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    tenant: Annotated[str | None, Query(description="operator keys: the tenant to read")] = None,
) -> ResultsPublic:
    """Analyses, latest first (of one workflow with `workflow_id`)."""
    found = await run_in_threadpool(
        optimization_queries.results, state.warehouse, tenant_for(caller, tenant), workflow_id, limit
    )
    return ResultsPublic(results=found)


class ApplyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"analysis_id": "8d0e6b1a-2c3f-4a5b-9c8d-7e6f5a4b3c2d"}, {"workflow_id": examples.WORKFLOW_ID, "force": True},
    ]})  # fmt: skip

    analysis_id: str | None = Field(default=None, max_length=64)
    """The analysis to apply; without it, the latest analysis of `workflow_id`."""
    workflow_id: Identifier | None = None
    force: bool = False
    """Apply even if the workflow has a newer version than the one analysed."""

    @model_validator(mode="after")
    def _which(self) -> "ApplyRequest":
        if self.analysis_id is None and self.workflow_id is None:
            raise ValueError("send analysis_id, or workflow_id to apply its latest analysis")
        return self


class AppliedPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "analysis_id": "8d0e6b1a-2c3f-4a5b-9c8d-7e6f5a4b3c2d",
        "workflow": WorkflowPublic.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index]
        "applied": [RECOMMENDATION],
    }]})  # fmt: skip

    analysis_id: str
    workflow: WorkflowPublic
    applied: list[dict[str, Any]]
    """The recommendations the new version carries."""


@router.post(
    "/apply",
    response_model=AppliedPublic,
    status_code=status.HTTP_201_CREATED,
    responses={
        404: examples.error("no such analysis", "no such analysis (it may not be projected yet: retry)"),
        409: examples.error("nothing to apply, or stale", "the analysis was of version 2, the workflow is at "
                            "version 3: analyse again, or send force=true"),
    },
)
async def apply_analysis(body: ApplyRequest, state: State, tenant: Tenant) -> AppliedPublic:
    """Define the analysis's optimized definition as the workflow's next version."""
    if body.analysis_id:
        found = await run_in_threadpool(optimization_queries.result, state.warehouse, tenant, body.analysis_id)
    else:
        latest = await run_in_threadpool(
            optimization_queries.results, state.warehouse, tenant, body.workflow_id or "", 1
        )
        found = latest[0] if latest else None
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such analysis (it may not be projected yet: retry)")
    if found.get("draft"):
        raise HTTPException(status.HTTP_409_CONFLICT, "the analysis was of a definition without a workflow_id")
    if not found.get("optimized_definition"):
        raise HTTPException(status.HTTP_409_CONFLICT, "the analysis found nothing to apply")
    history = await run_in_threadpool(queries.workflow_definitions, state.warehouse, tenant, found["workflow_id"])
    current = history[-1].version if history else None
    if not body.force and found.get("definition_version") not in (None, current):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"the analysis was of version {found['definition_version']}, the workflow is at version {current}: "
            "analyse again, or send force=true",
        )
    definition = WorkflowDefinition.model_validate(found["optimized_definition"])
    public, _created = await define(state, tenant, found["workflow_id"], definition)
    applied = [r for r in found.get("recommendations", []) if r.get("applied", True)]
    return AppliedPublic(analysis_id=found["analysis_id"], workflow=public, applied=applied)


async def analyse_active_workflows(state: AppState, stopping: asyncio.Event) -> None:
    """Every ``WORKFLOW_OPTIMIZATION_INTERVAL`` seconds, analyse each workflow that ran since the last round."""
    interval = state.settings.workflow_optimization_interval
    since = datetime.now(UTC) - timedelta(seconds=interval)
    while not stopping.is_set():
        try:
            await asyncio.wait_for(stopping.wait(), interval)
            return
        except TimeoutError:
            pass
        now = datetime.now(UTC)
        for tenant in sorted(set(state.settings.api_keys.values()) - {"*"}):
            try:
                active = await run_in_threadpool(optimization_queries.active_workflows, state.warehouse, tenant, since)
                for workflow_id in active:
                    await run_analysis(state, tenant, workflow_id, None, "hybrid", None, 200)
            except Exception:  # one tenant's trouble must not stop the others' analyses
                log.exception("automatic optimization analysis failed for tenant %s", tenant)
        since = now
