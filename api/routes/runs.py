"""Runs and their steps, as projected from the log."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import State, Tenant
from projections import queries
from projections.views import DeadLetterView, RunPage, RunStatus, RunSummary, RunView
from schemas.envelope import Envelope, new_event_id
from schemas.workflows import CancelRun, ReasonPayload, RetryRun, RetryStep, RetryStepPayload

router = APIRouter(tags=["runs"])

IdQuery = Annotated[str, Query(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$")]
IdPath = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$")]


RECENT = timedelta(days=1)


@router.get("/api/runs", response_model=list[RunSummary])
async def get_runs(
    state: State,
    tenant: Tenant,
    run_ids: Annotated[list[IdQuery] | None, Query(alias="run_id", max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Without run_id: how many recent runs")] = 50,
) -> list[RunSummary]:
    """Summaries of several runs at once (`?run_id=a&run_id=b`; unknown ids are left out), or without `run_id`
    the tenant's runs of the last 24 hours, newest first."""
    if run_ids:
        return await run_in_threadpool(queries.get_run_summaries, state.warehouse, tenant, run_ids)
    since = datetime.now(UTC) - RECENT
    return await run_in_threadpool(queries.recent_runs, state.warehouse, tenant, since=since, limit=limit)


@router.get("/api/runs/{run_id}", response_model=RunView, responses={404: {"description": "no such run"}})
async def get_run(run_id: IdPath, state: State, tenant: Tenant) -> RunView:
    """A run's status and timings, and each step with attempts, duration and last error."""
    run = await run_in_threadpool(queries.get_run, state.warehouse, tenant, run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run '{run_id}' not found")
    return run


class RetryRequest(BaseModel):
    step_id: str | None = None
    """Retry only this step (`RetryStep`); the whole failed run (`RetryRun`) when omitted."""
    reason: str | None = None


class CommandAcceptedPublic(BaseModel):
    accepted: str
    run_id: str


@router.post(
    "/api/runs/{run_id}/cancel",
    response_model=CommandAcceptedPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses={404: {"description": "no such run"}, 409: {"description": "the run has already ended"}},
)
async def cancel_run(run_id: IdPath, state: State, tenant: Tenant) -> CommandAcceptedPublic:
    """Stop a running run: no new step starts and in-flight attempts are abandoned."""
    run = await _existing_run(state, tenant, run_id)
    if run.status != "running":
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"run '{run_id}' is {run.status}; only a running run can be cancelled"
        )
    await state.producer.send(
        [CancelRun(**_command_ids(tenant, run), payload=ReasonPayload(reason="cancelled via API"))]
    )
    return CommandAcceptedPublic(accepted="CancelRun", run_id=run_id)


@router.post(
    "/api/runs/{run_id}/retry",
    response_model=CommandAcceptedPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses={404: {"description": "no such run"}, 409: {"description": "the run has not failed"}},
)
async def retry_run(
    run_id: IdPath, state: State, tenant: Tenant, body: RetryRequest | None = None
) -> CommandAcceptedPublic:
    """Resume a failed run from its failed steps; succeeded steps are not executed again."""
    run = await _existing_run(state, tenant, run_id)
    if run.status != "failed":
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"run '{run_id}' is {run.status}; only a failed run can be retried"
        )
    reason = ReasonPayload(reason=(body.reason if body else None) or "retried via API")
    if body and body.step_id:
        command: Envelope = RetryStep(**_command_ids(tenant, run), step_id=body.step_id,
                                      payload=RetryStepPayload(reason=reason.reason))  # fmt: skip
    else:
        command = RetryRun(**_command_ids(tenant, run), payload=reason)
    await state.producer.send([command])
    return CommandAcceptedPublic(accepted=command.type, run_id=run_id)


async def _existing_run(state: State, tenant: str, run_id: str) -> RunView:
    run = await run_in_threadpool(queries.get_run, state.warehouse, tenant, run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run '{run_id}' not found")
    return run


def _command_ids(tenant: str, run: RunView) -> dict[str, Any]:
    return {"event_id": new_event_id(), "occurred_at": datetime.now(UTC), "tenant_id": tenant,
            "workflow_id": run.workflow_id, "run_id": run.run_id}  # fmt: skip


@router.get("/api/workflows/{workflow_id}/runs", response_model=RunPage)
async def list_runs(
    workflow_id: IdPath,
    state: State,
    tenant: Tenant,
    run_status: Annotated[RunStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> RunPage:
    """Runs of a workflow, newest first; pass `next_cursor` back as `cursor` for the next page."""
    if cursor:
        try:
            queries.decode_cursor(cursor)
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid cursor") from exc
    return await run_in_threadpool(
        queries.list_workflow_runs,
        state.warehouse, tenant, workflow_id,
        status=run_status, limit=limit, cursor=cursor,
    )  # fmt: skip


@router.get("/api/dead-letters", response_model=list[DeadLetterView])
async def dead_letters(
    state: State, tenant: Tenant, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[DeadLetterView]:
    """Records the projector refused, with the reason and `topic[partition]@offset`.

    A tenant sees the ones attributable to it; an operator key (tenant `*`) sees all.
    """
    return await run_in_threadpool(queries.list_dead_letters, state.warehouse, tenant, limit)
