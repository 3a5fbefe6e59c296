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


_RUN: dict[str, Any] = {
    "run_id": "run-7c1e4b9a2f3d4e5f", "workflow_id": "important-email-to-asana-slack", "status": "failed",
    "started_at": "2026-03-02T09:14:06.701Z", "ended_at": "2026-03-02T09:14:09.950Z", "duration_ms": 3249.0,
    "definition_version": 2,
    "error_message": "step 'notify-team' failed after 3 attempt(s) (attempt 3 of 3: no attempts left): "
                     "slack answered 429 Too Many Requests",
}  # fmt: skip
_STEPS: Any = [
    {"step_id": "create-task", "service": "asana", "action": "task", "status": "succeeded", "attempts": 2,
     "first_started_at": "2026-03-02T09:14:06.800Z", "last_event_at": "2026-03-02T09:14:07.412Z",
     "duration_ms": 612.4, "total_duration_ms": 1112.9, "cost": 0.0,
     "last_error": {"type": "UpstreamError", "message": "asana answered 503 Service Unavailable",
                    "status_code": 503},
     "output": {"task_id": "1204938475610293"}},
    {"step_id": "notify-team", "service": "slack", "action": "post_to_channel", "status": "failed", "attempts": 3,
     "first_started_at": "2026-03-02T09:14:07.420Z", "last_event_at": "2026-03-02T09:14:09.950Z",
     "duration_ms": 181.0, "total_duration_ms": 562.7, "cost": 0.0,
     "last_error": {"type": "RateLimited", "message": "slack answered 429 Too Many Requests", "status_code": 429,
                    "retry_after_s": 30.0},
     "retry_schedule": [{"attempt": 2, "due_at": "2026-03-02T09:14:08.421Z", "reason": "rate_limited is retryable"},
                        {"attempt": 3, "due_at": "2026-03-02T09:14:09.640Z", "reason": "rate_limited is retryable"}]},
]  # fmt: skip


class RunSummary(View):
    model_config = ConfigDict(json_schema_extra={"examples": [_RUN]})

    run_id: str
    workflow_id: str
    status: RunStatus
    started_at: datetime
    ended_at: datetime | None
    duration_ms: float | None
    definition_version: int | None
    error_message: str | None


class RunView(RunSummary):
    model_config = ConfigDict(json_schema_extra={"examples": [{**_RUN, "steps": _STEPS}]})

    steps: list[StepView]


class RunPage(View):
    model_config = ConfigDict(json_schema_extra={"examples": [{"runs": [_RUN], "next_cursor": "MTc3MjQ0Mjg0Njcw"}]})

    runs: list[RunSummary]
    next_cursor: str | None


class DefinitionVersion(View):
    version: int
    defined_at: datetime
    definition: dict[str, Any]


class DeadLetterView(View):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "source": "workflow-events[3]@18422", "tenant_id": "acme",
        "reason": "StepSucceeded: payload.duration_ms: Input should be greater than or equal to 0",
        "raw_preview": '{"event_id":"1f0e...","type":"StepSucceeded","payload":{"duration_ms":-4}}',
        "dead_lettered_at": "2026-03-02T09:14:08.003Z",
    }]})  # fmt: skip

    source: str
    tenant_id: str
    reason: str
    raw_preview: str
    dead_lettered_at: datetime
