"""The dashboard as a person sees it: headless Chromium on `/` of the demo stack, checked against the API."""

import fnmatch
import re
import time
import uuid

import httpx
import pytest

from flowledger.bench_dashboard import (
    OUTAGE_SERVICE,
    key_script,
    load_timings,
    outage_session,
    produce_failing_run,
    seen_latency_ms,
)
from tests.browser.conftest import ARTIFACTS, PageLog, record

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
"""The first test's setup may install Chromium from apt and starts the stack: more than the suite's 300 s default."""
WAIT_MS = 30_000
SENTENCE = "When I get important emails, create asana tasks and notify slack"


@pytest.fixture
def http(stack):
    with httpx.Client(base_url=stack.url, headers=stack.headers, timeout=10) as client:
        yield client


def eventually(check, timeout_s=30.0, every_s=0.3):
    deadline = time.monotonic() + timeout_s
    while True:
        last = check()
        if last or time.monotonic() > deadline:
            return last
        time.sleep(every_s)


def test_the_key_typed_once_is_kept_and_the_page_shows_the_demo_data(context, stack, page_log):
    page = context.new_page()
    log = PageLog(page)
    page_log.append(log)
    page.goto(stack.url)
    page.wait_for_selector("[data-testid=api-key]", timeout=WAIT_MS)
    assert page.get_attribute("body", "data-ready") != "true"
    page.fill("[data-testid=api-key]", stack.key)
    page.click("[data-testid=api-key-save]")
    page.wait_for_selector("body[data-ready=true]", timeout=WAIT_MS)
    assert page.evaluate("() => localStorage.getItem('flowledger.apiKey')") == stack.key
    assert stack.key not in " ".join(r for r in page.evaluate("() => performance.getEntries().map(e => e.name)"))

    page.wait_for_selector("[data-testid=live-status][data-state=live]", timeout=WAIT_MS)
    score = page.inner_text("[data-testid=health-system]")
    assert re.search(r"\b(100|[1-9]?[0-9])(\.\d+)?\b", score), score
    workflows = {
        row.get_attribute("data-workflow-id") for row in page.query_selector_all("[data-testid=health-workflow]")
    }
    assert {"new-lead-enrichment", "deploy-announcement", "important-email-to-asana"} & workflows, workflows
    for panel in ("chart-throughput", "chart-error-rate", "chart-latency", "runs", "alerts", "sessions",
                  "optimizations", "generate-input", "generate-submit"):  # fmt: skip
        assert page.is_visible(f"[data-testid={panel}]"), panel
    rows = page.query_selector_all("[data-testid=runs] [data-testid=run-row]")
    assert rows, "no run rows"
    statuses = {row.get_attribute("data-status") for row in rows}
    assert statuses <= {"running", "succeeded", "failed", "cancelled", "pending", "waiting", "paused"}, statuses
    assert not page.is_visible("[data-testid=error-banner]")

    page.reload()  # the key is kept: no form again
    page.wait_for_selector("body[data-ready=true]", timeout=WAIT_MS)
    assert not page.is_visible("[data-testid=api-key]")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "overview.png"))
    page.close()


def test_first_paint_and_ready_times_are_recorded(dashboard):
    timing = load_timings(dashboard)
    assert timing["first_paint_ms"] is not None and timing["ready_ms"] is not None, timing
    record("first_contentful_paint_ms", round(timing["first_paint_ms"], 1))
    record("ready_ms", round(timing["ready_ms"], 1))


def test_a_failing_run_produced_now_appears_as_failed_without_reload(dashboard, http):
    dashboard.evaluate("() => { window.__notReloaded = true; }")
    run_id, sent_ms = produce_failing_run(http, f"browser-live-{uuid.uuid4().hex[:6]}")
    latency = seen_latency_ms(dashboard, run_id, sent_ms, timeout_ms=WAIT_MS)
    row = f"[data-testid=run-row][data-run-id='{run_id}']"
    dashboard.wait_for_selector(f"{row}[data-status=failed]", timeout=WAIT_MS)
    assert dashboard.evaluate("() => window.__notReloaded") is True
    order = dashboard.eval_on_selector_all(
        "[data-testid=runs] [data-testid=run-row]", "rows => rows.map(r => [r.dataset.runId, Number(r.dataset.seenAt)])"
    )
    ours = [r for r, _ in order].index(run_id)
    assert all(seen >= order[ours][1] for _, seen in order[:ours]), order  # newest first: only later rows above it
    assert len(order) > ours + 1, order  # the rows that were there before stay below it
    record("live_update_ms", round(latency, 1))


def test_an_alert_raised_by_hand_is_silenced_and_unsilenced_from_the_page(dashboard, http):
    alert_id = f"browser-{uuid.uuid4().hex[:8]}"
    labels = {"workflow": "deploy-announcement", "source": "browser-test", "check": alert_id}
    body = {"alert_id": alert_id, "rule": "manual", "severity": "high", "labels": labels,
            "annotations": {"summary": "raised by hand"}}  # fmt: skip
    assert http.post("/api/workflows/monitoring/alerts", json=body).status_code == 202
    row = f"[data-testid=alert-row][data-alert-id='{alert_id}']"
    dashboard.wait_for_selector(row, timeout=WAIT_MS)
    dashboard.locator(f"{row} [data-testid=alert-silence]").click()
    dashboard.wait_for_selector(
        f"[data-testid=alert-row][data-alert-id='{alert_id}'][data-silenced=true]", timeout=WAIT_MS
    )

    matched = {**labels, "rule": body["rule"]}  # what a silence's matchers are matched against

    def mutes(silence):
        return all(fnmatch.fnmatchcase(matched.get(k, ""), glob) for k, glob in silence["matchers"].items())

    def silenced():
        return [s for s in http.get("/api/workflows/monitoring/silences").json()["silences"] if mutes(s)]

    found = eventually(silenced)
    assert found, http.get("/api/workflows/monitoring/silences").text
    assert not dashboard.is_visible("[data-testid=error-banner]")

    button = dashboard.locator(f"{row} [data-testid=alert-silence]")
    assert button.text_content() == "Unsilence"
    button.click()  # ends the silence: the alert is notified again
    dashboard.wait_for_selector(f"{row}:not([data-silenced=true])", timeout=WAIT_MS)
    assert button.text_content() == "Silence 1h"
    assert eventually(lambda: not silenced()), http.get("/api/workflows/monitoring/silences").text
    history = http.get("/api/workflows/monitoring/silences", params={"include_expired": "true"}).json()["silences"]
    ended = [s for s in history if s["silence_id"] in {f["silence_id"] for f in found}]
    assert [(s["state"], s["expired_by"]) for s in ended] == [("expired", "dashboard")]


def test_an_inhibited_alert_says_which_alert_explains_it(dashboard, http):
    service = f"browser-svc-{uuid.uuid4().hex[:6]}"
    outage = {"alert_id": f"{service}-down", "rule": "service_down", "severity": "critical",
              "labels": {"scope": "service", "service": service}}
    workflow = {"alert_id": f"{service}-wf", "rule": "runs_failing", "severity": "high",
                "labels": {"scope": "workflow", "workflow": "browser-wf", "services": service}}  # fmt: skip
    for body in (outage, workflow):
        assert http.post("/api/workflows/monitoring/alerts", json=body).status_code == 202
    muted = f"[data-testid=alert-row][data-alert-id='{workflow['alert_id']}'] [data-testid=alert-muted]"
    dashboard.wait_for_selector(muted, timeout=WAIT_MS)
    assert dashboard.locator(muted).text_content() == (
        f"not notified: explained by service_down ({service}), which is firing"
    )
    outage_row = f"[data-testid=alert-row][data-alert-id='{outage['alert_id']}']"
    assert dashboard.locator(f"{outage_row} [data-testid=alert-muted]").count() == 0


def test_an_alert_waiting_for_its_group_says_when_it_is_told(dashboard, http):
    workflow = f"browser-wait-{uuid.uuid4().hex[:6]}"
    rule = {"name": f"{workflow}-failing", "scope": "workflow", "match": workflow, "condition": "failures > 0",
            "range_s": 60, "group_wait_s": 600}  # fmt: skip
    assert http.post("/api/workflows/monitoring/rules", json=rule).status_code == 201
    time.sleep(2)  # the rule reaches the agent before the failure
    produce_failing_run(http, workflow)
    waiting = "[data-testid=alert-row] [data-testid=alert-waiting]"
    dashboard.wait_for_selector(waiting, timeout=WAIT_MS)
    [alert] = http.get("/api/workflows/monitoring/alerts", params={"rule": rule["name"]}).json()["alerts"]
    assert alert["state"] == "firing" and alert["notifications"] == 0 and alert["notify_after"]
    text = dashboard.locator(f"[data-alert-id='{alert['alert_id']}'] [data-testid=alert-waiting]").text_content()
    assert re.fullmatch(r"not notified yet: its group is told in \d+ s", text or ""), text
    assert 500 < int(re.findall(r"\d+", text or "")[0]) <= 600


def test_an_alert_acknowledged_from_the_page_is_acknowledged_in_the_api(dashboard, http):
    alert_id = f"browser-ack-{uuid.uuid4().hex[:8]}"
    body = {"alert_id": alert_id, "rule": "manual", "severity": "medium", "labels": {"check": alert_id}}
    assert http.post("/api/workflows/monitoring/alerts", json=body).status_code == 202
    row = f"[data-testid=alert-row][data-alert-id='{alert_id}']"
    dashboard.wait_for_selector(row, timeout=WAIT_MS)
    dashboard.locator(f"{row} [data-testid=alert-ack]").click()
    dashboard.wait_for_selector(f"{row}[data-acked=true]", timeout=WAIT_MS)

    def acknowledged():
        alerts = http.get("/api/workflows/monitoring/alerts", params={"status": "firing"}).json()["alerts"]
        return [a for a in alerts if a["alert_id"] == alert_id and a.get("acknowledged_at")]

    assert eventually(acknowledged), http.get("/api/workflows/monitoring/alerts").text


def test_a_refused_key_brings_the_key_form_back(context, stack, page_log):
    context.add_init_script(key_script("fl_wrong_" + uuid.uuid4().hex))
    page = context.new_page()
    log = PageLog(page, refused=True)
    page_log.append(log)
    page.goto(stack.url)
    page.wait_for_selector("[data-testid=api-key]", timeout=WAIT_MS)
    assert page.get_attribute("body", "data-ready") != "true"
    assert log.refusals, "the form came back without the API refusing the key"
    page.close()


def test_a_generated_workflow_shows_its_steps_and_is_defined(dashboard, http):
    dashboard.fill("[data-testid=generate-input]", SENTENCE)
    dashboard.click("[data-testid=generate-submit]")
    dashboard.wait_for_selector("[data-testid=generate-result] [data-testid=generated-step]", timeout=WAIT_MS)
    steps = dashboard.inner_text("[data-testid=generate-result]").lower()
    assert "asana" in steps and "slack" in steps, steps
    assert len(dashboard.query_selector_all("[data-testid=generated-step]")) == 2
    dashboard.click("[data-testid=generate-define]")
    result = dashboard.wait_for_selector("[data-testid=define-result][data-workflow-id]", timeout=WAIT_MS)
    workflow_id = result.get_attribute("data-workflow-id")
    assert workflow_id
    defined = eventually(lambda: http.get(f"/api/workflows/{workflow_id}").status_code == 200)
    assert defined, f"{workflow_id} is not defined"
    services = sorted(s["service"] for s in http.get(f"/api/workflows/{workflow_id}").json()["definition"]["steps"])
    assert services == ["asana", "slack"]


def test_clicking_a_run_shows_its_gantt_timeline(dashboard, http):
    row = dashboard.wait_for_selector(
        "[data-testid=run-row][data-workflow-id=deploy-announcement][data-status=succeeded]", timeout=60_000
    )
    run_id = row.get_attribute("data-run-id")
    # by locator, not the handle: live updates may redraw the row between finding it and the click
    dashboard.locator(f"[data-testid=run-row][data-run-id='{run_id}']").click()
    dashboard.wait_for_selector("[data-testid=run-timeline] [data-testid=gantt-bar]", timeout=WAIT_MS)
    bars = dashboard.query_selector_all("[data-testid=run-timeline] [data-testid=gantt-bar]")
    shown = {(b.get_attribute("data-step-id"), b.get_attribute("data-attempt"), b.get_attribute("data-status"))
             for b in bars}  # fmt: skip
    run = http.get(f"/api/runs/{run_id}").json()
    attempts: dict[str, dict[int, str]] = {}
    for step_id, attempt, status in shown:
        attempts.setdefault(step_id, {})[int(attempt)] = status
    assert set(attempts) == {s["step_id"] for s in run["steps"]}, (shown, run["steps"])
    for step in run["steps"]:  # one bar per attempt, retries included; the last one has the step's status
        assert sorted(attempts[step["step_id"]]) == list(range(1, step["attempts"] + 1)), (step, shown)
        assert attempts[step["step_id"]][step["attempts"]] == step["status"], (step, shown)
    tops = {b.get_attribute("data-step-id"): b.bounding_box()["y"] for b in bars}
    assert len({tops["chat"], tops["ticket"], tops["marker"]}) == 3, tops  # parallel branches: separate lanes
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    dashboard.locator("[data-testid=run-timeline]").screenshot(path=str(ARTIFACTS / "run-timeline.png"))


def test_a_sandbox_outage_opens_a_session_whose_evidence_the_page_shows(dashboard, http, stack):
    service = OUTAGE_SERVICE
    session_id = outage_session(stack, http)
    row = f"[data-testid=session-row][data-session-id='{session_id}']"
    dashboard.wait_for_selector(row, timeout=WAIT_MS)
    dashboard.locator(row).click()
    detail = dashboard.wait_for_selector("[data-testid=session-detail]", timeout=WAIT_MS)
    dashboard.wait_for_function(
        "s => document.querySelector('[data-testid=session-detail]').innerText.includes(s)", arg=service,
        timeout=WAIT_MS,
    )  # fmt: skip
    text = detail.inner_text()
    assert "503" in text, text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    detail.screenshot(path=str(ARTIFACTS / "troubleshooting-session.png"))
