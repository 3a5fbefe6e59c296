"""Report the results of one run of an outside automation to Flowledger with the Python producer client.

The automation here is "when an important email arrives, create an Asana task
and notify the team on Slack": it ran once, the Asana call was rate limited
on its first attempt and succeeded on the second, then Slack was told.

    .venv/bin/python examples/report_step_results.py --bootstrap 127.0.0.1:9092 --tenant default \\
        --run-id run-2026-03-02-0001 --started-at 2026-03-02T09:14:06Z

Every event id is derived from (tenant, run, step, type, attempt), so sending
the same run again (after a crash, from a retrying job) publishes the same ids,
and Flowledger keeps one copy of each. Steps name their credential by id
(``asana-team``); the secret itself never travels.
"""

import argparse
import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from flowledger.client import Producer
from schemas import (
    Envelope,
    RunStarted,
    RunSucceeded,
    StepFailed,
    StepStarted,
    StepSucceeded,
    deterministic_event_id,
)

WORKFLOW_ID = "important-email-to-asana-slack"


def run_events(tenant: str, run_id: str, started_at: datetime) -> list[Envelope]:
    """The run's events in the order they happened; ``ms`` is the offset from ``started_at``."""
    ids: dict[str, Any] = {"tenant_id": tenant, "workflow_id": WORKFLOW_ID, "run_id": run_id}

    def envelope(kind: str, ms: float, step_id: str | None = None, attempt: int = 1) -> dict[str, Any]:
        parts = (tenant, run_id, step_id or "", kind, str(attempt))
        extra = {"step_id": step_id} if step_id else {}
        at = started_at + timedelta(milliseconds=ms)
        return {**ids, **extra, "event_id": deterministic_event_id(*parts), "occurred_at": at}

    task = {"service": "asana", "action": "task", "credential_id": "asana-team"}
    notify = {"service": "slack", "action": "post_to_channel", "credential_id": "slack-workspace"}
    rate_limited = {"type": "RateLimited", "message": "429 Too Many Requests", "status_code": 429,
                    "retry_after_s": 1.0}  # fmt: skip
    return [
        RunStarted(**envelope("RunStarted", 0), payload={"trigger_service": "gmail",
                                                         "inputs": {"subject": "Contract renewal due Friday"}}),
        StepStarted(**envelope("StepStarted", 10, "create-task"), payload=task),
        StepFailed(**envelope("StepFailed", 410, "create-task"),
                   payload={**task, "duration_ms": 400.0, "error": rate_limited}),
        StepStarted(**envelope("StepStarted", 1420, "create-task", 2), payload={**task, "attempt": 2}),
        StepSucceeded(**envelope("StepSucceeded", 2030, "create-task", 2),
                      payload={**task, "attempt": 2, "duration_ms": 610.0,
                               "output": {"task_id": "1204938475610293"}}),
        StepStarted(**envelope("StepStarted", 2040, "notify-team"), payload=notify),
        StepSucceeded(**envelope("StepSucceeded", 2330, "notify-team"), payload={**notify, "duration_ms": 290.0}),
        RunSucceeded(**envelope("RunSucceeded", 2340), payload={"duration_ms": 2340.0}),
    ]  # fmt: skip


async def report(bootstrap: str, events: list[Envelope]) -> int:
    """Publish in one call: records of one run travel together, and ``send`` returns once the broker has them all."""
    async with Producer(bootstrap) as producer:
        return await producer.send(events)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap servers")
    parser.add_argument("--tenant", default="default")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--started-at", type=datetime.fromisoformat, default=None, help="default: now")
    args = parser.parse_args(argv)
    started_at = args.started_at or datetime.now(UTC)
    events = run_events(args.tenant, args.run_id, started_at)
    messages = asyncio.run(report(args.bootstrap, events))
    print(f"published {len(events)} events of run {args.run_id} in {messages} Kafka message(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
