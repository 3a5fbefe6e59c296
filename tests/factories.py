"""Builders of valid records for tests."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.runs import RunFailed, RunStarted, RunSucceeded, StepFailed, StepStarted, StepSucceeded

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def run_with_retry(tenant: str, workflow: str, run: str, *, t0: float = 0.0, cost: float = 0.25) -> list[Any]:
    """Three steps; the second fails once with a 429, is retried and succeeds."""
    ids: dict[str, Any] = {"tenant_id": tenant, "workflow_id": workflow, "run_id": run}

    def eid() -> str:
        return str(uuid.uuid4())

    def step(sid: str, service: str, action: str, attempt: int = 1) -> dict[str, Any]:
        return {
            **ids,
            "step_id": sid,
            "payload": {"service": service, "action": action, "attempt": attempt},
        }

    read = step("read-email", "gmail", "new_email")
    task = step("create-task", "asana", "create_task")
    task2 = step("create-task", "asana", "create_task", attempt=2)
    notify = step("notify", "slack", "post_message")

    def done(base: dict[str, Any], duration: float, **extra: Any) -> dict[str, Any]:
        return {**base, "payload": {**base["payload"], "duration_ms": duration, **extra}}

    return [
        RunStarted(event_id=eid(), occurred_at=at(t0), **ids, payload={"definition_version": 3}),
        StepStarted(event_id=eid(), occurred_at=at(t0 + 0.1), **read),
        StepSucceeded(event_id=eid(), occurred_at=at(t0 + 0.5), **done(read, 400.0, cost=cost)),
        StepStarted(event_id=eid(), occurred_at=at(t0 + 0.6), **task),
        StepFailed(
            event_id=eid(),
            occurred_at=at(t0 + 1.6),
            **done(
                task,
                1000.0,
                error={
                    "type": "RateLimited",
                    "message": "429 Too Many Requests",
                    "status_code": 429,
                    "retry_after_s": 2.0,
                },
            ),
        ),  # fmt: skip
        StepStarted(event_id=eid(), occurred_at=at(t0 + 3.6), **task2),
        StepSucceeded(event_id=eid(), occurred_at=at(t0 + 4.1), **done(task2, 500.0, cost=cost)),
        StepStarted(event_id=eid(), occurred_at=at(t0 + 4.2), **notify),
        StepSucceeded(event_id=eid(), occurred_at=at(t0 + 4.5), **done(notify, 300.0, cost=cost)),
        RunSucceeded(event_id=eid(), occurred_at=at(t0 + 4.6), **ids, payload={"duration_ms": 4600.0}),
    ]


def failed_run(tenant: str, workflow: str, run: str, *, t0: float = 0.0) -> list[Any]:
    ids: dict[str, Any] = {"tenant_id": tenant, "workflow_id": workflow, "run_id": run}
    step = {**ids, "step_id": "s1"}
    return [
        RunStarted(event_id=str(uuid.uuid4()), occurred_at=at(t0), **ids),
        StepStarted(event_id=str(uuid.uuid4()), occurred_at=at(t0 + 1), **step,
                    payload={"service": "slack", "action": "post_message"}),
        StepFailed(event_id=str(uuid.uuid4()), occurred_at=at(t0 + 2), **step,
                   payload={"service": "slack", "action": "post_message", "duration_ms": 5.0,
                            "error": {"type": "invalid_auth", "message": "invalid_auth", "status_code": 401}}),
        RunFailed(event_id=str(uuid.uuid4()), occurred_at=at(t0 + 3), **ids,
                  payload={"failed_step_id": "s1", "error": {"type": "invalid_auth", "message": "invalid_auth"}}),
    ]  # fmt: skip


def as_json(records: list[Any]) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json") for r in records]
