"""Health scores and insights through the API, from events produced to the broker.

One workflow runs 20 times on definition v1 (``create-task`` ~100 ms) and 20
times on v2 (``create-task`` 400 ms) in an hour two days ago; on v2 its
``notify`` step gets a 429 on the first attempt of 8 runs (retried, then
succeeds) and a 401 in 3 runs (which fail). The day before, 20 runs on v1
set the baseline. An alert fires for the workflow, another fires and
resolves; one anomaly falls on one of ten closed metric windows. Everything
is sent twice, the second time once the first is in ClickHouse, as a
redelivery would: every count must stay exact.
"""

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from schemas.monitoring import AlertFired, AlertResolved, AnomalyDetected, MetricWindowClosed
from schemas.runs import RunFailed, RunStarted, RunSucceeded, StepFailed, StepStarted, StepSucceeded
from tests.integration.conftest import auth, eventually

pytestmark = pytest.mark.integration

TENANT, KEY = "tenant-a", "key-a"
END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
START = END - timedelta(hours=1)
BASELINE_START = START - timedelta(hours=24)
RANGE = {"start": START.isoformat(), "end": END.isoformat()}


def eid() -> str:
    return str(uuid.uuid4())


def run_events(wf: str, run: str, t: datetime, *, version: int, task_ms: float, notify: str = "ok") -> list:
    """fetch (gmail, 50 ms) -> create-task (asana) -> notify (slack, 50 ms): notify 'ok', '429' then ok, or '401'."""
    ids = {"tenant_id": TENANT, "workflow_id": wf, "run_id": run}
    clock = [t]

    def step(cls, sid: str, service: str, attempt: int = 1, **payload):
        clock[0] += timedelta(milliseconds=50)
        return cls(event_id=eid(), occurred_at=clock[0], step_id=sid, **ids,
                   payload={"service": service, "action": "call", "attempt": attempt, **payload})  # fmt: skip

    events = [RunStarted(event_id=eid(), occurred_at=t, **ids, payload={"definition_version": version})]
    for sid, service, ms in (("fetch", "gmail", 50.0), ("create-task", "asana", task_ms)):
        events += [step(StepStarted, sid, service), step(StepSucceeded, sid, service, duration_ms=ms)]
    attempt = 1
    if notify == "429":
        error = {"type": "RateLimited", "message": "429 Too Many Requests", "status_code": 429, "retry_after_s": 1}
        events += [step(StepStarted, "notify", "slack"), step(StepFailed, "notify", "slack", duration_ms=50.0,
                                                              error=error)]  # fmt: skip
        attempt = 2
    events.append(step(StepStarted, "notify", "slack", attempt))
    duration = 600.0 if version == 2 else 300.0
    end = t + timedelta(milliseconds=duration)
    if notify == "401":
        error = {"type": "invalid_auth", "message": "invalid_auth", "status_code": 401}
        events += [step(StepFailed, "notify", "slack", attempt, duration_ms=50.0, error=error),
                   RunFailed(event_id=eid(), occurred_at=end, **ids, payload={"duration_ms": duration})]  # fmt: skip
    else:
        events += [step(StepSucceeded, "notify", "slack", attempt, duration_ms=50.0),
                   RunSucceeded(event_id=eid(), occurred_at=end, **ids, payload={"duration_ms": duration})]  # fmt: skip
    return events


def monitoring_events(wf: str) -> list:
    alert = {"rule": "performance_degradation", "severity": "high", "labels": {"scope": "workflow", "key": wf}}
    other = {"rule": "error_rate_increase", "severity": "critical", "labels": {"scope": "workflow", "key": wf}}
    records: list = [
        AlertFired(event_id=eid(), occurred_at=START + timedelta(minutes=35), tenant_id=TENANT, workflow_id=wf,
                   payload={"alert_id": f"{wf}-slow", **alert}),
        AlertFired(event_id=eid(), occurred_at=START + timedelta(minutes=40), tenant_id=TENANT, workflow_id=wf,
                   payload={"alert_id": f"{wf}-errors", **other}),
        AlertResolved(event_id=eid(), occurred_at=START + timedelta(minutes=50), tenant_id=TENANT, workflow_id=wf,
                      payload={"alert_id": f"{wf}-errors", **other}),
    ]  # fmt: skip
    for minute in range(10):
        ws = START + timedelta(minutes=minute)
        records.append(MetricWindowClosed(
            event_id=eid(), occurred_at=ws + timedelta(minutes=1), tenant_id=TENANT, workflow_id=wf,
            payload={"scope": "workflow", "key": wf, "window_start": ws, "window_end": ws + timedelta(minutes=1),
                     "count": 1, "successes": 1, "failures": 0, "error_rate": 0.0, "throughput_per_s": 1 / 60},
        ))  # fmt: skip
    records.append(AnomalyDetected(
        event_id=eid(), occurred_at=START + timedelta(minutes=4), tenant_id=TENANT, workflow_id=wf,
        payload={"series": f"workflow:{wf}:latency_p95_ms", "scope": "workflow", "key": wf,
                 "metric": "latency_p95_ms", "value": 600.0, "score": 0.9, "explanation": "p95 600 ms",
                 "window_start": START + timedelta(minutes=3)},
    ))  # fmt: skip
    return records


@pytest.fixture(scope="module")
async def produced(api, producer):
    wf, quiet = f"wf-health-{uuid.uuid4().hex[:8]}", f"wf-quiet-{uuid.uuid4().hex[:8]}"
    batches = []
    for i in range(20):
        batches.append(run_events(wf, f"{wf}-base-{i}", BASELINE_START + timedelta(hours=1, minutes=i),
                                  version=1, task_ms=100.0))  # fmt: skip
        batches.append(run_events(quiet, f"{quiet}-{i}", BASELINE_START + timedelta(hours=2, minutes=i),
                                  version=1, task_ms=100.0))  # fmt: skip
        batches.append(run_events(wf, f"{wf}-v1-{i}", START + timedelta(minutes=i), version=1, task_ms=100.0))
        notify = "429" if i < 8 else "401" if i >= 17 else "ok"
        batches.append(run_events(wf, f"{wf}-v2-{i}", START + timedelta(minutes=30 + i), version=2, task_ms=400.0,
                                  notify=notify))  # fmt: skip
    records = [e for batch in batches for e in batch] + monitoring_events(wf)
    messages = Counter(topic for topic, _key, _value in await producer.pack(records))
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        for _ in range(2):  # the second time is a redelivery, in its own insert: every count must stay exact
            before = await positions(http)
            await producer.send(records)

            async def projected(before=before):
                now = await positions(http)
                return all(now.get(topic, 0) >= before.get(topic, 0) + n for topic, n in messages.items())

            await eventually(projected)
    return wf, quiet


async def positions(http) -> dict[str, int]:
    """Kafka messages the projector has written to ClickHouse, per topic."""
    r = await http.get("/api/workflows/monitoring/status", headers=auth(KEY))
    return {t["topic"]: t["position"] for t in r.json()["consumer_lag"]}


async def health(http, **params):
    r = await http.get("/api/workflows/monitoring/health", params=params, headers=auth(KEY))
    assert r.status_code == 200, r.text
    return r.json()


async def test_workflow_health_says_why(http, produced):
    wf, _ = produced

    async def scored():
        body = await health(http, scope="workflow", key=wf, **RANGE)
        subject = body["subjects"][0]
        components = {c["name"]: c for c in subject["components"]}
        done = (subject["score"] is not None and components["success_rate"]["value"] == 37 / 40
                and components["latency"]["value"] is not None and components["alerts"]["value"] == 1
                and (components["anomalies"]["value"] or 0) > 0)  # fmt: skip
        return (body, subject, components) if done else None

    body, subject, components = await eventually(scored, timeout_s=60)
    assert body["baseline_start"].startswith(BASELINE_START.isoformat()[:19])
    assert components["success_rate"]["explanation"] == "92.5% of runs succeeded (37 of 40)"
    assert components["success_rate"]["points_lost"] == pytest.approx(12.0)
    assert components["latency"]["value"] == pytest.approx(2.0)
    assert components["latency"]["explanation"] == "p95 600 ms is 2.00x the baseline p95 300 ms"
    assert components["alerts"]["explanation"] == "1 alert firing (1 high)"
    assert components["alerts"]["points_lost"] == 15.0
    assert [a["alert_id"] for a in subject["firing_alerts"]] == [f"{wf}-slow"]
    assert "had an anomaly" in components["anomalies"]["explanation"]
    assert subject["score"] == pytest.approx(round(100 - sum(c["points_lost"] for c in components.values()), 1))
    assert subject["score"] < 70 and subject["status"] == "unhealthy"


async def test_service_and_system_health_and_a_workflow_with_no_runs(http, produced):
    wf, quiet = produced

    async def slack():
        subjects = (await health(http, scope="service", key="slack", **RANGE))["subjects"]
        success = subjects[0]["components"][0]
        return subjects[0] if success["value"] is not None and success["explanation"].endswith("(37 of 48)") else None

    subject = await eventually(slack, timeout_s=60)
    assert subject["components"][0]["explanation"] == "77.1% of calls succeeded (37 of 48)"
    assert subject["components"][1]["value"] == pytest.approx(1.0)  # slack itself is as fast as the day before

    workflows = {s["key"]: s for s in (await health(http, scope="workflow", **RANGE))["subjects"]}
    assert workflows[wf]["score"] is not None
    assert workflows[quiet]["score"] is None and workflows[quiet]["status"] == "unknown"
    assert "no runs finished in the period" in workflows[quiet]["reason"]

    system = (await health(http, **RANGE))["subjects"]
    assert [s["key"] for s in system] == ["*"] and system[0]["score"] is not None
    assert system[0]["components"][0]["explanation"].endswith("(37 of 40)")


async def test_insights_name_the_429s_the_regression_and_the_rest(http, produced):
    wf, _ = produced

    async def found():
        r = await http.get("/api/workflows/monitoring/insights", params={**RANGE, "workflow": wf}, headers=auth(KEY))
        assert r.status_code == 200, r.text
        kinds = {i["kind"]: i for i in r.json()["insights"]}
        return kinds if len(kinds) == 5 and kinds["retries"]["evidence"]["runs_retried"] == 8 else None

    kinds = await eventually(found, timeout_s=60)
    assert kinds["rate_limited"]["message"] == (
        "service `slack` answers 429 on 17% of calls: lower concurrency or add backoff"
    )
    assert kinds["rate_limited"]["evidence"] == {"calls": 48, "rate_limited": 8, "share": 0.1667}
    regression = kinds["latency_regression"]
    assert regression["subject"] == {"workflow_id": wf, "step_id": "create-task", "service": None}
    assert "p95 quadrupled since definition v1 (100 ms -> 400 ms in v2)" in regression["message"]
    assert (regression["evidence"]["from_attempts"], regression["evidence"]["to_attempts"]) == (20, 20)
    assert kinds["permanent_errors"]["subject"]["step_id"] == "notify"
    assert kinds["permanent_errors"]["evidence"]["status_code"] == 401
    assert "credentials" in kinds["permanent_errors"]["message"]
    assert kinds["largest_share"]["subject"]["step_id"] == "create-task"
    assert kinds["largest_share"]["evidence"]["share"] == pytest.approx(10000 / 14400, abs=1e-4)
    assert kinds["retries"]["evidence"] == {"runs": 40, "runs_retried": 8, "share": 0.2}
    assert kinds["rate_limited"]["start"].startswith(START.isoformat()[:19])


@pytest.mark.parametrize(
    ("path", "params", "key", "code", "says"),
    [
        ("health", {"scope": "system", "key": "wf-1"}, KEY, 422, "scope=system has no key"),
        ("health", {"scope": "galaxy"}, KEY, 422, "scope"),
        ("health", {"start": "2026-01-02T00:00Z", "end": "2026-01-01T00:00Z"}, KEY, 422, "start must be before end"),
        ("health", {"start": "2026-01-01T00:00"}, KEY, 422, "start needs a zone"),
        ("health", {"baseline_start": "2026-01-02T00:00Z", "baseline_end": "2026-01-01T00:00Z"}, KEY, 422,
         "baseline_start must be before baseline_end"),
        ("health", {"start": "yesterday"}, KEY, 422, "start"),
        ("insights", {"start": "2025-01-01T00:00Z", "end": "2026-01-01T00:00Z"}, KEY, 422, "more than 90 days"),
        ("insights", {}, "key-op", 400, "operator key must say which tenant"),
        ("health", {"tenant": "tenant-b"}, KEY, 403, "own tenant"),
    ],
)  # fmt: skip
async def test_bad_requests_say_what_is_wrong(http, path, params, key, code, says):
    r = await http.get(f"/api/workflows/monitoring/{path}", params=params, headers=auth(key))
    assert r.status_code == code, r.text
    assert says in r.text


async def test_defaults_are_the_last_hour_against_the_day_before(http):
    body = await health(http)
    start, end = datetime.fromisoformat(body["start"]), datetime.fromisoformat(body["end"])
    assert end - start == timedelta(hours=1) and abs(datetime.now(UTC) - end) < timedelta(minutes=1)
    assert datetime.fromisoformat(body["baseline_end"]) == start
    assert start - datetime.fromisoformat(body["baseline_start"]) == timedelta(hours=24)
    r = await http.get("/api/workflows/monitoring/health", headers=auth("key-op"), params={"tenant": "tenant-b"})
    assert r.status_code == 200 and r.json()["tenant"] == "tenant-b"
