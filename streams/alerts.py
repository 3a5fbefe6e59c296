"""Agent ``evaluate_alerts``: alert rules over closed metric windows, the alert lifecycle, notifications.

Input topics: ``metric-windows`` (``MetricWindowClosed``) and ``alert-control``
(``AlertRuleDefined``, ``AlertRuleDeleted``, ``SilenceCreated``, ``AlertRaised``), one
partition each: one worker holds every tenant's rules, alert states and
notification state, which grouping and inhibition need in one place (the
volume is windows per minute, not events).
Output topic: ``alerts`` (``AlertPending``, ``AlertCleared``, ``AlertFired``,
``AlertResolved``, and an ``AlertNotified`` per delivery attempt and channel).
Table: ``alert_state`` (tenant -> rules, silences, rule states, notifier
state; pickled), written after the batch's alerts were acknowledged.
Dead letters: none here; the projector dead-letters undecodable records.

Evaluation is ``domain.alerting.evaluate`` at each window's end (event time),
the code a backtest runs. Notifications are planned by
``domain.alerting.plan_notifications`` and delivered by tasks, so a slow or
dead channel never holds the agent or the other channels; each channel gets up
to ``DELIVERY_ATTEMPTS`` tries with backoff. A crash between planning and
delivery loses that notification; the repeat after the rule's cooldown sends
it again.
"""

import asyncio
import logging
import pickle
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from connectors.base import ConnectorError
from connectors.channels import Channels, channel_name
from connectors.credentials import CredentialStore
from connectors.registry import ConnectorRegistry
from domain.alerting import (
    Alert,
    AlertState,
    InhibitRule,
    NotifierState,
    Rule,
    Silence,
    builtin_specs,
    evaluate,
    plan_notifications,
    rule_from_spec,
)
from schemas import topics
from schemas.envelope import Envelope, deterministic_event_id
from schemas.monitoring import (
    AlertCleared,
    AlertFired,
    AlertNotified,
    AlertNotifiedPayload,
    AlertPayload,
    AlertPending,
    AlertRaised,
    AlertResolved,
    AlertRuleDefined,
    AlertRuleDeleted,
    AlertRuleSpec,
    ChannelRef,
    MetricWindowClosed,
    SilenceCreated,
    SilencePayload,
)
from schemas.registry import decode, to_json
from streams.app import app, settings
from streams.metrics import routed_table

log = logging.getLogger(__name__)

DELIVERY_ATTEMPTS = 3
DELIVERY_BACKOFF_S = 1.0
INHIBIT = [InhibitRule(source={"scope": "service"}, target={"scope": "step"}, equal=("service",))]
"""A service's alert mutes the alerts of the steps that call that service."""

alert_input = app.topic(topics.METRIC_WINDOWS, topics.ALERT_CONTROL, value_serializer="raw", key_serializer="raw")
alerts_topic = app.topic(topics.ALERTS, value_serializer="raw", key_serializer="raw")
alert_table = routed_table("alert_state", 1, route=lambda key: 0)


@dataclass
class Firing:
    alert: Alert
    payload: AlertPayload
    channels: tuple[ChannelRef, ...]


@dataclass
class TenantAlerts:
    rules: dict[str, AlertRuleSpec] = field(default_factory=dict)
    silences: list[SilencePayload] = field(default_factory=list)
    states: dict[tuple[str, str, str], AlertState] = field(default_factory=dict)
    firing: dict[str, Firing] = field(default_factory=dict)
    notifier: NotifierState = field(default_factory=NotifierState)
    marked: set[str] = field(default_factory=set)
    """Firing alerts already recorded as muted (silenced or inhibited)."""

    compiled: list[tuple[Rule, AlertRuleSpec]] | None = None
    """The rules in force, parsed; None after a rule changed."""

    def effective_rules(self) -> list[tuple[Rule, AlertRuleSpec]]:
        if self.compiled is None:
            specs = {s.name: s for s in builtin_specs()} | self.rules
            cooldown = settings.monitoring_alert_cooldown
            self.compiled = [(rule_from_spec(s, default_cooldown_s=cooldown), s) for s in specs.values() if s.enabled]
        return self.compiled


class Store:
    def __init__(self) -> None:
        self.cache: dict[str, TenantAlerts] = {}

    def load(self, tenant: str) -> TenantAlerts:
        state = self.cache.get(tenant)
        if state is None:
            raw = alert_table.get(tenant.encode())
            state = pickle.loads(raw) if raw else TenantAlerts()  # noqa: S301 - written by this module only
            self.cache[tenant] = state
        return state

    def save(self, tenant: str) -> None:
        alert_table[tenant.encode()] = pickle.dumps(self.cache[tenant])


store = Store()


def _channels() -> Channels:
    data_dir = Path(settings.flowledger_data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    credentials = CredentialStore(data_dir)
    registry = ConnectorRegistry.from_env(credentials, httpx.AsyncClient(timeout=10))
    return Channels(registry.for_service("webhook"), registry.for_service("email"), credentials)


channels = _channels()
in_flight: set[asyncio.Future[None]] = set()


@app.agent(alert_input)
async def evaluate_alerts(stream):  # type: ignore[no-untyped-def]
    async for values in stream.take(500, within=0.05):
        outputs: list[Envelope] = []
        now_by_tenant: dict[str, float] = {}
        for value in values:
            good, _bad = decode(value)
            for record in good:
                outputs += apply(store.load(record.tenant_id), record)
                at = record.occurred_at.timestamp()
                now_by_tenant[record.tenant_id] = max(at, now_by_tenant.get(record.tenant_id, at))
        deliveries = [(t, *plan(store.load(t), now=now)) for t, now in now_by_tenant.items()]
        for tenant, _notifications, muted in deliveries:
            outputs += mark_muted(tenant, store.load(tenant), muted)
        sent = [await alerts_topic.send(key=r.tenant_id.encode(), value=to_json(r)) for r in outputs]
        await asyncio.gather(*sent)
        for tenant in now_by_tenant:
            store.save(tenant)
        for tenant, notifications, muted in deliveries:
            for message, targets, alerts in notifications:
                task = asyncio.ensure_future(deliver(tenant, message, targets, alerts))
                in_flight.add(task)  # the loop keeps only weak references to tasks
                task.add_done_callback(in_flight.discard)
            if muted:
                log.info("tenant %s: %d alert(s) not notified: %s", tenant, len(muted), sorted(set(muted.values())))


def mark_muted(tenant_id: str, tenant: TenantAlerts, muted: dict[str, str]) -> list[Envelope]:
    """Record once per firing that an alert was silenced or inhibited (channel ``muted``, not delivered)."""
    tenant.marked &= set(tenant.firing)
    marks: list[Envelope] = []
    for alert_id, reason in sorted(muted.items()):
        if reason == "cooldown" or alert_id in tenant.marked or alert_id not in tenant.firing:
            continue
        tenant.marked.add(alert_id)
        alert = tenant.firing[alert_id].payload
        marks.append(AlertNotified(
            event_id=deterministic_event_id(alert_id, "muted", reason, repr(alert.started_at)),
            occurred_at=datetime.now(UTC), tenant_id=tenant_id, workflow_id=alert.labels.get("workflow", "all"),
            payload=AlertNotifiedPayload(**alert.model_dump(), channel="muted", delivered=False, detail=reason),
        ))  # fmt: skip
    return marks


def apply(tenant: TenantAlerts, record: Envelope) -> list[Envelope]:
    """Fold one record into the tenant's alerting state; returns the lifecycle events it caused."""
    if isinstance(record, AlertRuleDefined):
        tenant.rules[record.payload.rule.name] = record.payload.rule
        tenant.compiled = None
    elif isinstance(record, AlertRuleDeleted):
        tenant.rules.pop(record.payload.name, None)
        tenant.compiled = None
    elif isinstance(record, SilenceCreated):
        tenant.silences = [s for s in tenant.silences if s.ends_at.timestamp() > time.time()] + [record.payload]
    elif isinstance(record, AlertRaised):
        return _raised(tenant, record)
    elif isinstance(record, MetricWindowClosed) and settings.workflow_monitoring_enabled:
        return _evaluate(tenant, record)
    return []


def _raised(tenant: TenantAlerts, record: AlertRaised) -> list[Envelope]:
    """An alert from outside: it fires and resolves when its sender says so."""
    p = record.payload
    payload = AlertPayload(alert_id=p.alert_id, rule=p.rule, severity=p.severity, labels=p.labels,
                           annotations=p.annotations, value=p.value, started_at=record.occurred_at)  # fmt: skip
    cooldown = settings.monitoring_alert_cooldown if p.cooldown_s is None else p.cooldown_s
    common = {"occurred_at": record.occurred_at, "tenant_id": record.tenant_id, "workflow_id": record.workflow_id}
    if p.status == "firing" and p.alert_id not in tenant.firing:
        alert = Alert(p.alert_id, p.rule, p.severity, p.labels, True, cooldown, ("rule",))
        tenant.firing[p.alert_id] = Firing(alert, payload, p.channels)
        return [AlertFired(event_id=deterministic_event_id(record.event_id, "fired"), payload=payload, **common)]
    if p.status == "resolved" and p.alert_id in tenant.firing:
        firing = tenant.firing[p.alert_id]
        firing.alert = Alert(p.alert_id, p.rule, p.severity, p.labels, False, cooldown, ("rule",))
        return [AlertResolved(event_id=deterministic_event_id(record.event_id, "resolved"), payload=payload, **common)]
    return []


def _evaluate(tenant: TenantAlerts, window: MetricWindowClosed) -> list[Envelope]:
    p = window.payload
    at = p.window_end.timestamp()
    events: list[Envelope] = []
    for rule, spec in tenant.effective_rules():
        value = getattr(p, rule.condition.metric, None)
        if not rule.applies_to(p.scope, p.key) or value is None:
            continue
        key = (rule.name, p.scope, p.key)
        state = tenant.states.setdefault(key, AlertState())
        transition = evaluate(rule, state, value=float(value), at=at)
        alert_id = deterministic_event_id("alert", window.tenant_id, *key)
        common = {"occurred_at": p.window_end, "tenant_id": window.tenant_id, "workflow_id": window.workflow_id}
        event_id = deterministic_event_id(alert_id, str(transition), repr(at))
        if transition == "fired":
            payload = _payload(alert_id, rule, window, float(value), started_at=p.window_end)
            tenant.firing[alert_id] = Firing(_alert(alert_id, rule, payload, firing=True), payload, spec.channels)
            events.append(AlertFired(event_id=event_id, payload=payload, **common))
        elif transition == "resolved" and alert_id in tenant.firing:
            firing = tenant.firing[alert_id]
            firing.alert = _alert(alert_id, rule, firing.payload, firing=False)
            payload = firing.payload.model_copy(update={"value": float(value)})
            events.append(AlertResolved(event_id=event_id, payload=payload, **common))
        elif transition in ("pending", "cleared"):
            payload = _payload(alert_id, rule, window, float(value), started_at=p.window_end)
            kind = AlertPending if transition == "pending" else AlertCleared
            events.append(kind(event_id=event_id, payload=payload, **common))
    return events


def _payload(alert_id: str, rule: Rule, window: MetricWindowClosed, value: float, started_at: datetime) -> AlertPayload:
    p = window.payload
    labels = {"scope": p.scope, "key": p.key, "severity": rule.severity, **dict(rule.labels)}
    if window.workflow_id != "all":
        labels["workflow"] = window.workflow_id
    if p.service:
        labels["service"] = p.service
    summary = f"{p.scope} {p.key}: {rule.condition.metric} {value:g} ({rule.condition})"
    return AlertPayload(alert_id=alert_id, rule=rule.name, severity=rule.severity, labels=labels,
                        annotations={"summary": summary, **dict(rule.annotations)}, value=value,
                        started_at=started_at)  # fmt: skip


def _alert(alert_id: str, rule: Rule, payload: AlertPayload, *, firing: bool) -> Alert:
    return Alert(alert_id, rule.name, rule.severity, payload.labels, firing, rule.cooldown_s, rule.group_by)


Delivery = tuple[dict[str, Any], tuple[ChannelRef, ...], list[AlertPayload]]


def plan(tenant: TenantAlerts, *, now: float) -> tuple[list[Delivery], dict[str, str]]:
    """Who is told what now; resolved alerts leave the firing set once planned."""
    silences = [
        Silence(s.silence_id, s.matchers, s.starts_at.timestamp(), s.ends_at.timestamp()) for s in tenant.silences
    ]
    result = plan_notifications([f.alert for f in tenant.firing.values()], tenant.notifier, now=now,
                                silences=silences, inhibit=INHIBIT)  # fmt: skip
    deliveries: list[Delivery] = []
    for notification in result.notifications:
        firings = [tenant.firing[a.alert_id] for a in notification.alerts]
        status = "resolved" if notification.reason == "resolved" else "firing"
        message = {
            "status": status, "reason": notification.reason, "group": list(notification.group),
            "alerts": [f.payload.model_dump(mode="json") for f in firings],
        }  # fmt: skip
        targets = tuple(dict.fromkeys(c for f in firings for c in f.channels))
        deliveries.append((message, targets, [f.payload for f in firings]))
    for alert_id in [a for a, f in tenant.firing.items() if not f.alert.firing]:
        del tenant.firing[alert_id]
    return deliveries, result.muted


async def deliver(
    tenant: str, message: dict[str, Any], targets: tuple[ChannelRef, ...], alerts: list[AlertPayload]
) -> None:
    await asyncio.gather(*(_deliver_one(tenant, message, channel, alerts) for channel in targets))


async def _deliver_one(tenant: str, message: dict[str, Any], channel: ChannelRef, alerts: list[AlertPayload]) -> None:
    key = deterministic_event_id(tenant, message["status"], *sorted(a.alert_id for a in alerts), repr(time.time()))
    for attempt in range(1, DELIVERY_ATTEMPTS + 1):
        try:
            detail, delivered = await channels.deliver(tenant, channel, message, key), True
        except ConnectorError as exc:
            detail, delivered = f"{exc.error_type}: {exc.message}"[:1024], False
        for alert in alerts:
            record = AlertNotified(
                event_id=deterministic_event_id(key, alert.alert_id, channel_name(channel), str(attempt)),
                occurred_at=datetime.now(UTC), tenant_id=tenant, workflow_id=alert.labels.get("workflow", "all"),
                payload=AlertNotifiedPayload(**alert.model_dump(), channel=channel_name(channel), delivered=delivered,
                                             attempt=attempt, detail=detail),
            )  # fmt: skip
            await alerts_topic.send(key=tenant.encode(), value=to_json(record))
        if delivered:
            return
        await asyncio.sleep(DELIVERY_BACKOFF_S * 2 ** (attempt - 1))
