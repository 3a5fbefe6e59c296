"""Alert rules (built-in and defined), silences, alerts, and backtests of a candidate rule over stored history."""

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api import examples
from api.deps import State, Tenant
from domain.alerting import RuleError, backtest, builtin_specs, rule_from_spec
from domain.annotations import TemplateError
from domain.annotations import check as check_template
from domain.rolling import pane_config, replay_ticks
from flowledger.settings import Settings
from projections import alert_queries
from schemas.envelope import new_event_id
from schemas.monitoring import (
    EXAMPLE_ROUTES,
    EXAMPLE_RULE,
    AlertAcknowledged,
    AlertAcknowledgedPayload,
    AlertRaised,
    AlertRaisedPayload,
    AlertRoute,
    AlertRoutesDefined,
    AlertRoutesDefinedPayload,
    AlertRuleDefined,
    AlertRuleDefinedPayload,
    AlertRuleDeleted,
    AlertRuleDeletedPayload,
    AlertRuleSpec,
    ChannelRef,
    SilenceCreated,
    SilenceExpired,
    SilenceExpiredPayload,
    SilencePayload,
)

router = APIRouter(prefix="/api/workflows/monitoring", tags=["alerting"])

RuleName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$", max_length=128)]
MONITORING = "all"
"""``workflow_id`` of rule and silence records: they belong to the tenant, not to one workflow."""


RULE: dict[str, Any] = {"rule": EXAMPLE_RULE, "version": 3, "builtin": False, "updated_at": "2026-03-01T17:45:12.030Z"}
ALERT: dict[str, Any] = {
    "alert_id": "a-5f0c9e1d2b7a", "state": "resolved", "rule": "slack-failing", "severity": "high",
    "labels": {"rule": "slack-failing", "service": "slack", "tenant": examples.TENANT},
    "annotations": {"summary": "Slack calls fail (31%): team notifications are not sent"}, "value": 0.31,
    "pending_at": "2026-03-02T09:15:00Z", "fired_at": "2026-03-02T09:17:00Z",
    "resolved_at": "2026-03-02T09:41:00Z",
    "last_seen": "2026-03-02T09:41:00Z", "notifications": 2, "failed_deliveries": 0,
}  # fmt: skip


class RulePublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [RULE]})

    rule: AlertRuleSpec
    version: int
    """0 for a built-in rule nobody has redefined."""
    builtin: bool
    updated_at: datetime | None


class RulesPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"rules": [RULE]}]})

    rules: list[RulePublic]


INVALID_RULE = examples.error(
    "the condition or a channel is not valid; the message says why", "an email channel needs recipients in 'to'"
)


def _checked(spec: AlertRuleSpec, settings: Settings) -> AlertRuleSpec:
    try:
        rule_from_spec(spec, default_cooldown_s=settings.monitoring_alert_cooldown)
    except RuleError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    for name, text in spec.annotations.items():
        try:
            check_template(text)
        except TemplateError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"annotation '{name}': {exc}") from exc
    longest = settings.flowledger_metrics_window_s * settings.flowledger_metrics_empty_windows
    if spec.range_s is not None and not settings.flowledger_alert_pane_s <= spec.range_s <= longest:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"range_s must be between one pane ({settings.flowledger_alert_pane_s:g} s) and the time a quiet "
            f"series keeps being evaluated ({longest:g} s = metric window x empty windows), got {spec.range_s:g}",
        )
    _check_channels(spec.channels)
    return spec


def _check_channels(channels: Iterable[ChannelRef]) -> None:
    for channel in channels:
        if channel.type == "webhook" and not channel.credential_id:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "a webhook channel names the stored credential holding its URL: {'type': 'webhook', "
                "'credential_id': '...'} (PUT /api/credentials/{id} with {'url': ...})",
            )
        if channel.type == "email" and not channel.to:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "an email channel needs recipients in 'to'")


async def _defined(state: Any, tenant: str) -> dict[str, dict[str, Any]]:
    """Every rule name the tenant ever defined (``alert_queries.rules``), with this process's own later writes
    over the warehouse's rows: a rule defined or deleted a moment ago is not projected yet, and reading it back
    (listing it, deleting it, refusing a second one of its name) must not depend on the projector's lag."""
    rows = {r["name"]: r for r in await run_in_threadpool(alert_queries.rules, state.warehouse, tenant)}
    for (owner, name), write in list(state.rule_writes.items()):
        if owner != tenant:
            continue
        row = rows.get(name)
        if row is not None and row["updated_at"] > write["updated_at"] - timedelta(milliseconds=1):
            del state.rule_writes[(owner, name)]  # projected (to the millisecond), or overtaken
        else:
            rows[name] = {**write, "last_version": max(write["last_version"], row["last_version"] if row else 0)}
    return rows


async def _rules(state: Any, tenant: str) -> list[RulePublic]:
    by_name = {
        name: RulePublic(rule=AlertRuleSpec.model_validate(r["spec"]), version=r["version"], builtin=False,
                         updated_at=r["updated_at"])
        for name, r in (await _defined(state, tenant)).items() if not r["deleted"]
    }  # fmt: skip
    for spec in builtin_specs():
        if spec.name in by_name:
            by_name[spec.name] = by_name[spec.name].model_copy(update={"builtin": True})
        else:
            by_name[spec.name] = RulePublic(rule=spec, version=0, builtin=True, updated_at=None)
    return [by_name[name] for name in sorted(by_name)]


@router.get("/rules", response_model=RulesPublic)
async def list_rules(state: State, tenant: Tenant) -> RulesPublic:
    """Every rule in force: the built-in ones (as redefined, if they were) and the tenant's own."""
    return RulesPublic(rules=await _rules(state, tenant))


async def _define(state: Any, tenant: str, spec: AlertRuleSpec) -> RulePublic:
    defined = (await _defined(state, tenant)).get(spec.name)
    version = (defined["last_version"] if defined else 0) + 1
    record = AlertRuleDefined(
        event_id=new_event_id(), occurred_at=datetime.now(UTC), tenant_id=tenant, workflow_id=MONITORING,
        payload=AlertRuleDefinedPayload(rule=spec, version=version),
    )  # fmt: skip
    await state.producer.send([record])
    state.rule_writes[(tenant, spec.name)] = {
        "name": spec.name, "version": version, "deleted": False, "spec": spec.model_dump(mode="json"),
        "updated_at": record.occurred_at, "last_version": version,
    }  # fmt: skip
    builtin = spec.name in {s.name for s in builtin_specs()}
    return RulePublic(rule=spec, version=version, builtin=builtin, updated_at=record.occurred_at)


@router.post(
    "/rules", response_model=RulePublic, status_code=status.HTTP_201_CREATED,
    responses={409: examples.error("a rule of that name exists: PUT to change it",
                                   "rule 'slack-failing' exists: PUT /rules/slack-failing to change it"),
               422: INVALID_RULE},
)  # fmt: skip
async def create_rule(spec: AlertRuleSpec, state: State, tenant: Tenant) -> RulePublic:
    """Define a new rule (an `AlertRuleDefined` event); the alert agent picks it up from the log."""
    _checked(spec, state.settings)
    if any(r.rule.name == spec.name for r in await _rules(state, tenant)):
        raise HTTPException(status.HTTP_409_CONFLICT, f"rule '{spec.name}' exists: PUT /rules/{spec.name} to change it")
    return await _define(state, tenant, spec)


@router.put("/rules/{name}", response_model=RulePublic, responses={422: INVALID_RULE})
async def replace_rule(name: RuleName, spec: AlertRuleSpec, state: State, tenant: Tenant) -> RulePublic:
    """Define a new version of a rule (or redefine a built-in one)."""
    if spec.name != name:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"body names rule '{spec.name}', path '{name}'")
    return await _define(state, tenant, _checked(spec, state.settings))


@router.delete(
    "/rules/{name}", status_code=status.HTTP_204_NO_CONTENT,
    responses={404: examples.error("no such rule", "no defined rule 'slack-failing'")},
)
async def delete_rule(name: RuleName, state: State, tenant: Tenant) -> Response:
    """Delete a defined rule; a redefined built-in rule returns to its defaults (disable it with `enabled: false`)."""
    defined = (await _defined(state, tenant)).get(name)
    if defined is None or defined["deleted"]:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no defined rule '{name}'")
    record = AlertRuleDeleted(
        event_id=new_event_id(), occurred_at=datetime.now(UTC), tenant_id=tenant, workflow_id=MONITORING,
        payload=AlertRuleDeletedPayload(name=name),
    )  # fmt: skip
    await state.producer.send([record])
    state.rule_writes[(tenant, name)] = {
        "name": name, "version": 0, "deleted": True, "spec": None, "updated_at": record.occurred_at,
        "last_version": defined["last_version"],
    }  # fmt: skip
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class RoutesRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"routes": EXAMPLE_ROUTES}]})

    routes: list[AlertRoute] = Field(max_length=100, description="In order: the first match wins, unless it says "
                                     "continue_matching. An empty list removes every route.")  # fmt: skip


class RoutesPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"routes": EXAMPLE_ROUTES, "version": 2, "updated_at": "2026-03-01T17:45:12.030Z"}
    ]})  # fmt: skip

    routes: list[AlertRoute]
    version: int
    """0: no routes were ever defined."""
    updated_at: datetime | None


@router.get("/routes", response_model=RoutesPublic)
async def get_routes(state: State, tenant: Tenant) -> RoutesPublic:
    """Where alerts go by their labels, besides their rule's channels (Alertmanager's routing)."""
    found = await run_in_threadpool(alert_queries.current_routes, state.warehouse, tenant)
    if found is None:
        return RoutesPublic(routes=[], version=0, updated_at=None)
    return RoutesPublic(**found)


@router.put("/routes", response_model=RoutesPublic, responses={422: INVALID_RULE})
async def put_routes(body: RoutesRequest, state: State, tenant: Tenant) -> RoutesPublic:
    """Replace the tenant's routes (an `AlertRoutesDefined` event); the alert agent uses them from its next
    notification on, for the alerts of rules and those raised from outside alike."""
    for i, route in enumerate(body.routes):
        try:
            _check_channels(route.channels)
        except HTTPException as exc:
            raise HTTPException(exc.status_code, f"routes[{i}]: {exc.detail}") from exc
    found = await run_in_threadpool(alert_queries.current_routes, state.warehouse, tenant)
    key = ("routes", tenant)
    version = max(found["version"] if found else 0, state.assigned_versions.get(key, 0)) + 1
    record = AlertRoutesDefined(
        event_id=new_event_id(), occurred_at=datetime.now(UTC), tenant_id=tenant, workflow_id=MONITORING,
        payload=AlertRoutesDefinedPayload(routes=tuple(body.routes), version=version),
    )  # fmt: skip
    await state.producer.send([record])
    state.assigned_versions[key] = version
    return RoutesPublic(routes=body.routes, version=version, updated_at=record.occurred_at)


class SilenceRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "matchers": {"workflow": "important-email-*"}, "duration_s": 14400, "starts_at": "2026-03-02T22:00:00Z",
        "comment": "Slack maintenance window", "created_by": "maria@acme",
    }]})  # fmt: skip

    matchers: dict[str, str] = Field(min_length=1, description="label -> glob, e.g. {'workflow': 'billing-*'}")
    duration_s: float = Field(gt=0, le=30 * 86400, description="How long from now (or from starts_at).")
    starts_at: datetime | None = None
    comment: str = Field(default="", max_length=1024)
    created_by: str = Field(default="", max_length=128)


@router.post("/silences", response_model=SilencePayload, status_code=status.HTTP_201_CREATED)
async def create_silence(body: SilenceRequest, state: State, tenant: Tenant) -> SilencePayload:
    """Mute matching alerts until the silence expires (they still fire and are recorded, marked silenced)."""
    starts = body.starts_at or datetime.now(UTC)
    if starts.tzinfo is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "starts_at needs a zone, e.g. 2026-01-01T00:00Z")
    payload = SilencePayload(
        silence_id=f"silence-{new_event_id()[:8]}", matchers=body.matchers, starts_at=starts,
        ends_at=starts + timedelta(seconds=body.duration_s), comment=body.comment, created_by=body.created_by,
    )  # fmt: skip
    record = SilenceCreated(
        event_id=new_event_id(), occurred_at=datetime.now(UTC), tenant_id=tenant, workflow_id=MONITORING,
        payload=payload,
    )  # fmt: skip
    await state.producer.send([record])
    kept = {key: s for key, s in state.created_silences.items() if s.ends_at > record.occurred_at}  # ended: forgotten
    state.created_silences = {**kept, (tenant, payload.silence_id): payload}
    return payload


class SilencePublic(SilencePayload):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        **SilencePayload.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index,dict-item]
        "state": "active", "expired_at": None, "expired_by": "",
    }]})  # fmt: skip

    state: Literal["pending", "active", "expired"]
    """``pending`` before ``starts_at``; ``expired`` after ``ends_at``, or since someone expired it."""
    expired_at: datetime | None = None
    """When it was expired by hand (``DELETE``); ``ends_at`` is then that time, or its planned end if earlier."""
    expired_by: str = ""


def _silence(row: dict[str, Any], now: datetime) -> SilencePublic:
    state = "pending" if now < row["starts_at"] else "active" if now < row["ends_at"] else "expired"
    return SilencePublic(**row, state=state)


class SilencesPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "silences": SilencePublic.model_config["json_schema_extra"]["examples"]  # type: ignore[index]
    }]})  # fmt: skip

    silences: list[SilencePublic]


@router.get("/silences", response_model=SilencesPublic)
async def list_silences(
    state: State, tenant: Tenant,
    include_expired: Annotated[bool, Query(description="Also the silences that have ended or were expired.")] = False,
) -> SilencesPublic:  # fmt: skip
    """Silences that have not ended (pending or active), newest first; with ``include_expired``, all of them."""
    now = datetime.now(UTC)
    ending_after = datetime(1970, 1, 1, tzinfo=UTC) if include_expired else now
    rows = await run_in_threadpool(alert_queries.silences, state.warehouse, tenant, ending_after=ending_after)
    return SilencesPublic(silences=[_silence(r, now) for r in rows])


SilenceId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$", max_length=128)]


@router.delete(
    "/silences/{silence_id}", response_model=SilencePublic,
    responses={404: examples.error("no such silence", "no silence 'silence-4e7a2b9c'"),
               409: examples.error("the silence has already ended",
                                   "silence 'silence-4e7a2b9c' ended at 2026-03-03T02:00:00+00:00")},
)  # fmt: skip
async def expire_silence(
    silence_id: SilenceId, state: State, tenant: Tenant,
    expired_by: Annotated[str, Query(max_length=128, description="Who ends it, for the record.")] = "",
) -> SilencePublic:  # fmt: skip
    """End a silence now (a `SilenceExpired` event): the firing alerts it muted are notified from then on, as
    Alertmanager does when a silence expires. A pending silence is expired before it starts."""
    rows = await run_in_threadpool(
        alert_queries.silences, state.warehouse, tenant, ending_after=datetime(1970, 1, 1, tzinfo=UTC),
        silence_id=silence_id,
    )  # fmt: skip
    created = state.created_silences.get((tenant, silence_id))
    row = rows[0] if rows else {**created.model_dump(), "expired_at": None, "expired_by": ""} if created else None
    now = datetime.now(UTC)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no silence '{silence_id}'")
    if row["ends_at"] <= now:
        raise HTTPException(status.HTTP_409_CONFLICT, f"silence '{silence_id}' ended at {row['ends_at'].isoformat()}")
    record = SilenceExpired(
        event_id=new_event_id(), occurred_at=now, tenant_id=tenant, workflow_id=MONITORING,
        payload=SilenceExpiredPayload(silence_id=silence_id, expired_by=expired_by),
    )  # fmt: skip
    await state.producer.send([record])
    return _silence({**row, "ends_at": now, "expired_at": now, "expired_by": expired_by}, now)


class BacktestRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"rule": EXAMPLE_RULE, "start": "2026-03-01T00:00:00Z", "end": "2026-03-02T00:00:00Z"}
    ]})  # fmt: skip

    rule: AlertRuleSpec
    start: datetime
    end: datetime


class BacktestAlertPublic(BaseModel):
    key: str
    fired_at: datetime
    resolved_at: datetime | None
    first_value: float
    peak_value: float
    notifications: int


class BacktestPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "rule": EXAMPLE_RULE, "series": 1, "ticks_evaluated": 1440,
        "alerts": [{"key": "slack-failing|service=slack", "fired_at": "2026-03-01T14:02:00Z",
                    "resolved_at": "2026-03-01T14:31:00Z", "first_value": 0.12, "peak_value": 0.44,
                    "notifications": 1}],
    }]})  # fmt: skip

    rule: AlertRuleSpec
    series: int
    ticks_evaluated: int
    """Rolling-window evaluations replayed: one per pane of each series."""
    alerts: list[BacktestAlertPublic]


@router.post("/rules/backtest", response_model=BacktestPublic)
async def backtest_rule(body: BacktestRequest, state: State, tenant: Tenant) -> BacktestPublic:
    """What a candidate rule would have fired over stored step and run results, evaluated by the live agent's code."""
    if body.start.tzinfo is None or body.end.tzinfo is None or body.start >= body.end:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "start and end need zones, and start < end")
    rule = rule_from_spec(_checked(body.rule, state.settings),
                          default_cooldown_s=state.settings.monitoring_alert_cooldown)  # fmt: skip
    if rule.condition.metric not in alert_queries.REPLAYED_METRICS:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{rule.condition.metric} is not rebuilt from stored events; backtest one of "
            f"{', '.join(sorted(alert_queries.REPLAYED_METRICS))}",
        )
    settings = state.settings
    window_s = settings.flowledger_metrics_window_s
    span_s = body.rule.range_s or window_s
    config = pane_config(pane_s=settings.flowledger_alert_pane_s, span_s=window_s,
                         quiet_s=window_s * settings.flowledger_metrics_empty_windows)  # fmt: skip
    try:
        observed = await run_in_threadpool(
            alert_queries.stored_observations, state.warehouse, tenant, scope=rule.scope, match=rule.match,
            start=body.start - timedelta(seconds=span_s), end=body.end,
        )  # fmt: skip
    except alert_queries.TooManyEvents as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    ticks = replay_ticks(observed, end=body.end.timestamp(), config=config, span_s=span_s)
    metric = rule.condition.metric
    points = {
        series[2]: [(at, float(v)) for at, summary in items if (v := getattr(summary, metric)) is not None]
        for series, items in ticks.items()
    }
    found = [a for a in backtest(rule, points, learn_every_s=span_s) if a.fired_at >= body.start.timestamp()]
    return BacktestPublic(
        rule=body.rule, series=len(points), ticks_evaluated=sum(len(p) for p in points.values()),
        alerts=[BacktestAlertPublic(
            key=a.key, fired_at=datetime.fromtimestamp(a.fired_at, UTC),
            resolved_at=None if a.resolved_at is None else datetime.fromtimestamp(a.resolved_at, UTC),
            first_value=a.first_value, peak_value=a.peak_value, notifications=a.notifications,
        ) for a in found],
    )  # fmt: skip


class AlertPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ALERT]})

    alert_id: str
    state: str
    rule: str
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float | None
    pending_at: datetime | None
    fired_at: datetime | None
    resolved_at: datetime | None
    last_seen: datetime
    notifications: int
    failed_deliveries: int
    muted: str | None = None
    """Why it is not notified: silenced (``silenced:<silence id>``) or inhibited (``inhibited:<alert id>``)."""
    notify_after: datetime | None = None
    """Firing and not told yet because its group waits for its first notification (the rule's ``group_wait_s``):
    when the wait ends and the group is told, unless an alert firing meanwhile inhibits this one."""
    acknowledged_at: datetime | None = None
    """When someone acknowledged the current firing (an acknowledgement ends when the alert fires again)."""
    acknowledged_by: str | None = None


class AlertsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"alerts": [ALERT]}]})

    alerts: list[AlertPublic]


@router.get("/alerts", response_model=AlertsPublic)
async def list_alerts(
    state: State,
    tenant: Tenant,
    status_: Annotated[Literal["", "firing", "pending", "resolved", "cleared"], Query(alias="status")] = "",
    severity: Literal["", "low", "medium", "high", "critical"] = "",
    rule: Annotated[str, Query(max_length=128)] = "",
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
    label: Annotated[list[str], Query(max_length=20, description="`name=glob`, e.g. `workflow=billing-*`; "
                                      "repeat it: every one must match.")] = [],  # noqa: B006 - FastAPI copies it
) -> AlertsPublic:  # fmt: skip
    """Alerts firing or pending now and their history, with how many notifications were delivered or failed."""
    if since is not None and since.tzinfo is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "since needs a zone, e.g. 2026-01-01T00:00Z")
    matchers: dict[str, str] = {}
    for item in label:
        name, sep, glob = item.partition("=")
        if not sep or not name:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"label {item!r}: expected name=glob")
        matchers[name] = glob
    rows = await run_in_threadpool(
        alert_queries.list_alerts, state.warehouse, tenant,
        state={v: k for k, v in alert_queries.STATES.items()}.get(status_, ""),
        severity=severity, rule=rule, since=since or datetime(1970, 1, 1, tzinfo=UTC), limit=limit,
        labels=matchers,
    )  # fmt: skip
    return AlertsPublic(alerts=[AlertPublic(**r) for r in rows])


class AcknowledgeRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"acknowledged_by": "oncall@example.com", "comment": "looking at the CRM sync now"},
    ]})  # fmt: skip

    acknowledged_by: str = Field(default="", max_length=128)
    comment: str = Field(default="", max_length=1024)


class AcknowledgedPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"alert_id": "crm-sync-backlog", "acknowledged_at": examples.AT, "acknowledged_by": "oncall@example.com"},
    ]})  # fmt: skip

    alert_id: str
    acknowledged_at: datetime
    acknowledged_by: str


AlertId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$", max_length=128)]


@router.post(
    "/alerts/{alert_id}/ack", response_model=AcknowledgedPublic, status_code=status.HTTP_202_ACCEPTED,
    responses={404: examples.error("no such alert", "no alert 'crm-sync-backlog'"),
               409: examples.error("the alert is not firing or pending",
                                   "alert 'crm-sync-backlog' is resolved, not firing")},
)  # fmt: skip
async def acknowledge_alert(
    alert_id: AlertId, state: State, tenant: Tenant, body: AcknowledgeRequest | None = None
) -> AcknowledgedPublic:
    """Acknowledge a firing (or pending) alert: an `AlertAcknowledged` event, shown in the alert views until the
    alert fires again. It does not mute notifications; a silence does."""
    body = body or AcknowledgeRequest()
    rows = await run_in_threadpool(
        alert_queries.list_alerts, state.warehouse, tenant, state="", severity="", rule="",
        since=datetime(1970, 1, 1, tzinfo=UTC), limit=1, alert_id=alert_id,
    )  # fmt: skip
    if not rows:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert '{alert_id}'")
    if rows[0]["state"] not in ("firing", "pending"):
        raise HTTPException(status.HTTP_409_CONFLICT, f"alert '{alert_id}' is {rows[0]['state']}, not firing")
    labels = rows[0]["labels"]
    record = AlertAcknowledged(
        event_id=new_event_id(), occurred_at=datetime.now(UTC), tenant_id=tenant,
        workflow_id=labels["workflow"] if _is_id(labels.get("workflow")) else MONITORING,
        payload=AlertAcknowledgedPayload(alert_id=alert_id, acknowledged_by=body.acknowledged_by, comment=body.comment),
    )  # fmt: skip
    await state.producer.send([record])
    return AcknowledgedPublic(alert_id=alert_id, acknowledged_at=record.occurred_at,
                              acknowledged_by=body.acknowledged_by)  # fmt: skip


class RaiseAlertRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "alert_id": "crm-sync-backlog", "rule": "crm-backlog", "severity": "high",
        "labels": {"workflow": examples.WORKFLOW_ID, "source": "crm-monitor"},
        "annotations": {"summary": "CRM sync is 40 minutes behind"}, "value": 2400,
        "channels": [{"type": "log"}, {"type": "email", "to": ["oncall@example.com"]}],
    }]})  # fmt: skip

    alert_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$", max_length=128)
    """Your id for the alert: send it again with ``status: resolved`` to end it. Generated when omitted."""
    rule: str = Field(default="manual", pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$", max_length=128)
    severity: Literal["low", "medium", "high", "critical"] = "medium"
    status: Literal["firing", "resolved"] = "firing"
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    value: float | None = None
    channels: tuple[ChannelRef, ...] = (ChannelRef(type="log"),)
    cooldown_s: float | None = Field(default=None, ge=0, le=7 * 86400)


class RaisedPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"alert_id": "crm-sync-backlog", "status": "firing"}]})

    alert_id: str
    status: str


@router.post("/alerts", response_model=RaisedPublic, status_code=status.HTTP_202_ACCEPTED)
async def raise_alert(body: RaiseAlertRequest, state: State, tenant: Tenant) -> RaisedPublic:
    """Raise an alert by hand or from an outside system (or resolve one); it is grouped, silenced and notified
    like the alerts of rules."""
    spec_check = AlertRuleSpec(name=body.rule, condition="count > 0", channels=body.channels)
    _checked(spec_check, state.settings)
    alert_id = body.alert_id or f"manual-{new_event_id()[:12]}"
    record = AlertRaised(
        event_id=new_event_id(), occurred_at=datetime.now(UTC), tenant_id=tenant,
        workflow_id=body.labels.get("workflow", MONITORING) if _is_id(body.labels.get("workflow")) else MONITORING,
        payload=AlertRaisedPayload(alert_id=alert_id, **body.model_dump(exclude={"alert_id"})),
    )  # fmt: skip
    await state.producer.send([record])
    return RaisedPublic(alert_id=alert_id, status=body.status)


def _is_id(value: str | None) -> bool:
    return bool(value) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}", value or "") is not None
