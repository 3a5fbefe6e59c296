"""Workflow definitions and the commands that drive runs.

Commands are requests (imperative names); the executor answers each with
events. A definition is versioned: every ``WorkflowDefined`` for a workflow
carries the next ``version`` and the whole definition.
"""

from typing import Any, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from schemas.common import ActionName, SafeMapping, ServiceId
from schemas.envelope import Envelope, FrozenModel, Identifier


class RetryPolicy(FrozenModel):
    initial_interval_s: float = Field(default=1.0, gt=0)
    backoff_coefficient: float = Field(default=2.0, ge=1)
    maximum_interval_s: float = Field(default=100.0, gt=0)
    maximum_attempts: int = Field(default=3, ge=1)
    jitter: float = Field(default=0.2, ge=0, le=1)
    non_retryable_error_types: tuple[str, ...] = ()


DEFAULT_CACHE_TTL_S = 300.0


class StepFallback(FrozenModel):
    """Another service that does a step's job once the step's own service has failed for good."""

    service: ServiceId
    action: ActionName | None = Field(default=None, description="Unset: the step's action.")
    params: SafeMapping | None = Field(default=None, description="Templates as in a step's params; unset: the step's.")
    credential_id: Identifier | None = Field(
        default=None, description="Credential for the fallback service; the step's own is never sent to another."
    )


class StepDefinition(FrozenModel):
    id: Identifier
    service: ServiceId
    action: ActionName
    params: SafeMapping = Field(default_factory=dict)
    needs: tuple[Identifier, ...] = ()
    when: str | None = Field(default=None, max_length=1024)
    retry: RetryPolicy | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    cache: bool = Field(
        default=False,
        description="The step is an idempotent read: the output of an identical call (same service, action, "
        "rendered params and credential) made within cache_ttl_s is reused without calling the service.",
    )
    cache_ttl_s: float | None = Field(
        default=None,
        gt=0,
        description=f"Seconds a cached output is reused; only with cache: true (unset: {DEFAULT_CACHE_TTL_S:g}).",
    )
    credential_id: Identifier | None = None
    fallback: StepFallback | None = Field(
        default=None,
        description="Called instead when the step's own service has failed for good (retries exhausted, or a "
        "permanent error) for any reason but bad input (400, 422); with the same retry policy.",
    )

    @model_validator(mode="after")
    def _check_cache_and_fallback(self) -> Self:
        if self.cache_ttl_s is not None and not self.cache:
            raise ValueError("cache_ttl_s is set but cache is false: set cache: true, or leave cache_ttl_s out")
        if self.fallback and self.fallback.service == self.service and self.fallback.action in (None, self.action):
            raise ValueError("fallback calls the step's own service and action again: the retry policy does that")
        return self

    @property
    def cache_ttl(self) -> float | None:
        """How long this step's outputs are reused; None when they are not."""
        return (self.cache_ttl_s or DEFAULT_CACHE_TTL_S) if self.cache else None


class TriggerDefinition(FrozenModel):
    service: ServiceId
    event: ActionName
    filter: str | None = Field(default=None, max_length=1024)


EXAMPLE_DEFINITION: dict[str, Any] = {
    "name": "Important email to Asana and Slack",
    "description": "when an important email arrives, create an Asana task and notify the team on Slack",
    "trigger": {"service": "gmail", "event": "any_new_email_in_inbox", "filter": 'trigger.importance == "high"'},
    "steps": [
        {"id": "create-task", "service": "asana", "action": "task",
         "params": {"name": "{{ trigger.subject }}", "project": "Inbox triage"}, "credential_id": "asana-team"},
        {"id": "notify-team", "service": "slack", "action": "post_to_channel",
         "params": {"channel": "#support", "text": "New task {{ steps.create-task.output.task_id }}"},
         "needs": ["create-task"], "credential_id": "slack-workspace", "retry": {"maximum_attempts": 5}},
    ],
}  # fmt: skip


class WorkflowDefinition(FrozenModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_DEFINITION]})

    name: str = Field(min_length=1, max_length=256)
    trigger: TriggerDefinition
    steps: tuple[StepDefinition, ...] = Field(min_length=1)
    description: str | None = Field(default=None, max_length=4096)


class WorkflowDefinedPayload(FrozenModel):
    version: int = Field(ge=1)
    definition: WorkflowDefinition


class WorkflowDefined(Envelope):
    type: Literal["WorkflowDefined"] = "WorkflowDefined"
    schema_version: Literal[1] = 1
    payload: WorkflowDefinedPayload


class StartRunPayload(FrozenModel):
    definition_version: int | None = Field(default=None, ge=1)
    trigger_payload: SafeMapping = Field(default_factory=dict)
    definition: WorkflowDefinition | None = Field(
        default=None, description="Snapshot of the definition to run; the run is self-contained."
    )


class ReasonPayload(FrozenModel):
    reason: str | None = Field(default=None, max_length=1024)
    requested_by: str | None = Field(default=None, max_length=128)


class StartRun(Envelope):
    type: Literal["StartRun"] = "StartRun"
    schema_version: Literal[1] = 1
    run_id: Identifier
    payload: StartRunPayload = Field(default_factory=StartRunPayload)


class CancelRun(Envelope):
    type: Literal["CancelRun"] = "CancelRun"
    schema_version: Literal[1] = 1
    run_id: Identifier
    payload: ReasonPayload = Field(default_factory=ReasonPayload)


class RetryRun(Envelope):
    """Resume a failed run from its failed steps; succeeded steps are reused."""

    type: Literal["RetryRun"] = "RetryRun"
    schema_version: Literal[1] = 1
    run_id: Identifier
    payload: ReasonPayload = Field(default_factory=ReasonPayload)


class RetryStepPayload(ReasonPayload):
    delay_s: float = Field(default=0, ge=0)
    params_override: SafeMapping | None = None


class RetryStep(Envelope):
    type: Literal["RetryStep"] = "RetryStep"
    schema_version: Literal[1] = 1
    run_id: Identifier
    step_id: Identifier
    payload: RetryStepPayload = Field(default_factory=RetryStepPayload)


class PauseWorkflow(Envelope):
    type: Literal["PauseWorkflow"] = "PauseWorkflow"
    schema_version: Literal[1] = 1
    payload: ReasonPayload = Field(default_factory=ReasonPayload)


class ResumeWorkflow(Envelope):
    type: Literal["ResumeWorkflow"] = "ResumeWorkflow"
    schema_version: Literal[1] = 1
    payload: ReasonPayload = Field(default_factory=ReasonPayload)


class ServiceConcurrencyPayload(ReasonPayload):
    service: ServiceId
    limit: int | None = Field(default=None, ge=1, le=1024, description="Calls at once; null lifts the limit.")


class SetServiceConcurrency(Envelope):
    """At most ``limit`` calls at once to ``service`` for the tenant, per executor worker (``null``: no limit)."""

    type: Literal["SetServiceConcurrency"] = "SetServiceConcurrency"
    schema_version: Literal[1] = 1
    payload: ServiceConcurrencyPayload


class ServiceRoutePayload(ReasonPayload):
    service: ServiceId
    to_fallback: bool = Field(description="true: steps on the service that name a fallback start on it; false: back.")


class SetServiceRoute(Envelope):
    """While ``to_fallback``, the tenant's steps on ``service`` that name a fallback call the fallback at once
    (the service's circuit is open), instead of failing on the service first."""

    type: Literal["SetServiceRoute"] = "SetServiceRoute"
    schema_version: Literal[1] = 1
    payload: ServiceRoutePayload


WORKFLOW_RECORDS = (
    WorkflowDefined,
    StartRun,
    CancelRun,
    RetryRun,
    RetryStep,
    PauseWorkflow,
    ResumeWorkflow,
    SetServiceConcurrency,
    SetServiceRoute,
)
