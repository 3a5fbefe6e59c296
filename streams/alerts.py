"""Agent ``evaluate_alerts``: alert rules over rolling metric windows, the alert lifecycle, notifications.

Input topics: ``metric-panes`` (half-second panes of every series from each
source partition, with its watermark; see ``streams.metrics``), ``anomalies``
(``AnomalyDetected``) and ``alert-control`` (``AlertRuleDefined``,
``AlertRuleDeleted``, ``AlertRoutesDefined``, ``SilenceCreated``,
``SilenceExpired``, ``AlertRaised``), one partition each: one worker holds
every tenant's rules, routes, alert states and notification state, which
grouping and inhibition need in one place (the volume is panes per series and
second, not events).
Output topic: ``alerts`` (``AlertPending``, ``AlertCleared``, ``AlertFired``,
``AlertResolved``, and an ``AlertNotified`` per delivery attempt and channel).
Table: ``alert_state`` (tenant -> rules, routes, silences, rule states,
notifier state; ``\x1e<series>`` -> that series' open panes and the starts of
the closed ones its ranges hold, ``\x1e<series>\x1d<chunk>`` -> its closed
panes of ten seconds; pickled) and the panes' clock under ``__panes__``,
written at a checkpoint (``CHECKPOINT_S``) after the batch's alerts were
acknowledged.
Dead letters: none here; the projector dead-letters undecodable records.

Evaluation: when every source partition has finished a pane, each series
ticks: its rolling windows (the metric window's length, or a rule's own
``range_s``, ending at the pane's end) are summarized and every rule over that
series runs
``domain.alerting.evaluate`` on it, the code a backtest runs over panes
rebuilt from stored events (``domain.rolling``). Each (partition, pane) is
applied once, so panes re-sent after a crash change nothing. An
``anomaly_score`` rule sees the series' latest anomaly score for one window
after the anomalous window, and 0 otherwise. Notifications are planned by
``domain.alerting.plan_notifications`` and delivered by tasks, so a slow or
dead channel never holds the agent or the other channels; each channel gets up
to ``DELIVERY_ATTEMPTS`` tries with backoff. After a crash the agent applies
again what came after its last checkpoint: the lifecycle events it sends again
carry the same ids (the projection keeps one of each), and a notification sent
in that last second may be sent twice (at least once, as Alertmanager does),
while one planned and not yet delivered is sent then.
"""

import asyncio
import logging
import math
import pickle
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

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
    routed,
    rule_from_spec,
)
from domain.annotations import render
from domain.detection import workflow_of
from domain.rolling import PaneSeries, SavedSeries, aligned, join, split
from domain.windows import Clock, Partial, Series, WindowSummary
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
    AlertRoute,
    AlertRoutesDefined,
    AlertRuleDefined,
    AlertRuleDeleted,
    AlertRuleSpec,
    AnomalyDetected,
    ChannelRef,
    SilenceCreated,
    SilenceExpired,
    SilencePayload,
)
from schemas.registry import decode, to_json
from streams.app import app, routed_table, settings
from streams.ledger import LEDGER_PREFIX, OffsetLedger
from streams.metrics import PANES, SOURCE_PARTITIONS, WINDOW

log = logging.getLogger(__name__)

CHECKPOINT_S = 1.0
"""How often the agent writes its state: every batch, the series' records alone were the broker's busiest topic."""
DELIVERY_ATTEMPTS = 3
DELIVERY_BACKOFF_S = 1.0
LONGEST_RANGE_S = PANES.size_s * PANES.empty_windows
"""A quiet series keeps ticking (on empty panes) this long: a longer range could keep an alert firing forever."""
INHIBIT = [
    InhibitRule(source={"scope": "service"}, target={"scope": "step"}, equal=("service",)),
    InhibitRule(source={"scope": "service"}, target={"scope": "workflow"}, within=(("service", "services"),)),
]
"""A service's alert mutes the alerts of the steps that call that service, and of the workflows whose steps
called it within the alert's range (their ``services`` label)."""

alert_input = app.topic(
    topics.METRIC_PANES, topics.ANOMALIES, topics.ALERT_CONTROL, value_serializer="raw", key_serializer="raw"
)
alerts_topic = app.topic(topics.ALERTS, value_serializer="raw", key_serializer="raw")
alert_table = routed_table("alert_state", 1, route=lambda key: 0)
CLOCK_KEY = b"__panes__"


@dataclass
class Firing:
    alert: Alert
    payload: AlertPayload
    channels: tuple[ChannelRef, ...]


@dataclass
class TenantAlerts:
    rules: dict[str, AlertRuleSpec] = field(default_factory=dict)
    routes: tuple[AlertRoute, ...] = ()
    silences: list[SilencePayload] = field(default_factory=list)
    states: dict[tuple[str, str, str], AlertState] = field(default_factory=dict)
    firing: dict[str, Firing] = field(default_factory=dict)
    notifier: NotifierState = field(default_factory=NotifierState)
    marked: set[str] = field(default_factory=set)
    """Firing alerts already recorded as muted (silenced or inhibited)."""
    waited: set[str] = field(default_factory=set)
    """Firing alerts already recorded as waiting for their group's first notification."""
    wait_ends: float | None = None
    """When the first of the new groups waiting for their first notification is told (``group_wait_s``)."""

    active: set[Series] = field(default_factory=set)
    """Series that still tick: panes pending, or the empty panes a quiet series is owed."""
    anomalies: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    """(scope, key) -> (end of the anomalous window, its highest score)."""
    calls: dict[str, dict[str, float]] = field(default_factory=dict)
    """workflow -> service -> start of the latest pane in which one of its steps called that service."""

    compiled: list[tuple[Rule, AlertRuleSpec]] | None = None
    """The rules in force, parsed; None after a rule changed."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle a state saved before a field was added: the new field starts empty."""
        self.__dict__.update({**TenantAlerts().__dict__, **state})

    def services_of(self, workflow: str, *, since: float) -> list[str]:
        """The services the workflow's steps called since ``since``."""
        return sorted(s for s, at in self.calls.get(workflow, {}).items() if at >= since)

    def effective_rules(self) -> list[tuple[Rule, AlertRuleSpec]]:
        if self.compiled is None:
            specs = {s.name: s for s in builtin_specs()} | self.rules
            cooldown = settings.monitoring_alert_cooldown
            self.compiled = [(rule_from_spec(s, default_cooldown_s=cooldown), s) for s in specs.values() if s.enabled]
        return self.compiled

    def ranges(self, scope: str, key: str) -> set[float]:
        """The ranges the rules over one series read, and always the metric window's (a rule defined later over
        that range, or a shorter one, starts from its panes)."""
        rules = self.effective_rules()
        return {WINDOW.size_s} | {range_of(rule) for rule, _spec in rules if rule.applies_to(scope, key)}


def range_of(rule: Rule) -> float:
    if rule.range_s is None or rule.condition.metric == "anomaly_score":
        return WINDOW.size_s
    return min(rule.range_s, LONGEST_RANGE_S)


class Store:
    def __init__(self) -> None:
        self.cache: dict[str, TenantAlerts] = {}
        self.clock: Clock | None = None
        self.ticked_to = -math.inf
        self.all_loaded = False
        self.touched: set[str] = set()
        """Tenants whose state changed since the last checkpoint."""
        self.panes: dict[Series, PaneSeries] = {}
        self.touched_series: set[Series] = set()
        """Series whose panes changed since the last checkpoint: each series is its own record, kept well under a
        message's size."""
        self.stored_chunks: dict[Series, dict[float, frozenset[float]]] = {}
        """Per series, the chunks of closed panes in the table, with the panes each holds."""
        self.ledger = OffsetLedger(alert_table)
        self.checkpointed_at = -math.inf

    def checkpoint(self, *, now: float) -> None:
        """Write what changed, with the offsets it reflects, if ``CHECKPOINT_S`` has passed.

        Between checkpoints the table lags the agent's memory: after a crash the
        agent resumes from the last checkpoint and reads the records since from
        the log (the ledger's holes), so nothing is lost or applied twice.
        """
        if now - self.checkpointed_at < CHECKPOINT_S:
            return
        for tenant in self.touched:
            self.save(tenant)
        self.touched.clear()
        self.save_series()
        self.save_clock()
        self.ledger.save()
        self.checkpointed_at = now

    def tenants(self) -> dict[str, TenantAlerts]:
        """Every tenant with state (read from the table once, so quiet series still tick after a restart)."""
        if not self.all_loaded:
            for key in list(alert_table.keys()):
                if bytes(key) != CLOCK_KEY and not bytes(key).startswith((SERIES_PREFIX, LEDGER_PREFIX)):
                    self.load(bytes(key).decode())
            self.all_loaded = True
        return self.cache

    def load_clock(self) -> Clock:
        if self.clock is None:
            raw = alert_table.get(CLOCK_KEY)
            self.clock = Clock.from_json(SOURCE_PARTITIONS, orjson.loads(raw) if raw else None)
        return self.clock

    def save_clock(self) -> None:
        if self.clock is not None:
            alert_table[CLOCK_KEY] = orjson.dumps(self.clock.to_json())

    def load(self, tenant: str) -> TenantAlerts:
        state = self.cache.get(tenant)
        if state is None:
            raw = alert_table.get(tenant.encode())
            state = pickle.loads(raw) if raw else TenantAlerts()  # noqa: S301 - written by this module only
            self.cache[tenant] = state
        return state

    def save(self, tenant: str) -> None:
        alert_table[tenant.encode()] = pickle.dumps(self.cache[tenant])

    def load_series(self, series: Series) -> PaneSeries:
        state = self.panes.get(series)
        if state is None:
            raw = alert_table.get(series_key(series))
            saved = pickle.loads(raw) if raw else None  # noqa: S301 - written here only
            if isinstance(saved, SavedSeries):
                chunks = {chunk: pickle.loads(raw) for chunk in saved.chunks()  # noqa: S301 - written here only
                          if (raw := alert_table.get(chunk_key(series, chunk))) is not None}  # fmt: skip
                self.stored_chunks[series] = {chunk: frozenset(panes) for chunk, panes in chunks.items()}
                state = join(saved, {start: p for panes in chunks.values() for start, p in panes.items()})
            else:  # None, or a series saved whole with its panes, as before they had records of their own
                state = saved or PaneSeries.new(WINDOW.size_s)
            self.panes[series] = state
        return state

    def save_series(self) -> None:
        """Write each touched series' head and its chunks of panes that changed; delete the chunks no range holds."""
        for series in self.touched_series:
            saved, chunks = split(self.panes[series])
            stored = self.stored_chunks.setdefault(series, {})
            for chunk, panes in chunks.items():
                if stored.get(chunk) != panes.keys():
                    alert_table[chunk_key(series, chunk)] = pickle.dumps(panes)
                    stored[chunk] = frozenset(panes)
            alert_table[series_key(series)] = pickle.dumps(saved)  # before the deletes: it no longer names them
            for chunk in stored.keys() - chunks.keys():
                alert_table.pop(chunk_key(series, chunk), None)
                del stored[chunk]
        self.touched_series.clear()


SERIES_PREFIX = b"\x1e"


def series_key(series: Series) -> bytes:
    return SERIES_PREFIX + "\x1f".join(series).encode()


def chunk_key(series: Series, chunk: float) -> bytes:
    """One chunk of a series' closed panes (under the series' prefix, so ``Store.tenants`` skips it too)."""
    return series_key(series) + b"\x1d" + repr(chunk).encode()


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
    async for events in stream.take_events(500, within=0.05):
        outputs: list[Envelope] = []
        now_by_tenant: dict[str, float] = {}
        items = [(e.message.topic, e.message.partition, e.message.offset, e.value) for e in events]
        # a pane, an anomaly or a rule the consumer skipped would leave a rate short or a rule undefined
        items = await store.ledger.fill(items, fresh=lambda: alert_table.get(CLOCK_KEY) is None)
        for topic, _partition, _offset, value in items:
            if topic == topics.METRIC_PANES:
                add_panes(orjson.loads(value))
                continue
            good, _bad = decode(value)
            for record in good:
                outputs += apply(store.load(record.tenant_id), record)
                at = record.occurred_at.timestamp()
                now_by_tenant[record.tenant_id] = max(at, now_by_tenant.get(record.tenant_id, at))
        clock = store.load_clock()
        if clock.watermark > store.ticked_to and settings.workflow_monitoring_enabled:
            store.ticked_to = clock.watermark
            for tenant_id, held in store.tenants().items():
                ticked, last = tick(tenant_id, held, clock.watermark)
                outputs += ticked
                if held.wait_ends is not None and clock.watermark >= held.wait_ends:
                    last = clock.watermark  # a group's wait ended, though no series of its tenant ticked
                if last is not None:
                    now_by_tenant[tenant_id] = max(last, now_by_tenant.get(tenant_id, last))
        deliveries = [(t, *plan(store.load(t), now=now)) for t, now in now_by_tenant.items()]
        for tenant, _notifications, muted, waiting in deliveries:
            state = store.load(tenant)
            outputs += mark_muted(tenant, state, muted) + mark_waiting(tenant, state, waiting)
        sent = [await alerts_topic.send(key=r.tenant_id.encode(), value=to_json(r)) for r in outputs]
        await asyncio.gather(*sent)
        store.touched |= now_by_tenant.keys()
        store.ledger.applied(items)
        store.checkpoint(now=time.monotonic())
        for tenant, notifications, muted, _waiting in deliveries:
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
        marks.append(_undelivered(tenant_id, tenant.firing[alert_id].payload, "muted", reason, reason))
    return marks


def mark_waiting(tenant_id: str, tenant: TenantAlerts, waiting: dict[str, float]) -> list[Envelope]:
    """Record once per firing that an alert waits for its group's first notification, and until when (channel
    ``waiting``, not delivered; ``detail`` is the end of the wait, ISO 8601)."""
    tenant.waited &= set(tenant.firing)
    marks: list[Envelope] = []
    for alert_id, until in sorted(waiting.items()):
        if alert_id in tenant.waited or alert_id not in tenant.firing:
            continue
        tenant.waited.add(alert_id)
        until_iso = datetime.fromtimestamp(until, UTC).isoformat()
        marks.append(_undelivered(tenant_id, tenant.firing[alert_id].payload, "waiting", until_iso))
    return marks


def _undelivered(tenant_id: str, alert: AlertPayload, channel: str, detail: str, *id_parts: str) -> AlertNotified:
    """An ``AlertNotified`` that tells nobody: why the alert was not delivered, with an id a replay repeats."""
    return AlertNotified(
        event_id=deterministic_event_id(alert.alert_id, channel, *id_parts, repr(alert.started_at)),
        occurred_at=datetime.now(UTC), tenant_id=tenant_id, workflow_id=alert.labels.get("workflow", "all"),
        payload=AlertNotifiedPayload(**alert.model_dump(), channel=channel, delivered=False, detail=detail),
    )  # fmt: skip


def apply(tenant: TenantAlerts, record: Envelope) -> list[Envelope]:
    """Fold one record into the tenant's alerting state; returns the lifecycle events it caused."""
    if isinstance(record, AlertRuleDefined):
        tenant.rules[record.payload.rule.name] = record.payload.rule
        tenant.compiled = None
    elif isinstance(record, AlertRuleDeleted):
        tenant.rules.pop(record.payload.name, None)
        tenant.compiled = None
    elif isinstance(record, AlertRoutesDefined):
        tenant.routes = record.payload.routes
    elif isinstance(record, SilenceCreated):
        tenant.silences = [s for s in tenant.silences if s.ends_at.timestamp() > time.time()] + [record.payload]
    elif isinstance(record, SilenceExpired):
        tenant.silences = [
            s.model_copy(update={"ends_at": min(s.ends_at, record.occurred_at)})
            if s.silence_id == record.payload.silence_id else s
            for s in tenant.silences
        ]  # fmt: skip
    elif isinstance(record, AlertRaised):
        return _raised(tenant, record)
    elif isinstance(record, AnomalyDetected) and record.payload.scope and record.payload.key:
        p = record.payload
        start = (p.window_start or record.occurred_at).timestamp()
        end, score = tenant.anomalies.get((str(p.scope), str(p.key)), (-math.inf, 0.0))
        window_end = start + WINDOW.size_s
        tenant.anomalies[(str(p.scope), str(p.key))] = (
            window_end,
            max(score, p.score) if window_end == end else p.score,
        )
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


def add_panes(message: dict[str, Any]) -> None:
    """Merge one source partition's closed panes into their series, and note its watermark."""
    partition = message["p"]
    for items, start, partial in message["partials"]:
        series: Series = tuple(items)  # (tenant, scope, key, service)
        state = store.load_series(series)
        if state.windows.add(partition, start, Partial.from_json(partial)):
            tenant = store.load(series[0])
            tenant.active.add(series)
            if series[1] == "step" and series[3]:
                called = tenant.calls.setdefault(workflow_of(series), {})
                called[series[3]] = max(start, called.get(series[3], start))
            store.touched.add(series[0])
            store.touched_series.add(series)
    if message["wm"] is not None:
        store.load_clock().report(partition, message["wm"])


def tick(tenant_id: str, tenant: TenantAlerts, watermark: float) -> tuple[list[Envelope], float | None]:
    """Evaluate every rule at each pane all partitions have finished; the events, and the last tick."""
    events: list[Envelope] = []
    last: float | None = None
    for series in sorted(tenant.active):
        state = store.load_series(series)
        state.use_ranges(tenant.ranges(series[1], series[2]), PANES.size_s)
        ticks = state.advance(watermark, PANES)
        if state.windows.dormant(PANES):
            tenant.active.discard(series)
        for at, summaries in ticks:
            events += _evaluate(tenant_id, tenant, series, at, summaries)
            last = at if last is None else max(last, at)
        if ticks:
            store.touched.add(tenant_id)
            store.touched_series.add(series)
    return events, last


def _value(tenant: TenantAlerts, rule: Rule, series: Series, at: float, summary: WindowSummary) -> float | None:
    if rule.condition.metric == "anomaly_score":
        window_end, score = tenant.anomalies.get((series[1], series[2]), (-math.inf, 0.0))
        return score if window_end <= at < window_end + WINDOW.size_s else 0.0
    value = getattr(summary, rule.condition.metric, None)
    return None if value is None else float(value)


def _evaluate(
    tenant_id: str, tenant: TenantAlerts, series: Series, at: float, summaries: dict[float, WindowSummary]
) -> list[Envelope]:
    _tenant, scope, key, _service = series
    events: list[Envelope] = []
    for rule, spec in tenant.effective_rules():
        if not rule.applies_to(scope, key):
            continue
        span = range_of(rule)
        learn = aligned(at, span)
        value = _value(tenant, rule, series, at, summaries[span])
        if value is None:
            continue
        state_key = (rule.name, scope, key)
        state = tenant.states.setdefault(state_key, AlertState())
        transition = evaluate(rule, state, value=value, at=at, learn=learn)
        if transition is None:
            continue
        alert_id = deterministic_event_id("alert", tenant_id, *state_key)
        occurred_at = datetime.fromtimestamp(at, UTC)
        common = {"occurred_at": occurred_at, "tenant_id": tenant_id, "workflow_id": workflow_of(series)}
        event_id = deterministic_event_id(alert_id, str(transition), repr(at))
        services = tenant.services_of(key, since=at - span) if scope == "workflow" else []
        if transition == "fired":
            payload = _payload(alert_id, rule, series, value, occurred_at, state.learned_baseline(), services)
            tenant.firing[alert_id] = Firing(_alert(alert_id, rule, payload, firing=True), payload, spec.channels)
            events.append(AlertFired(event_id=event_id, payload=payload, **common))
        elif transition == "resolved" and alert_id in tenant.firing:
            firing = tenant.firing[alert_id]
            firing.alert = _alert(alert_id, rule, firing.payload, firing=False)
            payload = firing.payload.model_copy(update={"value": value})
            events.append(AlertResolved(event_id=event_id, payload=payload, **common))
        elif transition in ("pending", "cleared"):
            payload = _payload(alert_id, rule, series, value, occurred_at, state.learned_baseline(), services)
            kind = AlertPending if transition == "pending" else AlertCleared
            events.append(kind(event_id=event_id, payload=payload, **common))
    return events


def _payload(
    alert_id: str, rule: Rule, series: Series, value: float, started_at: datetime, baseline: float | None,
    services: list[str],
) -> AlertPayload:  # fmt: skip
    """The alert as it is recorded and told: its labels (a workflow's with the services its steps called in
    the rule's range, which inhibition reads), and its annotations with their templates filled in."""
    _tenant, scope, key, service = series
    labels = {"scope": scope, "key": key, "severity": rule.severity, **dict(rule.labels)}
    workflow = workflow_of(series)
    if workflow != "all":
        labels["workflow"] = workflow
    if service:
        labels["service"] = service
    if services:
        labels["services"] = ",".join(services)
    summary = f"{scope} {key}: {rule.condition.metric} {value:g} ({rule.condition})"
    annotations = {name: render(text, value=value, labels=labels, baseline=baseline) for name, text in rule.annotations}
    return AlertPayload(alert_id=alert_id, rule=rule.name, severity=rule.severity, labels=labels,
                        annotations={"summary": summary, **annotations}, value=value,
                        started_at=started_at)  # fmt: skip


def _alert(alert_id: str, rule: Rule, payload: AlertPayload, *, firing: bool) -> Alert:
    return Alert(
        alert_id,
        rule.name,
        rule.severity,
        payload.labels,
        firing,
        rule.cooldown_s,
        rule.group_by,
        payload.started_at.timestamp() if payload.started_at else 0.0,
        rule.group_wait_s,
    )


Delivery = tuple[dict[str, Any], tuple[ChannelRef, ...], list[AlertPayload]]


def plan(tenant: TenantAlerts, *, now: float) -> tuple[list[Delivery], dict[str, str], dict[str, float]]:
    """Who is told what now, who is muted and why, and who waits for its group until when; resolved alerts leave
    the firing set once planned."""
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
        targets = tuple(dict.fromkeys(c for f in firings for c in (*f.channels, *_routed(tenant, f.payload))))
        deliveries.append((message, targets, [f.payload for f in firings]))
    tenant.wait_ends = min(result.waiting.values(), default=None)
    for alert_id in [a for a, f in tenant.firing.items() if not f.alert.firing]:
        del tenant.firing[alert_id]
    tenant.marked -= {a.alert_id for n in result.notifications for a in n.alerts}  # told: a later mute is news
    return deliveries, result.muted, result.waiting


def _routed(tenant: TenantAlerts, alert: AlertPayload) -> list[ChannelRef]:
    return routed(tenant.routes, {**alert.labels, "rule": alert.rule, "severity": alert.severity})


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
