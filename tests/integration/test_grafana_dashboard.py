"""Every ClickHouse panel of the Grafana dashboard runs on a migrated warehouse and finds what was projected."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from projections.projector import flush
from projections.slicing import LogRecord, project_slice
from schemas.monitoring import AlertFired, MetricWindowClosed
from schemas.registry import encode
from tests.dashboards import clickhouse_queries, render
from tests.factories import T0, failed_run, run_with_retry

pytestmark = pytest.mark.integration

QUERIES = clickhouse_queries()


@pytest.fixture(scope="module")
def dashboard_tenant(warehouse):
    tenant = f"dash-{uuid.uuid4().hex[:6]}"
    runs = [run_with_retry(tenant, "wf-dash", f"ok-{i}", t0=i * 60) for i in range(3)]
    runs.append(failed_run(tenant, "wf-dash", "bad", t0=30))
    alert = AlertFired(
        event_id=str(uuid.uuid4()), occurred_at=T0 + timedelta(minutes=5), tenant_id=tenant, workflow_id="wf-dash",
        payload={"alert_id": "a1", "rule": "run-failures", "severity": "high", "labels": {"workflow": "wf-dash"}},
    )  # fmt: skip
    windows = [
        window(tenant, "workflow", "wf-dash", 0, count=10, p50=100.0),
        window(tenant, "workflow", "wf-dash", 1, count=30, p50=200.0),
        window(tenant, "service", "slack", 0, count=4, failures=1),
    ]
    batches = [*runs, [alert], windows]
    log = [LogRecord("workflow-events", 0, offset, encode(records)) for offset, records in enumerate(batches)]
    flush(warehouse, project_slice(log, now=datetime.now(UTC)).batch)
    return tenant


def window(tenant, scope, key, minute, *, count, failures=0, p50=None):
    start = T0 + timedelta(minutes=minute)
    return MetricWindowClosed(
        event_id=str(uuid.uuid4()), occurred_at=start + timedelta(minutes=1), tenant_id=tenant, workflow_id="wf-dash",
        payload={"scope": scope, "key": key, "window_start": start, "window_end": start + timedelta(minutes=1),
                 "count": count, "successes": count - failures, "failures": failures, "error_rate": failures / count,
                 "latency_p50_ms": p50, "latency_p95_ms": p50 and p50 * 2, "latency_p99_ms": p50 and p50 * 3,
                 "throughput_per_s": count / 60},
    )  # fmt: skip


def run_panel(warehouse, tenant, title):
    sql = render(QUERIES[title], tenants=[tenant], start=T0 - timedelta(hours=1), end=T0 + timedelta(hours=1),
                 interval_s=3600)  # fmt: skip
    return warehouse.query_dicts(sql)


@pytest.mark.parametrize("title", sorted(QUERIES))
def test_every_panel_query_runs(warehouse, dashboard_tenant, title):
    run_panel(warehouse, dashboard_tenant, title)


def test_panels_see_the_projected_runs_and_alerts(warehouse, dashboard_tenant):
    [workflow] = run_panel(warehouse, dashboard_tenant, "Workflows")
    assert (workflow["workflow_id"], workflow["runs"], workflow["failed"]) == ("wf-dash", 4, 1)
    assert workflow["success_rate"] == pytest.approx(0.75)
    assert workflow["last_error"] == "invalid_auth"
    assert run_panel(warehouse, dashboard_tenant, "Run success rate") == [{"success_rate": 0.75}]
    errors = {
        (r["service"], r["error_type"]): r["failures"]
        for r in run_panel(warehouse, dashboard_tenant, "Top step errors")
    }
    assert errors[("slack", "invalid_auth")] == 1 and len(errors) == 2  # and the retried 429 of each run
    assert sum(errors.values()) == 4
    [firing] = run_panel(warehouse, dashboard_tenant, "Firing alerts")
    assert (firing["rule"], firing["severity"]) == ("run-failures", "high")
    outcomes = run_panel(warehouse, dashboard_tenant, "Runs by outcome")
    assert sum(row["succeeded"] for row in outcomes) == 3 and sum(row["failed"] for row in outcomes) == 1


def test_latency_and_error_panels_read_the_metric_windows(warehouse, dashboard_tenant):
    [quantiles] = run_panel(warehouse, dashboard_tenant, "Workflow run latency quantiles")  # one 60-minute bucket
    assert quantiles["p50"] == pytest.approx((10 * 100 + 30 * 200) / 40)
    [slack] = run_panel(warehouse, dashboard_tenant, "Error rate by service")
    assert (slack["service"], slack["error_rate"]) == ("slack", 0.25)
