"""``flowledger bench recovery --faults FILE --runs N``: faults injected, sessions opened, runs repaired.

Starts its own broker, API (with the projector), sandbox (20 ms answers) and
workers (executor and monitor, as ``flowledger up`` runs them) with
``WORKFLOW_AUTO_RECOVERY_ENABLED=true``; defines three workflows over seven
catalog services (gmail, asana, slack, hubspot, google-sheets, stripe,
quickbooks), every step with an OAuth credential of its service (tokens from
the sandbox's token endpoint, stored through the API); sets the fault
schedule of FILE (the sandbox's format, times from the first run) and starts
``--runs`` runs at ``--rate`` per second, spread over the workflows. It waits
until every run has ended and nothing changed for ``QUIET_S``, then reads
every run event back from the log, every session from the API and the
faults each call met from the sandbox:

* ``runs_hit``: runs with a failed step attempt or a call refused with an
  expired token; ``recoverable_hit``: those whose failures were all
  transient (429, 5xx, timeout, and a 401 with a refreshable credential:
  an expired token), ``recovered``: those of them that succeeded in the end
  (by a refresh, the executor's retries or the engine's); ``recovery_rate``
  = recovered / recoverable_hit;
* ``false_resolutions``: runs a session declared recovered that did not
  succeed, plus runs hit only by permanent faults that the engine retried;
* ``rca_top1_accuracy``: sessions whose top cause names the failing service
  (when it names one) and the class of the fault injected on it;
* ``mttr_s_*``: session opened to resolution verified;
* ``token_refreshes``: access tokens the sandbox issued by the refresh
  grant; ``token_expired_refused``: calls it refused with an expired token.
"""

import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

from domain.error_classifier import classify
from domain.error_rules import TRANSIENT
from domain.faults import parse_schedule
from flowledger import progress
from flowledger.bench import percentile
from flowledger.bench_execution import LogReader
from flowledger.broker import EmbeddedBroker, ensure_topics, free_port
from flowledger.procs import flowledger_command, spawn, stack_env, terminate, wait_http

KEY, TENANT = "bench-key", "bench"
QUIET_S = 20.0
"""No run changed status for this long: the engine is done (longer than its probe backoff at these outages)."""


def _step(step_id: str, service: str, action: str, *needs: str) -> dict[str, Any]:
    return {"id": step_id, "service": service, "action": action, "needs": list(needs), "timeout_s": 2.0,
            "credential_id": credential_of(service)}  # fmt: skip


def credential_of(service: str) -> str:
    """Each service's OAuth credential (refreshable: a refresh token and the sandbox's token endpoint)."""
    return f"bench-{service}"


WORKFLOWS = {
    "triage": [
        _step("fetch", "gmail", "get_message"),
        _step("task", "asana", "create_task", "fetch"),
        _step("notify", "slack", "post_message", "task"),
    ],
    "leads": [
        _step("contact", "hubspot", "create_contact"),
        _step("announce", "slack", "post_message", "contact"),
        _step("log", "google-sheets", "append_row", "contact"),
    ],
    "billing": [
        _step("charge", "stripe", "get_charge"),
        _step("invoice", "quickbooks", "create_invoice", "charge"),
        _step("receipt", "gmail", "send_email", "invoice"),
    ],
}
FAULT_CLASS = {"429": "rate_limited", "500": "upstream_5xx", "503": "upstream_5xx", "timeout": "timeout",
               "401": "credentials", "token_expired": "credentials", "400": "bad_input",
               "404": "not_found"}  # fmt: skip
REFRESHABLE = "credentials_refreshable"
"""A 401 to a refreshable credential: an expired token, which a refresh repairs (transient, here)."""
RECOVERABLE = TRANSIENT | {REFRESHABLE}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def services() -> list[str]:
    return sorted({str(s["service"]) for steps in WORKFLOWS.values() for s in steps})


async def drive(api: str, sandbox: str, bootstrap: str, faults: list[dict[str, Any]], runs: int, rate: float
                ) -> dict[str, Any]:  # fmt: skip
    reader = LogReader(bootstrap)
    await reader.start()
    try:
        return await _drive(api, sandbox, reader, faults, runs, rate)
    finally:
        await reader.stop()


async def _drive(api: str, sandbox: str, reader: LogReader, faults: list[dict[str, Any]], runs: int, rate: float
                 ) -> dict[str, Any]:  # fmt: skip
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=30) as http:
        await _connect_accounts(http, sandbox)
        for name, steps in WORKFLOWS.items():
            body = {"id": name, "name": name, "trigger": {"service": "webhook", "event": "call"}, "steps": steps}
            (await http.post("/api/workflows", json=body)).raise_for_status()
        for name in WORKFLOWS:  # runs start from the projected definition
            while (await http.get(f"/api/workflows/{name}")).status_code != 200:
                await asyncio.sleep(0.2)
        say("warming up the workers (their consumer groups join) ...")
        warm = await _start(http, "triage")
        await reader.read_until({warm}, timeout_s=180)
        httpx.put(f"{sandbox}/_sandbox/faults", json=faults).raise_for_status()
        say(f"{runs} runs at {rate:g}/s with {len(faults)} fault entries ...")
        t0 = time.perf_counter()
        started: list[str] = []
        names = list(WORKFLOWS)
        for i in progress.bar("runs started", runs, "run", iterable=range(runs)):
            started.append(await _start(http, names[i % len(names)]))
            delay = t0 + (i + 1) / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await _settle(reader, set(started))
        sessions = (await http.get("/api/workflows/troubleshooting/sessions", params={"limit": 500})).json()
        timelines = {}
        for s in sessions["sessions"]:
            r = await http.get(f"/api/workflows/troubleshooting/sessions/{s['session_id']}")
            timelines[s["session_id"]] = r.json()["events"]
    stats = httpx.get(f"{sandbox}/_sandbox/stats").json()
    return score(started, reader.events, sessions["sessions"], timelines, faults, stats)


async def _connect_accounts(http: httpx.AsyncClient, sandbox: str) -> None:
    """An OAuth credential per service: the sandbox's tokens for it, stored through the API (the worker's store)."""
    token_url = f"{sandbox}/_sandbox/oauth/token"
    for service in services():
        form = {"grant_type": "authorization_code", "client_id": service, "code": "bench"}
        granted = httpx.post(token_url, data=form)  # the sandbox's, not the API's: without the API key
        granted.raise_for_status()
        pair = granted.json()
        secret = {"access_token": pair["access_token"], "refresh_token": pair["refresh_token"], "token_url": token_url}
        (await http.put(f"/api/credentials/{credential_of(service)}", json={"secret": secret})).raise_for_status()


async def _start(http: httpx.AsyncClient, workflow: str) -> str:
    run_id = f"rec-{uuid.uuid4().hex[:12]}"
    r = await http.post(f"/api/workflows/{workflow}/runs", json={"trigger": {}, "run_id": run_id})
    r.raise_for_status()
    return run_id


async def _settle(reader: LogReader, run_ids: set[str], timeout_s: float = 600.0) -> None:
    """Read the log until every run has ended and no run event arrived for ``QUIET_S``."""
    deadline = time.monotonic() + timeout_s
    last_change = time.monotonic()
    with progress.bar("runs ended", len(run_ids), "run") as shown:
        while time.monotonic() < deadline:
            if await reader.poll(500):
                last_change = time.monotonic()
            ended = sum(bool(_final(reader.events.get(r, []))) for r in run_ids)
            shown.update(ended - shown.n)
            if ended == len(run_ids) and time.monotonic() - last_change > QUIET_S:
                return
    raise RuntimeError("runs did not settle")


def _final(events: list[dict[str, Any]]) -> str | None:
    """The run's status after its last run-level event (a retried run may fail, then succeed)."""
    status = None
    for e in events:
        if e["type"] in ("RunSucceeded", "RunFailed", "RunCancelled"):
            status = e["type"]
        elif e["type"] == "RunResumed":
            status = None
    return status


def score(runs: list[str], events: dict[str, list[dict[str, Any]]], sessions: list[dict[str, Any]],
          timelines: dict[str, list[dict[str, Any]]], faults: list[dict[str, Any]], stats: dict[str, Any]
          ) -> dict[str, Any]:  # fmt: skip
    hit = recoverable = recovered = 0
    permanent_runs: set[str] = set()
    met = faults_met(stats.get("faults_by_key", {}))
    for run_id in runs:
        failures = [e["payload"] for e in events.get(run_id, []) if e["type"] == "StepFailed"]
        classes = run_classes(failures, met.get(run_id, set()))
        if not classes:
            continue
        hit += 1
        if classes <= RECOVERABLE:
            recoverable += 1
            recovered += _final(events[run_id]) == "RunSucceeded"
        else:
            permanent_runs.add(run_id)
    false = 0
    retried_by_engine: set[str] = set()
    mttr = []
    for timeline in timelines.values():
        for e in timeline:
            detail = e["payload"].get("detail", {})
            if e["type"] == "ResolutionApplied" and detail.get("run_id"):
                retried_by_engine.add(detail["run_id"])
            if e["type"] == "ResolutionVerified":
                mttr.append(detail["mttr_s"])
                false += sum(_final(events.get(r, [])) != "RunSucceeded" for r in detail.get("recovered", []))
    false += len(permanent_runs & retried_by_engine)
    injected = {(f["service"], FAULT_CLASS[f["fault"]]) for f in faults}
    correct = judged = 0
    for s in sessions:
        opened = next((e for e in timelines[s["session_id"]] if e["type"] == "SessionOpened"), None)
        if opened is None or s["top_cause"] is None:
            continue
        service = opened["payload"]["detail"].get("service")
        judged += 1
        top = s["top_cause"]["evidence"]
        names = top.get("subject", {}).get("service", service)
        cls = top.get("error_class")
        right = names == service and ((service, cls) in injected or ("*", cls) in injected)
        correct += right
        say(
            f"session {s['session_id']} on {service}: top cause {s['top_cause']['cause']} ({names}, {cls}) "
            f"{'right' if right else 'WRONG'}; {s['status']}"
        )
        if not right:
            for e in timelines[s["session_id"]]:
                say(f"   {e['type']} {str(e['payload'].get('detail'))[:300]}")
    return {
        "bench": "recovery",
        "runs": len(runs),
        "runs_hit": hit,
        "recoverable_hit": recoverable,
        "recovered": recovered,
        "recovery_rate": round(recovered / recoverable, 4) if recoverable else None,
        "false_resolutions": false,
        "rca_top1_accuracy": round(correct / judged, 4) if judged else None,
        "sessions": judged,
        "mttr_s_p50": round(statistics.median(mttr), 2) if mttr else None,
        "mttr_s_p95": round(percentile(mttr, 0.95), 2) if mttr else None,
        "token_refreshes": stats.get("tokens", {}).get("refreshed", 0),
        "token_expired_refused": stats.get("faults_injected", {}).get("token_expired", 0),
        "services": services(),
    }


def faults_met(faults_by_key: dict[str, dict[str, int]]) -> dict[str, set[str]]:
    """Run id -> the faults the sandbox answered its calls with (keys are ``tenant:run:step:attempt``)."""
    met: dict[str, set[str]] = {}
    for key, faults in faults_by_key.items():
        parts = key.split(":")
        if len(parts) == 4:
            met.setdefault(parts[1], set()).update(faults)
    return met


def run_classes(failures: list[dict[str, Any]], met: set[str]) -> set[str]:
    """The failure classes of a run: of its failed attempts, and ``REFRESHABLE`` for an expired token it met.

    A 401 to a refreshable credential is ``REFRESHABLE`` unless the token
    endpoint refused the refresh (``CredentialRefreshFailed``): then a person
    must reconnect it, as for any other credentials failure.
    """
    classes = {_class(payload) for payload in failures}
    return classes | ({REFRESHABLE} if "token_expired" in met else set())


def _class(payload: dict[str, Any]) -> str:
    error = payload["error"]
    found = classify(error.get("message", ""), status_code=error.get("status_code"),
                     error_type=error.get("type")).error_class  # fmt: skip
    refreshable = payload.get("credential_id") in {credential_of(service) for service in services()}
    if found == "credentials" and error.get("status_code") == 401 and refreshable:
        return "credentials" if error.get("type") == "CredentialRefreshFailed" else REFRESHABLE
    return found


def bench_recovery(*, faults_file: Path, runs: int, rate: float) -> int:
    try:
        faults = json.loads(faults_file.read_text())
        parse_schedule(faults)
    except (OSError, ValueError) as exc:
        say(f"bench recovery: {faults_file}: {exc}")
        return 2
    with tempfile.TemporaryDirectory(prefix="flowledger-bench-recovery-") as tmp, EmbeddedBroker() as broker:
        asyncio.run(ensure_topics(broker.bootstrap))
        tmp_path = Path(tmp)
        sandbox_port, api_port = free_port(), free_port()
        env = stack_env(
            broker.bootstrap, tmp, api_port, f"{KEY}={TENANT}",
            FLOWLEDGER_SERVICE_BASE_URL=f"http://127.0.0.1:{sandbox_port}",
            WORKFLOW_AUTO_RECOVERY_ENABLED="true", FLOWLEDGER_RECOVERY_PROBE_S="1",
        )  # fmt: skip
        procs = {
            "sandbox": spawn(flowledger_command("sandbox", "--port", str(sandbox_port), "--latency", "fixed:20",
                                                "--seed", "7"), env, log=tmp_path / "sandbox.log"),
            "serve": spawn(flowledger_command("serve"), env, log=tmp_path / "serve.log"),
        }  # fmt: skip
        for role in ("executor", "monitor"):
            procs[role] = spawn(flowledger_command("worker", "--role", role), env, log=tmp_path / f"{role}.log")
        try:
            sandbox = f"http://127.0.0.1:{sandbox_port}"
            wait_http(f"{sandbox}/_sandbox/stats", 60, procs)
            wait_http(f"http://127.0.0.1:{api_port}/healthz", 60, procs)
            result = asyncio.run(drive(f"http://127.0.0.1:{api_port}", sandbox, broker.bootstrap, faults, runs, rate))
        except RuntimeError as exc:
            say(f"bench recovery: {exc}; monitor log: {(tmp_path / 'monitor.log').read_text()[-3000:]}")
            return 1
        finally:
            for proc in procs.values():
                terminate(proc)
    print(orjson.dumps(result).decode(), flush=True)
    return 0
