"""Typed results of the query functions (also the API's response models)."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

RunStatus = Literal["running", "succeeded", "failed", "cancelled"]


class View(BaseModel):
    model_config = ConfigDict(frozen=True)


class StepErrorView(View):
    type: str
    message: str
    status_code: int | None = None
    retry_after_s: float | None = None


class RetryView(View):
    attempt: int
    due_at: datetime
    reason: str


class AttemptView(View):
    """One attempt of a step, for timelines: when it ran and how it ended."""

    attempt: int
    """0 for a skipped step (it never ran)."""
    service: str
    status: Literal["running", "succeeded", "failed", "retry_scheduled", "skipped"]
    started_at: datetime | None
    """None while the attempt is only scheduled."""
    ended_at: datetime | None
    duration_ms: float | None
    scheduled_at: datetime | None = None
    """When the retry that runs this attempt was scheduled."""
    due_at: datetime | None = None
    error: str | None = None


class StepView(View):
    step_id: str
    service: str
    """The service of the latest attempt: the fallback's once the step is on its fallback."""
    action: str
    status: Literal["running", "succeeded", "failed", "retry_scheduled", "skipped"]
    attempts: int
    first_started_at: datetime
    last_event_at: datetime
    duration_ms: float | None
    """Duration of the latest finished attempt."""
    total_duration_ms: float
    """Sum over every finished attempt."""
    cost: float
    last_error: StepErrorView | None
    output: Any = None
    """Output of the latest successful attempt (executor runs)."""
    next_attempt_at: datetime | None = None
    """When the scheduled retry runs, while one is pending."""
    skip_reason: str | None = None
    cached: bool = False
    """The step succeeded with the output of an identical earlier call, without calling its service."""
    params_digest: str | None = None
    """Digest of the latest finished attempt's call (service, action, rendered params): equal digests, same call."""
    fallback_for: str | None = None
    """Set when the latest attempt called the step's fallback: the step's own service, which had failed."""
    retry_schedule: list[RetryView] = []
    """Every retry the executor scheduled for this step."""
    attempts_timeline: list[AttemptView] = []
    """Each attempt with its start and end, oldest first."""


class RunSummary(View):
    run_id: str
    workflow_id: str
    status: RunStatus
    started_at: datetime
    ended_at: datetime | None
    duration_ms: float | None
    definition_version: int | None
    error_message: str | None


class RunView(RunSummary):
    steps: list[StepView]


class RunPage(View):
    runs: list[RunSummary]
    next_cursor: str | None


class DefinitionVersion(View):
    version: int
    defined_at: datetime
    definition: dict[str, Any]


class DeadLetterView(View):
    source: str
    tenant_id: str
    reason: str
    raw_preview: str
    dead_lettered_at: datetime
