"""Alert rules, silences and backtests through the API, on the real broker and ClickHouse."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from domain.alerting import AlertState, evaluate, rule_from_spec
from projections import alert_queries
from projections.projector import flush
from projections.slicing import LogRecord, project_slice
from schemas.monitoring import (
    AlertFired,
    AlertNotified,
    AlertResolved,
    AlertRuleDefined,
    AlertRuleDeleted,
    AlertRuleSpec,
)
from schemas.registry import encode
from schemas.runs import RunFailed, RunSucceeded
from tests.integration.conftest import auth, eventually

pytestmark = pytest.mark.integration

KEY = auth("key-b")
BASE = "/api/workflows/monitoring"


async def test_rules_are_listed_defined_versioned_and_deleted(http):
    rules = (await http.get(f"{BASE}/rules", headers=KEY)).json()["rules"]
    builtin = {r["rule"]["name"]: r for r in rules if r["builtin"]}
    assert builtin["error_rate_increase"]["rule"]["condition"] == "error_rate > 0.1"
    assert builtin["performance_degradation"]["rule"]["severity"] == "high"

    name = f"slow-{uuid.uuid4().hex[:6]}"
    bad = await http.post(f"{BASE}/rules", json={"name": name, "condition": "p95 > 1"}, headers=KEY)
    assert bad.status_code == 422 and "unknown metric" in bad.text
    hook = {"name": name, "condition": "error_rate > 0.2", "channels": [{"type": "webhook"}]}
    assert (await http.post(f"{BASE}/rules", json=hook, headers=KEY)).status_code == 422
    too_long = await http.post(f"{BASE}/rules", json={"name": name, "condition": "error_rate > 0.2",
                                                       "range_s": 86400}, headers=KEY)  # fmt: skip
    assert too_long.status_code == 422 and "range_s must be between" in too_long.text
    templated = {"name": name, "condition": "error_rate > 0.2", "annotations": {"summary": "{{ $value | upper }}"}}
    bad_template = await http.post(f"{BASE}/rules", json=templated, headers=KEY)
    assert bad_template.status_code == 422 and "annotation 'summary'" in bad_template.text

    spec = {"name": name, "condition": "latency_p95_ms > 3 x baseline", "scope": "step", "for_s": 120}
    created = await http.post(f"{BASE}/rules", json=spec, headers=KEY)
    assert created.status_code == 201 and created.json()["version"] == 1

    async def listed():
        rules = (await http.get(f"{BASE}/rules", headers=KEY)).json()["rules"]
        return next((r for r in rules if r["rule"]["name"] == name), None)

    assert (await eventually(listed))["rule"]["for_s"] == 120
    assert (await http.post(f"{BASE}/rules", json=spec, headers=KEY)).status_code == 409
    changed = await http.put(f"{BASE}/rules/{name}", json={**spec, "for_s": 300}, headers=KEY)
    assert changed.json()["version"] == 2
    assert (await http.put(f"{BASE}/rules/other", json=spec, headers=KEY)).status_code == 422

    async def version_2():
        rule = await listed()
        return rule and rule["version"] == 2 and rule["rule"]["for_s"] == 300

    await eventually(version_2)
    assert (await http.get(f"{BASE}/rules", headers=auth("key-a"))).json()["rules"] != (
        await http.get(f"{BASE}/rules", headers=KEY)
    ).json()["rules"]  # another tenant does not see it
    assert (await http.delete(f"{BASE}/rules/{name}", headers=KEY)).status_code == 204

    async def gone():
        return await listed() is None

    await eventually(gone)
    assert (await http.delete(f"{BASE}/rules/{name}", headers=KEY)).status_code == 404


async def test_a_rule_reads_back_at_once_and_counts_its_versions_on_after_a_deletion(http):
    """Each call acts on what the calls before it did, however far the projector lags."""
    name = f"quick-{uuid.uuid4().hex[:6]}"
    spec = {"name": name, "condition": "error_rate > 0.3"}

    async def listed():
        rules = (await http.get(f"{BASE}/rules", headers=KEY)).json()["rules"]
        return next((r for r in rules if r["rule"]["name"] == name), None)

    assert (await http.post(f"{BASE}/rules", json=spec, headers=KEY)).json()["version"] == 1
    assert (await listed())["version"] == 1
    assert (await http.post(f"{BASE}/rules", json=spec, headers=KEY)).status_code == 409
    assert (await http.delete(f"{BASE}/rules/{name}", headers=KEY)).status_code == 204
    assert await listed() is None
    assert (await http.delete(f"{BASE}/rules/{name}", headers=KEY)).status_code == 404
    again = await http.post(f"{BASE}/rules", json={**spec, "for_s": 60}, headers=KEY)
    assert again.status_code == 201 and again.json()["version"] == 2
    assert (await listed())["rule"]["for_s"] == 60


def test_the_warehouse_keeps_a_deleted_rules_last_version(warehouse):
    tenant, at = f"rules-{uuid.uuid4().hex[:6]}", datetime.now(UTC)

    def defined(version: int, seconds: int) -> AlertRuleDefined:
        return AlertRuleDefined(
            event_id=str(uuid.uuid4()), occurred_at=at + timedelta(seconds=seconds), tenant_id=tenant,
            workflow_id="monitoring",
            payload={"rule": {"name": "r", "condition": "error_rate > 0.2"}, "version": version},
        )  # fmt: skip

    deleted = AlertRuleDeleted(event_id=str(uuid.uuid4()), occurred_at=at + timedelta(seconds=3), tenant_id=tenant,
                               workflow_id="monitoring", payload={"name": "r"})  # fmt: skip
    log = [LogRecord("alert-control", 0, 0, encode([defined(1, 1), defined(2, 2), deleted]))]
    flush(warehouse, project_slice(log, now=datetime.now(UTC)).batch)
    [row] = alert_queries.rules(warehouse, tenant)
    assert (row["name"], row["deleted"], row["spec"], row["last_version"]) == ("r", True, None, 2)
    assert row["updated_at"] == (at + timedelta(seconds=3)).replace(microsecond=at.microsecond // 1000 * 1000)


@pytest.mark.parametrize(
    ("after", "waits"),
    [
        ((), True),
        ((("notified", "webhook", True),), False),  # told with its group
        ((("notified", "webhook", False),), False),  # told, and the delivery failed: failed_deliveries says so
        ((("notified", "muted", False),), False),  # inhibited meanwhile: `muted` says why
        ((("resolved", "", False),), False),
    ],
)
def test_a_firing_alert_waits_for_its_group_until_it_is_told_muted_or_resolved(warehouse, after, waits):
    tenant, at = f"wait-{uuid.uuid4().hex[:6]}", datetime.now(UTC).replace(microsecond=0)
    alert = {"alert_id": "a-1", "rule": "r", "severity": "high", "started_at": at}
    common = {"tenant_id": tenant, "workflow_id": "wf"}
    until = at + timedelta(seconds=30)
    events = [
        AlertFired(event_id=str(uuid.uuid4()), occurred_at=at, payload=alert, **common),
        AlertNotified(event_id=str(uuid.uuid4()), occurred_at=at + timedelta(seconds=1), **common,
                      payload={**alert, "channel": "waiting", "delivered": False, "detail": until.isoformat()}),
    ]  # fmt: skip
    for i, (kind, channel, delivered) in enumerate(after, start=2):
        occurred_at = at + timedelta(seconds=i)
        if kind == "resolved":
            events.append(AlertResolved(event_id=str(uuid.uuid4()), occurred_at=occurred_at, payload=alert, **common))
        else:
            payload = {**alert, "channel": channel, "delivered": delivered, "detail": "inhibited:a-0"}
            events.append(AlertNotified(event_id=str(uuid.uuid4()), occurred_at=occurred_at, payload=payload, **common))
    flush(warehouse, project_slice([LogRecord("alerts", 0, 0, encode(events))], now=datetime.now(UTC)).batch)
    [row] = alert_queries.list_alerts(warehouse, tenant, state="", severity="", rule="", since=at, limit=10)
    assert row["notify_after"] == (until if waits else None)
    assert row["failed_deliveries"] == sum(1 for _, c, d in after if c == "webhook" and not d)


async def test_routes_are_replaced_as_a_whole_and_versioned(http):
    key = auth("key-routes")  # a tenant of its own: its routes start empty
    assert (await http.get(f"{BASE}/routes", headers=key)).json() == {"routes": [], "version": 0, "updated_at": None}
    routes = [{"matchers": {"severity": "critical"}, "channels": [{"type": "email", "to": ["oncall@example.com"]}],
               "continue_matching": True},
              {"matchers": {}, "channels": [{"type": "log"}]}]  # fmt: skip
    put = await http.put(f"{BASE}/routes", json={"routes": routes}, headers=key)
    assert put.status_code == 200 and put.json()["version"] == 1

    async def stored(version: int):
        got = (await http.get(f"{BASE}/routes", headers=key)).json()
        return got if got["version"] == version else None

    got = await eventually(lambda: stored(1))
    assert [r["matchers"] for r in got["routes"]] == [{"severity": "critical"}, {}]
    assert got["routes"][0]["continue_matching"] is True and got["routes"][1]["continue_matching"] is False
    no_url = [{"matchers": {}, "channels": [{"type": "webhook"}]}]
    refused = await http.put(f"{BASE}/routes", json={"routes": no_url}, headers=key)
    assert refused.status_code == 422 and "routes[0]: a webhook channel names" in refused.text
    no_channel = await http.put(f"{BASE}/routes", json={"routes": [{"matchers": {}, "channels": []}]}, headers=key)
    assert no_channel.status_code == 422
    assert (await http.put(f"{BASE}/routes", json={"routes": []}, headers=key)).json()["version"] == 2
    assert (await eventually(lambda: stored(2)))["routes"] == []


async def test_silences_are_created_and_listed_until_they_expire(http):
    body = {"matchers": {"workflow": "billing-*"}, "duration_s": 3600, "comment": "maintenance"}
    created = await http.post(f"{BASE}/silences", json=body, headers=KEY)
    assert created.status_code == 201
    silence_id = created.json()["silence_id"]

    async def listed():
        silences = (await http.get(f"{BASE}/silences", headers=KEY)).json()["silences"]
        return [s for s in silences if s["silence_id"] == silence_id]

    [silence] = await eventually(listed)
    assert silence["matchers"] == {"workflow": "billing-*"} and silence["comment"] == "maintenance"
    assert silence["state"] == "active" and silence["expired_at"] is None
    assert (await http.post(f"{BASE}/silences", json={"matchers": {}, "duration_s": 5}, headers=KEY)).status_code == 422
    later = {**body, "starts_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    pending_id = (await http.post(f"{BASE}/silences", json=later, headers=KEY)).json()["silence_id"]

    async def pending():
        silences = (await http.get(f"{BASE}/silences", headers=KEY)).json()["silences"]
        return [s for s in silences if s["silence_id"] == pending_id]

    assert [s["state"] for s in await eventually(pending)] == ["pending"]


async def test_a_silence_expired_by_hand_ends_and_stays_in_the_history(http):
    body = {"matchers": {"workflow": "payroll-*"}, "duration_s": 3600, "created_by": "ana"}
    silence_id = (await http.post(f"{BASE}/silences", json=body, headers=KEY)).json()["silence_id"]

    async def find(**params):
        silences = (await http.get(f"{BASE}/silences", params=params, headers=KEY)).json()["silences"]
        return [s for s in silences if s["silence_id"] == silence_id]

    await eventually(find)
    assert (await http.delete(f"{BASE}/silences/{silence_id}", headers=auth("key-a"))).status_code == 404  # tenant
    expired = await http.delete(f"{BASE}/silences/{silence_id}", params={"expired_by": "bo"}, headers=KEY)
    assert expired.status_code == 200
    assert (expired.json()["state"], expired.json()["expired_by"]) == ("expired", "bo")

    async def gone():
        return await find() == []

    await eventually(gone)
    [kept] = await find(include_expired="true")
    assert (kept["state"], kept["expired_by"], kept["created_by"]) == ("expired", "bo", "ana")
    assert kept["ends_at"] == kept["expired_at"] and kept["matchers"] == {"workflow": "payroll-*"}
    # ended at once, before the projection has it: the API remembers the silences it created
    quick = (await http.post(f"{BASE}/silences", json=body, headers=KEY)).json()["silence_id"]
    assert (await http.delete(f"{BASE}/silences/{quick}", headers=KEY)).status_code == 200
    again = await http.delete(f"{BASE}/silences/{silence_id}", headers=KEY)
    assert again.status_code == 409 and "ended at" in again.json()["detail"]
    assert (await http.delete(f"{BASE}/silences/silence-nope", headers=KEY)).status_code == 404
    assert (await http.delete(f"{BASE}/silences/bad%20id", headers=KEY)).status_code == 422


def run_result(workflow: str, at: float, *, ok: bool):
    ids = {"event_id": str(uuid.uuid4()), "occurred_at": datetime.fromtimestamp(at, UTC), "tenant_id": "tenant-b",
           "workflow_id": workflow, "run_id": f"r-{uuid.uuid4().hex[:10]}"}  # fmt: skip
    return RunSucceeded(**ids, payload={"duration_ms": 80.0}) if ok else RunFailed(**ids, payload={"duration_ms": 80.0})


@pytest.mark.parametrize(
    ("range_s", "fired_after_s", "notifications"),
    [
        (None, 373, 3),  # the metric window (60 s): 3rd failure at 312.5 s, held 60 s; firing 373 .. 703 s
        (20, 361, 3),  # its own 20 s range: 1st failure at 300.5 s, so above 0.1 from 301 s, held 60 s
    ],
)
async def test_backtest_rebuilds_rolling_windows_from_stored_runs(
    http, producer, range_s, fired_after_s, notifications
):
    """A run every 3 s for 20 minutes; minutes 5 to 11 every other run fails. Expected: a brute-force oracle."""
    workflow = f"wf-bt-{uuid.uuid4().hex[:6]}"
    t0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp()
    runs = [(t0 + 0.5 + 3 * k, not (100 <= k < 220 and k % 2 == 0)) for k in range(400)]
    await producer.send([run_result(workflow, at, ok=ok) for at, ok in runs])

    spec = {"name": "errors", "condition": "error_rate > 0.1", "match": workflow, "for_s": 60, "cooldown_s": 120,
            "range_s": range_s}  # fmt: skip
    body = {"rule": spec, "start": datetime.fromtimestamp(t0, UTC).isoformat(),
            "end": datetime.fromtimestamp(t0 + 1200, UTC).isoformat()}  # fmt: skip

    async def replayed():
        r = await http.post(f"{BASE}/rules/backtest", json=body, headers=KEY)
        assert r.status_code == 200, r.text
        return r.json() if r.json()["alerts"] and r.json()["alerts"][-1]["resolved_at"] else None

    result = await eventually(replayed)
    rule, state, oracle = rule_from_spec(AlertRuleSpec.model_validate(spec)), AlertState(), []
    for tick in range(int(t0) + 1, int(t0) + 1200):
        span = range_s or 60
        inside = [ok for at, ok in runs if tick - span <= at < tick]
        rate = inside.count(False) / len(inside) if inside else 0.0
        oracle.append((tick, evaluate(rule, state, value=rate, at=tick, learn=tick % span == 0)))
    fired = [datetime.fromtimestamp(at, UTC) for at, t in oracle if t == "fired"]
    resolved = [datetime.fromtimestamp(at, UTC) for at, t in oracle if t == "resolved"]
    got = [(datetime.fromisoformat(a["fired_at"]), datetime.fromisoformat(a["resolved_at"])) for a in result["alerts"]]
    assert got == list(zip(fired, resolved, strict=True)) and len(got) == 1
    assert got[0][0] - datetime.fromtimestamp(t0, UTC) == timedelta(seconds=fired_after_s)
    assert result["alerts"][0]["notifications"] == notifications  # one per 2-minute cooldown
    anomaly = {**body, "rule": {**spec, "condition": "anomaly_score > 0.9"}}
    assert (await http.post(f"{BASE}/rules/backtest", json=anomaly, headers=KEY)).status_code == 422
