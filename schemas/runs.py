"""Run lifecycle events: what producers (our executor or anyone else) report.

A run is a fold over these events, keyed by ``run_id``:

    RunStarted -> (StepStarted -> StepSucceeded | StepFailed [-> StepRetryScheduled])*
    (StepSkipped)* -> RunSucceeded | RunFailed | RunCancelled   [RunResumed -> ...]

A retried step repeats ``StepStarted`` with ``attempt`` + 1; a step whose own
service failed for good may go on with its fallback's service (attempts
numbered on, ``fallback_for`` naming the step's own service). Outside producers
send the seven core events; Flowledger's executor also writes the retry
schedule, skips and resumptions.
"""

from typing import Literal

from pydantic import Field

from schemas.common import ActionName, SafeMapping, ServiceId, StepError
from schemas.envelope import Envelope, FrozenModel, Identifier, UtcDatetime
from schemas.workflows import WorkflowDefinition


class RunStartedPayload(FrozenModel):
    definition_version: int | None = Field(default=None, ge=1)
    trigger_service: ServiceId | None = None
    inputs: SafeMapping = Field(default_factory=dict)
    timeout_s: float | None = Field(default=None, gt=0)
    definition: WorkflowDefinition | None = Field(
        default=None, description="The definition the run executes (set by Flowledger's executor)."
    )


class StepPayload(FrozenModel):
    service: ServiceId
    action: ActionName
    attempt: int = Field(default=1, ge=1, description="1-based attempt number.")
    credential_id: Identifier | None = Field(
        default=None, description="Credential used, by id; the secret never travels."
    )
    fallback_for: ServiceId | None = Field(
        default=None, description="Set on attempts of the step's fallback: the step's own service, which failed."
    )


class StepResultPayload(StepPayload):
    duration_ms: float = Field(ge=0)
    cost: float | None = Field(default=None, ge=0)
    params_digest: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{8,64}$",
        description="Hex digest of the call (service, action, rendered params) within the tenant: equal digests "
        "are repeated calls. Never the params themselves, which may hold personal data.",
    )


class StepSucceededPayload(StepResultPayload):
    output: SafeMapping | None = None
    cached: bool | None = Field(
        default=None, description="true: the output of an identical earlier call was reused, no service was called."
    )


class StepFailedPayload(StepResultPayload):
    error: StepError


class StepRetryScheduledPayload(StepPayload):
    """``attempt`` is the attempt that will run at ``due_at``."""

    delay_s: float = Field(ge=0)
    due_at: UtcDatetime
    reason: str = Field(max_length=512)


class StepSkippedPayload(FrozenModel):
    service: ServiceId
    action: ActionName
    reason: str = Field(max_length=512)


class RunResumedPayload(FrozenModel):
    steps: tuple[Identifier, ...] = Field(description="Steps to execute again; succeeded ones are kept.")
    reason: str | None = Field(default=None, max_length=1024)


class RunSucceededPayload(FrozenModel):
    duration_ms: float | None = Field(default=None, ge=0)


class RunFailedPayload(FrozenModel):
    duration_ms: float | None = Field(default=None, ge=0)
    failed_step_id: Identifier | None = None
    error: StepError | None = None


class RunCancelledPayload(FrozenModel):
    reason: str | None = Field(default=None, max_length=1024)


class RunStarted(Envelope):
    type: Literal["RunStarted"] = "RunStarted"
    schema_version: Literal[1] = 1
    run_id: Identifier
    payload: RunStartedPayload = Field(default_factory=RunStartedPayload)


class StepStarted(Envelope):
    type: Literal["StepStarted"] = "StepStarted"
    schema_version: Literal[1] = 1
    run_id: Identifier
    step_id: Identifier
    payload: StepPayload


class StepSucceeded(Envelope):
    type: Literal["StepSucceeded"] = "StepSucceeded"
    schema_version: Literal[1] = 1
    run_id: Identifier
    step_id: Identifier
    payload: StepSucceededPayload


class StepFailed(Envelope):
    type: Literal["StepFailed"] = "StepFailed"
    schema_version: Literal[1] = 1
    run_id: Identifier
    step_id: Identifier
    payload: StepFailedPayload


class StepRetryScheduled(Envelope):
    type: Literal["StepRetryScheduled"] = "StepRetryScheduled"
    schema_version: Literal[1] = 1
    run_id: Identifier
    step_id: Identifier
    payload: StepRetryScheduledPayload


class StepSkipped(Envelope):
    type: Literal["StepSkipped"] = "StepSkipped"
    schema_version: Literal[1] = 1
    run_id: Identifier
    step_id: Identifier
    payload: StepSkippedPayload


class RunResumed(Envelope):
    """A failed run goes on: the listed steps run again, succeeded steps keep their outputs."""

    type: Literal["RunResumed"] = "RunResumed"
    schema_version: Literal[1] = 1
    run_id: Identifier
    payload: RunResumedPayload


class RunSucceeded(Envelope):
    type: Literal["RunSucceeded"] = "RunSucceeded"
    schema_version: Literal[1] = 1
    run_id: Identifier
    payload: RunSucceededPayload = Field(default_factory=RunSucceededPayload)


class RunFailed(Envelope):
    type: Literal["RunFailed"] = "RunFailed"
    schema_version: Literal[1] = 1
    run_id: Identifier
    payload: RunFailedPayload = Field(default_factory=RunFailedPayload)


class RunCancelled(Envelope):
    type: Literal["RunCancelled"] = "RunCancelled"
    schema_version: Literal[1] = 1
    run_id: Identifier
    payload: RunCancelledPayload = Field(default_factory=RunCancelledPayload)


RUN_EVENTS = (
    RunStarted,
    StepStarted,
    StepSucceeded,
    StepFailed,
    StepRetryScheduled,
    StepSkipped,
    RunResumed,
    RunSucceeded,
    RunFailed,
    RunCancelled,
)
