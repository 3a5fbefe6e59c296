"""Workflow definitions: define (or add a version), read the current one."""

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from api import examples
from api.deps import State, Tenant
from api.routes.runs import IdPath
from api.state import AppState
from domain.dag import DefinitionError, Plan, plan_definition
from projections import queries
from projections.views import DefinitionVersion
from schemas.envelope import Identifier, deterministic_event_id, new_event_id
from schemas.workflows import EXAMPLE_DEFINITION as DEFINITION
from schemas.workflows import (
    PauseWorkflow,
    ResumeWorkflow,
    StartRun,
    StartRunPayload,
    WorkflowDefined,
    WorkflowDefinedPayload,
    WorkflowDefinition,
)

router = APIRouter(prefix="/api/workflows", tags=["workflows"])
NOT_FOUND = examples.error("no such workflow", f"workflow '{examples.WORKFLOW_ID}' not found")


class WorkflowCreate(WorkflowDefinition):
    """A definition and the id of the workflow it defines."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"id": examples.WORKFLOW_ID, **DEFINITION}]})

    id: Identifier


class WorkflowPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "workflow_id": examples.WORKFLOW_ID, "version": 2, "defined_at": "2026-03-01T16:02:44.120Z",
        "definition": DEFINITION, "dependencies": {"create-task": [], "notify-team": ["create-task"]},
        "order": ["create-task", "notify-team"], "versions": [1, 2],
    }]})  # fmt: skip

    workflow_id: str
    version: int
    defined_at: datetime
    definition: dict[str, Any]
    dependencies: dict[str, list[str]]
    """Step id -> the steps it waits for (explicit `needs` plus template and condition references)."""
    order: list[str]
    versions: list[int]


def _public(workflow_id: str, current: DefinitionVersion, plan: Plan, versions: list[int]) -> WorkflowPublic:
    return WorkflowPublic(
        workflow_id=workflow_id,
        version=current.version,
        defined_at=current.defined_at,
        definition=current.definition,
        dependencies={s: sorted(d) for s, d in plan.dependencies.items()},
        order=list(plan.order),
        versions=versions,
    )


@router.post(
    "",
    response_model=WorkflowPublic,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "identical to the current version; nothing new defined", "model": WorkflowPublic},
               422: examples.error("not a valid DAG: every problem is listed", {
                   "message": "the definition is not a valid workflow",
                   "problems": ["step 'notify-team' needs 'create-tsk', which is not a step"]})},
)  # fmt: skip
async def define_workflow(body: WorkflowCreate, response: Response, state: State, tenant: Tenant) -> WorkflowPublic:
    """Define a workflow, or add a new version of it (a `WorkflowDefined` event)."""
    definition = WorkflowDefinition.model_validate(body.model_dump(exclude={"id"}))
    public, created = await define(state, tenant, body.id, definition)
    if not created:
        response.status_code = status.HTTP_200_OK
    return public


async def define(state: AppState, tenant: str, workflow_id: str, definition: WorkflowDefinition
                 ) -> tuple[WorkflowPublic, bool]:  # fmt: skip
    """Publish ``definition`` as the workflow's next version (False: identical to the current one; nothing new)."""
    try:
        plan = plan_definition(definition)
    except DefinitionError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            {"message": "the definition is not a valid workflow", "problems": exc.problems},
        ) from exc
    history = await run_in_threadpool(queries.workflow_definitions, state.warehouse, tenant, workflow_id)
    as_json = definition.model_dump(mode="json")
    if history and same_definition(history[-1].definition, as_json):
        return _public(workflow_id, history[-1], plan, [v.version for v in history]), False
    # Versions this process assigned but the projection may not show yet.
    key = (tenant, workflow_id)
    version = max(history[-1].version if history else 0, state.assigned_versions.get(key, 0)) + 1
    record = WorkflowDefined(
        event_id=new_event_id(),
        occurred_at=datetime.now(UTC),
        tenant_id=tenant,
        workflow_id=workflow_id,
        payload=WorkflowDefinedPayload(version=version, definition=definition),
    )
    await state.producer.send([record])
    state.assigned_versions[key] = version
    current = DefinitionVersion(version=version, defined_at=record.occurred_at, definition=as_json)
    return _public(workflow_id, current, plan, [v.version for v in history] + [version]), True


def same_definition(stored: dict[str, Any], as_json: dict[str, Any]) -> bool:
    """Whether a stored definition is ``as_json``, once read with today's defaults (it may predate a field)."""
    return stored == as_json or WorkflowDefinition.model_validate(stored).model_dump(mode="json") == as_json


@router.get("/{workflow_id}", response_model=WorkflowPublic, responses={404: NOT_FOUND})
async def get_workflow(workflow_id: IdPath, state: State, tenant: Tenant) -> WorkflowPublic:
    """The current definition, its dependency plan, and every version number."""
    history = await run_in_threadpool(queries.workflow_definitions, state.warehouse, tenant, workflow_id)
    if not history:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"workflow '{workflow_id}' not found")
    current = history[-1]
    plan = plan_definition(WorkflowDefinition.model_validate(current.definition))
    return _public(workflow_id, current, plan, [v.version for v in history])


class RunRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "trigger": {"subject": "Contract renewal due Friday", "from": "legal@example.com", "importance": "high"},
        "run_id": examples.RUN_ID,
    }]})  # fmt: skip

    trigger: dict[str, Any] = {}
    """The trigger payload (what templates read as `trigger.*`)."""
    version: int | None = None
    """Definition version to run; the current one when omitted."""
    run_id: Identifier | None = None
    """Your id for the run (idempotent: the same id never starts twice); generated when omitted."""


class RunAcceptedPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"run_id": examples.RUN_ID, "workflow_id": examples.WORKFLOW_ID, "version": 2}
    ]})  # fmt: skip

    run_id: str
    workflow_id: str
    version: int


@router.post(
    "/{workflow_id}/runs",
    response_model=RunAcceptedPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses={404: examples.error("no such workflow or version", f"workflow '{examples.WORKFLOW_ID}' not found")},
)
async def start_run(workflow_id: IdPath, body: RunRequest, state: State, tenant: Tenant) -> RunAcceptedPublic:
    """Start a run (a `StartRun` command carrying the definition it will execute)."""
    history = await run_in_threadpool(queries.workflow_definitions, state.warehouse, tenant, workflow_id)
    chosen = [v for v in history if body.version is None or v.version == body.version]
    if not chosen:
        what = f"version {body.version} of workflow" if body.version else "workflow"
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{what} '{workflow_id}' not found")
    current = chosen[-1]
    run_id = body.run_id or f"run-{uuid.uuid4().hex[:16]}"
    command = StartRun(
        event_id=deterministic_event_id(tenant, workflow_id, run_id, "StartRun"),
        occurred_at=datetime.now(UTC),
        tenant_id=tenant,
        workflow_id=workflow_id,
        run_id=run_id,
        payload=StartRunPayload(
            definition_version=current.version,
            trigger_payload=body.trigger,
            definition=WorkflowDefinition.model_validate(current.definition),
        ),
    )
    await state.producer.send([command])
    return RunAcceptedPublic(run_id=run_id, workflow_id=workflow_id, version=current.version)


class CommandAcceptedPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"accepted": "PauseWorkflow"}]})

    accepted: str


@router.post("/{workflow_id}/pause", response_model=CommandAcceptedPublic, status_code=status.HTTP_202_ACCEPTED)
async def pause_workflow(workflow_id: IdPath, state: State, tenant: Tenant) -> CommandAcceptedPublic:
    """New runs of the workflow wait until it is resumed; running ones go on."""
    await _workflow_command(PauseWorkflow, workflow_id, state, tenant)
    return CommandAcceptedPublic(accepted="PauseWorkflow")


@router.post("/{workflow_id}/resume", response_model=CommandAcceptedPublic, status_code=status.HTTP_202_ACCEPTED)
async def resume_workflow(workflow_id: IdPath, state: State, tenant: Tenant) -> CommandAcceptedPublic:
    """Runs that waited while the workflow was paused start now."""
    await _workflow_command(ResumeWorkflow, workflow_id, state, tenant)
    return CommandAcceptedPublic(accepted="ResumeWorkflow")


async def _workflow_command(
    cls: type[PauseWorkflow] | type[ResumeWorkflow], workflow_id: str, state: AppState, tenant: str
) -> None:
    command = cls(event_id=new_event_id(), occurred_at=datetime.now(UTC), tenant_id=tenant, workflow_id=workflow_id)
    await state.producer.send([command])
