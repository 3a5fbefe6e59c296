"""What the monitoring agents derive: metric windows, anomalies, alerts, heartbeats.

These records are produced by Flowledger's own workers. ``workflow_id`` is
``"all"`` for records about a service or the whole tenant.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from schemas.common import ServiceId
from schemas.envelope import Envelope, FrozenModel, Identifier, UtcDatetime, deterministic_event_id

Scope = Literal["tenant", "workflow", "step", "service"]
Severity = Literal["low", "medium", "high", "critical"]


class MetricWindowPayload(FrozenModel):
    scope: Scope
    key: str = Field(max_length=256, description="Scope key: workflow id, step id or service.")
    service: ServiceId | None = None
    window_start: UtcDatetime
    window_end: UtcDatetime
    count: int = Field(ge=0)
    successes: int = Field(ge=0)
    failures: int = Field(ge=0)
    error_rate: float = Field(ge=0, le=1)
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    cost_sum: float = 0.0
    throughput_per_s: float = Field(ge=0)
    late_events: int = Field(default=0, ge=0, description="Events that arrived after their window had closed.")
    window_s: float = Field(default=60.0, gt=0)
    latency_sketch: dict[int, int] = Field(
        default_factory=dict,
        description="Latency sketch buckets (index -> count, 1% relative accuracy): windows merge exactly.",
    )


class MetricWindowClosed(Envelope):
    type: Literal["MetricWindowClosed"] = "MetricWindowClosed"
    schema_version: Literal[1] = 1
    payload: MetricWindowPayload


class AnomalyPayload(FrozenModel):
    series: str = Field(max_length=256, description="e.g. 'workflow:wf-1:latency_p95_ms'.")
    scope: Scope | None = None
    key: str | None = Field(default=None, max_length=256)
    metric: str | None = Field(default=None, max_length=64)
    value: float
    score: float = Field(ge=0, le=1)
    expected_low: float | None = None
    expected_high: float | None = None
    explanation: str = Field(max_length=1024)
    window_start: UtcDatetime | None = None


class AnomalyDetected(Envelope):
    type: Literal["AnomalyDetected"] = "AnomalyDetected"
    schema_version: Literal[1] = 1
    payload: AnomalyPayload


class AlertPayload(FrozenModel):
    alert_id: str = Field(max_length=128, description="Stable id of (rule, labels).")
    rule: str = Field(max_length=128)
    severity: Severity
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    value: float | None = None
    started_at: UtcDatetime | None = None


class AlertFired(Envelope):
    type: Literal["AlertFired"] = "AlertFired"
    schema_version: Literal[1] = 1
    payload: AlertPayload


class AlertNotifiedPayload(AlertPayload):
    channel: str = Field(max_length=128)
    delivered: bool
    attempt: int = Field(default=1, ge=1)
    detail: str | None = Field(default=None, max_length=1024)


class AlertNotified(Envelope):
    type: Literal["AlertNotified"] = "AlertNotified"
    schema_version: Literal[1] = 1
    payload: AlertNotifiedPayload


class AlertResolved(Envelope):
    type: Literal["AlertResolved"] = "AlertResolved"
    schema_version: Literal[1] = 1
    payload: AlertPayload


class AlertPending(Envelope):
    """A rule's condition holds but not yet for its ``for``: the alert may fire."""

    type: Literal["AlertPending"] = "AlertPending"
    schema_version: Literal[1] = 1
    payload: AlertPayload


class AlertCleared(Envelope):
    """A pending alert whose condition stopped holding before it fired."""

    type: Literal["AlertCleared"] = "AlertCleared"
    schema_version: Literal[1] = 1
    payload: AlertPayload


class ChannelRef(FrozenModel):
    """Where notifications go. Secrets (a webhook URL with a token) stay in the credential store, named by id."""

    type: Literal["log", "webhook", "email"]
    credential_id: Identifier | None = Field(
        default=None, description="webhook: the stored credential whose `url` is the endpoint."
    )
    format: Literal["json", "slack", "alertmanager"] = Field(
        default="json",
        description="webhook: Flowledger's JSON, Slack's {'text': ...}, or Alertmanager's webhook payload "
        "(version 4), for receivers built for Alertmanager.",
    )
    to: tuple[str, ...] = Field(default=(), max_length=20, description="email: recipients.")


EXAMPLE_RULE: dict[str, Any] = {
    "name": "slack-failing", "condition": "error_rate > 0.1", "scope": "service", "match": "slack", "for_s": 120,
    "severity": "high",
    "annotations": {"summary": "Slack calls fail ({{ $value | humanizePercentage }}): team notifications are not sent"},
    "channels": [{"type": "webhook", "credential_id": "ops-slack-webhook", "format": "slack"},
                 {"type": "email", "to": ["oncall@example.com"]}],
}  # fmt: skip


class AlertRuleSpec(FrozenModel):
    """A rule as operators write it; ``condition`` is ``metric op number [x baseline]``."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_RULE]})

    name: Identifier
    condition: str = Field(max_length=256, examples=["error_rate > 0.1", "latency_p95_ms > 2.0 x baseline"])
    scope: Scope = "workflow"
    match: str = Field(default="*", max_length=256, description="Glob over the series key.")
    for_s: float = Field(default=0.0, ge=0, le=7 * 86400)
    keep_firing_for_s: float = Field(default=0.0, ge=0, le=7 * 86400)
    severity: Severity = "medium"
    cooldown_s: float | None = Field(
        default=None, ge=0, le=7 * 86400, description="Between repeated notifications; unset: the deployment default."
    )
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(
        default_factory=dict,
        description="Text told with the alert; templates such as {{ $value | humanizePercentage }}, "
        "{{ $baseline }} and {{ $labels.service }} are filled in when it fires.",
    )
    group_by: tuple[str, ...] = ("rule",)
    group_wait_s: float = Field(
        default=0.0, ge=0, le=3600,
        description="How long the first notification of a new group waits, so that alerts of the group firing "
        "meanwhile are told with it and an alert that one firing meanwhile inhibits is not told (Alertmanager's "
        "group_wait); 0 tells at once.",
    )  # fmt: skip
    channels: tuple[ChannelRef, ...] = (ChannelRef(type="log"),)
    enabled: bool = True
    range_s: float | None = Field(
        default=None, ge=1, le=86400,
        description="The rolling window the condition's metric is computed over, like Prometheus's `[1m]` "
        "(e.g. 10 for a fast rule); unset: the metric window. At most the time a quiet series keeps being "
        "evaluated (metric window x empty windows).",
    )  # fmt: skip


class AlertRuleDefinedPayload(FrozenModel):
    rule: AlertRuleSpec
    version: int = Field(ge=1)


class AlertRuleDefined(Envelope):
    type: Literal["AlertRuleDefined"] = "AlertRuleDefined"
    schema_version: Literal[1] = 1
    payload: AlertRuleDefinedPayload


class AlertRuleDeletedPayload(FrozenModel):
    name: Identifier


class AlertRuleDeleted(Envelope):
    type: Literal["AlertRuleDeleted"] = "AlertRuleDeleted"
    schema_version: Literal[1] = 1
    payload: AlertRuleDeletedPayload


class AlertRoute(FrozenModel):
    """Where the alerts whose labels match go, besides their rule's own channels (Alertmanager's routes)."""

    matchers: dict[str, str] = Field(
        default_factory=dict,
        description="label -> glob over the alert's labels, its `rule` and `severity`; every one must match. "
        "Empty: every alert.",
    )
    channels: tuple[ChannelRef, ...] = Field(min_length=1, max_length=10)
    continue_matching: bool = Field(
        default=False,
        description="Also try the routes after this one when it matches (Alertmanager's `continue`); by default "
        "the first match wins.",
    )


EXAMPLE_ROUTES: list[Any] = [
    {"matchers": {"severity": "critical"}, "channels": [{"type": "webhook", "credential_id": "pager",
                                                         "format": "alertmanager"}], "continue_matching": True},
    {"matchers": {"workflow": "billing-*"}, "channels": [{"type": "email", "to": ["billing-oncall@example.com"]}]},
]  # fmt: skip


class AlertRoutesDefinedPayload(FrozenModel):
    """The tenant's routes, in order; they replace the previous ones (an empty list removes them)."""

    routes: tuple[AlertRoute, ...] = Field(default=(), max_length=100)
    version: int = Field(ge=1)


class AlertRoutesDefined(Envelope):
    type: Literal["AlertRoutesDefined"] = "AlertRoutesDefined"
    schema_version: Literal[1] = 1
    payload: AlertRoutesDefinedPayload


class SilencePayload(FrozenModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "silence_id": "silence-4e7a2b9c", "matchers": {"workflow": "important-email-*", "severity": "medium"},
        "starts_at": "2026-03-02T22:00:00Z", "ends_at": "2026-03-03T02:00:00Z",
        "comment": "Slack maintenance window", "created_by": "maria@acme",
    }]})  # fmt: skip

    silence_id: Identifier
    matchers: dict[str, str] = Field(min_length=1, description="label -> glob; every one must match.")
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    comment: str = Field(default="", max_length=1024)
    created_by: str = Field(default="", max_length=128)


class SilenceCreated(Envelope):
    type: Literal["SilenceCreated"] = "SilenceCreated"
    schema_version: Literal[1] = 1
    payload: SilencePayload


class SilenceExpiredPayload(FrozenModel):
    """A silence ended before its time: the alerts it muted are notified again from then on."""

    silence_id: Identifier
    expired_by: str = Field(default="", max_length=128)


class SilenceExpired(Envelope):
    type: Literal["SilenceExpired"] = "SilenceExpired"
    schema_version: Literal[1] = 1
    payload: SilenceExpiredPayload


class AlertRaisedPayload(FrozenModel):
    """An alert raised by hand or by an outside system; ``status: resolved`` ends it."""

    alert_id: Identifier
    rule: Identifier = "manual"
    severity: Severity = "medium"
    status: Literal["firing", "resolved"] = "firing"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    value: float | None = None
    channels: tuple[ChannelRef, ...] = (ChannelRef(type="log"),)
    cooldown_s: float | None = Field(default=None, ge=0, le=7 * 86400)


class AlertRaised(Envelope):
    type: Literal["AlertRaised"] = "AlertRaised"
    schema_version: Literal[1] = 1
    payload: AlertRaisedPayload


class AlertAcknowledgedPayload(FrozenModel):
    """Someone has seen a firing alert and is on it; it keeps firing (and notifying) until it resolves."""

    alert_id: str = Field(max_length=128)
    acknowledged_by: str = Field(default="", max_length=128)
    comment: str = Field(default="", max_length=1024)


class AlertAcknowledged(Envelope):
    type: Literal["AlertAcknowledged"] = "AlertAcknowledged"
    schema_version: Literal[1] = 1
    payload: AlertAcknowledgedPayload


class WorkerHeartbeatPayload(FrozenModel):
    """A process saying it is alive, and how far it has got."""

    worker: Identifier
    role: Literal["stream-worker", "projector"] = "stream-worker"
    agent_counts: dict[str, int] = Field(default_factory=dict)
    events_per_s: float = Field(default=0.0, ge=0)
    lag: dict[str, int] = Field(default_factory=dict, description="Records behind, per topic.")
    started_at: datetime | None = None


class WorkerHeartbeat(Envelope):
    type: Literal["WorkerHeartbeat"] = "WorkerHeartbeat"
    schema_version: Literal[1] = 1
    payload: WorkerHeartbeatPayload


SYSTEM_TENANT = "system"
"""Tenant of records about Flowledger itself (heartbeats); ``workflow_id`` is ``"all"``."""


def worker_heartbeat(payload: WorkerHeartbeatPayload, *, now: datetime) -> WorkerHeartbeat:
    """The heartbeat record of a process; its id is deterministic per worker and instant."""
    return WorkerHeartbeat(
        event_id=deterministic_event_id("heartbeat", payload.worker, now.isoformat()),
        occurred_at=now,
        tenant_id=SYSTEM_TENANT,
        workflow_id="all",
        payload=payload,
    )


MONITORING_RECORDS = (
    MetricWindowClosed,
    AnomalyDetected,
    AlertFired,
    AlertNotified,
    AlertResolved,
    AlertPending,
    AlertCleared,
    AlertRuleDefined,
    AlertRuleDeleted,
    AlertRoutesDefined,
    SilenceCreated,
    SilenceExpired,
    AlertRaised,
    AlertAcknowledged,
    WorkerHeartbeat,
)
