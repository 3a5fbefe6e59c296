"""Health scores and performance insights, per workflow, service or the whole tenant."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from api import examples
from api.deps import State, Tenant, tenant_for
from api.state import AppState
from domain import health as health_score
from domain import insights as insight_rules
from projections import health_queries

router = APIRouter(tags=["monitoring"])

HealthScope = Literal["system", "workflow", "service"]
DEFAULT_PERIOD = timedelta(hours=1)
DEFAULT_BASELINE = timedelta(hours=24)
MAX_RANGE = timedelta(days=90)


class ComponentPublic(BaseModel):
    name: str
    value: float | None
    """success_rate and anomalies: a share (0-1); latency: p95 / baseline p95; alerts: alerts firing."""
    weight: float
    points_lost: float
    explanation: str


class FiringAlertPublic(BaseModel):
    alert_id: str
    rule: str
    severity: str
    since: datetime


class SubjectHealthPublic(BaseModel):
    scope: HealthScope
    key: str
    score: float | None
    status: Literal["healthy", "degraded", "unhealthy", "unknown"]
    reason: str | None
    components: list[ComponentPublic]
    firing_alerts: list[FiringAlertPublic]


class HealthPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "tenant": examples.TENANT, "scope": "workflow", "start": "2026-03-02T08:30:00Z", "end": "2026-03-02T09:30:00Z",
        "baseline_start": "2026-03-01T08:30:00Z", "baseline_end": "2026-03-02T08:30:00Z",
        "subjects": [{
            "scope": "workflow", "key": examples.WORKFLOW_ID, "score": 71.5, "status": "degraded",
            "reason": "success rate 0.91 (baseline 0.99)",
            "components": [
                {"name": "success_rate", "value": 0.91, "weight": 40, "points_lost": 20.0,
                 "explanation": "91% of runs succeeded; the baseline was 99%"},
                {"name": "latency", "value": 1.6, "weight": 20, "points_lost": 6.0,
                 "explanation": "p95 1840 ms is 1.6 x the baseline's 1150 ms"},
                {"name": "alerts", "value": 1, "weight": 20, "points_lost": 2.5,
                 "explanation": "1 alert firing (high)"},
            ],
            "firing_alerts": [{"alert_id": "a-5f0c9e1d2b7a", "rule": "slack-failing", "severity": "high",
                               "since": "2026-03-02T09:17:00Z"}],
        }],
    }]})  # fmt: skip

    tenant: str
    scope: HealthScope
    start: datetime
    end: datetime
    baseline_start: datetime
    baseline_end: datetime
    subjects: list[SubjectHealthPublic]


class InsightSubjectPublic(BaseModel):
    workflow_id: str | None
    step_id: str | None
    service: str | None


class InsightPublic(BaseModel):
    kind: str
    severity: Literal["info", "warning", "critical"]
    subject: InsightSubjectPublic
    message: str
    evidence: dict[str, float | int | str | None]
    start: datetime
    end: datetime


class InsightsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "tenant": examples.TENANT, "workflow": examples.WORKFLOW_ID,
        "start": "2026-03-02T08:30:00Z", "end": "2026-03-02T09:30:00Z",
        "insights": [{
            "kind": "permanent_errors", "severity": "critical",
            "subject": {"workflow_id": examples.WORKFLOW_ID, "step_id": "create-task", "service": "asana"},
            "message": f"step `create-task` of workflow `{examples.WORKFLOW_ID}` fails on 64% of attempts with "
                       "`Unauthorized` 401, which retrying cannot fix: check its credentials and their permissions",
            "evidence": {"error_type": "Unauthorized", "status_code": 401, "error_class": "credentials",
                         "failures": 27, "attempts": 42, "share": 0.6429,
                         "example_message": "asana answered 401 Unauthorized"},
            "start": "2026-03-02T08:30:00Z", "end": "2026-03-02T09:30:00Z",
        }],
    }]})  # fmt: skip

    tenant: str
    workflow: str | None
    start: datetime
    end: datetime
    insights: list[InsightPublic]


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, message)


def _range(start: datetime | None, end: datetime | None, names: tuple[str, str]) -> tuple[datetime, datetime]:
    for name, value in zip(names, (start, end), strict=True):
        if value is not None and value.tzinfo is None:
            raise _unprocessable(f"{name} needs a zone, e.g. 2026-01-01T00:00Z")
    end = end or datetime.now(UTC)
    start = start or end - DEFAULT_PERIOD
    if start >= end:
        raise _unprocessable(f"{names[0]} must be before {names[1]}")
    if end - start > MAX_RANGE:
        raise _unprocessable(f"{names[0]}..{names[1]} spans more than {MAX_RANGE.days} days")
    return start, end


@router.get("/api/workflows/monitoring/health", response_model=HealthPublic)
async def health(
    state: State,
    caller: Tenant,
    scope: HealthScope = "system",
    key: Annotated[str, Query(max_length=256, description="Workflow id or service; empty: every one seen")] = "",
    start: Annotated[datetime | None, Query(description="Default: an hour before end")] = None,
    end: Annotated[datetime | None, Query(description="Default: now")] = None,
    baseline_start: Annotated[datetime | None, Query(description="Default: 24 h before baseline_end")] = None,
    baseline_end: Annotated[datetime | None, Query(description="Default: start")] = None,
    tenant: str | None = None,
) -> HealthPublic:
    """A 0-100 health score per subject, with the components that lowered it and why."""
    tenant_id = tenant_for(caller, tenant)
    if scope == "system" and key not in ("", "*"):
        raise _unprocessable("scope=system has no key (it is the whole tenant); use scope=workflow or service")
    start, end = _range(start, end, ("start", "end"))
    baseline_end = baseline_end or start
    baseline_start, baseline_end = _range(
        baseline_start or baseline_end - DEFAULT_BASELINE, baseline_end, ("baseline_start", "baseline_end")
    )
    gathered = await run_in_threadpool(
        health_queries.health_inputs, state.warehouse, tenant_id, scope=scope, key=key if scope != "system" else "",
        start=start, end=end, baseline_start=baseline_start, baseline_end=baseline_end,
        window_s=state.settings.flowledger_metrics_window_s,
    )  # fmt: skip
    subjects = []
    for inputs, alerts in gathered:
        scored = health_score.score(inputs)
        subjects.append(
            SubjectHealthPublic(
                scope=scope, key=scored.key, score=scored.score, status=scored.status, reason=scored.reason,
                components=[ComponentPublic(**c.__dict__) for c in scored.components],
                firing_alerts=[
                    FiringAlertPublic(alert_id=a.alert_id, rule=a.rule, severity=a.severity, since=a.since)
                    for a in alerts
                ],
            )
        )  # fmt: skip
    return HealthPublic(
        tenant=tenant_id, scope=scope, start=start, end=end, baseline_start=baseline_start,
        baseline_end=baseline_end, subjects=subjects,
    )  # fmt: skip


def _insights(
    state: AppState, tenant: str, start: datetime, end: datetime, workflow: str
) -> list[insight_rules.Insight]:
    wh = state.warehouse
    services = health_queries.service_stats(wh, tenant, start=start, end=end, workflow=workflow)
    return insight_rules.insights(
        versions=health_queries.step_version_latency(wh, tenant, start=start, end=end, workflow=workflow),
        services=[insight_rules.ServiceCalls(s, o.succeeded + o.failed, o.rate_limited) for s, o in services.items()],
        errors=health_queries.step_errors(wh, tenant, start=start, end=end, workflow=workflow),
        steps=health_queries.step_time(wh, tenant, start=start, end=end, workflow=workflow),
    )


@router.get("/api/workflows/monitoring/insights", response_model=InsightsPublic)
async def insights(
    state: State,
    caller: Tenant,
    start: Annotated[datetime | None, Query(description="Default: an hour before end")] = None,
    end: Annotated[datetime | None, Query(description="Default: now")] = None,
    workflow: Annotated[str, Query(max_length=256, description="Only this workflow's steps; empty: all")] = "",
    tenant: str | None = None,
) -> InsightsPublic:
    """Recommendations from the period's step, run and service statistics, most severe first."""
    tenant_id = tenant_for(caller, tenant)
    start, end = _range(start, end, ("start", "end"))
    found = await run_in_threadpool(_insights, state, tenant_id, start, end, workflow)
    return InsightsPublic(
        tenant=tenant_id, workflow=workflow or None, start=start, end=end,
        insights=[
            InsightPublic(
                kind=i.kind, severity=i.severity, subject=InsightSubjectPublic(**i.subject.__dict__),
                message=i.message, evidence=dict(i.evidence), start=start, end=end,
            )
            for i in found
        ],
    )  # fmt: skip
