"""``flowledger bench optimization``: recommendations predicted by replay, then measured by running them.

Starts its own broker, API (with the projector), sandbox and workers (an
executor and a monitor, as ``flowledger up`` runs them). The sandbox answers
with latencies drawn from the cluster trace (``domain.latency``), per call
(``--deterministic``): the same call takes as long and answers the same id
every time it is made, so a workflow's original and optimized versions, run
with the same inputs, meet the same service latencies and their difference
is their shape. With ``--independent-latency`` every call draws its own
latency: the measured gain then also carries the luck of the draw.

For each workflow of ``WORKFLOWS`` (some already optimal) it:

1. defines it and runs it ``--runs`` times (inputs ``trigger(i)``);
2. analyses it (``POST /api/workflows/optimization/analyze``, strategy
   ``performance``) once every run is projected, and records the predicted
   p50 gain (the replay of the recorded runs);
3. when something applies, applies it (``POST .../apply``) and runs the new
   version with the same inputs, measuring the p50 duration of both versions
   from the runs' own ``RunSucceeded`` events.

The last line is JSON: ``predicted_gain_p50`` and ``measured_gain_p50`` are
the medians over the workflows with something to gain, ``prediction_error``
the mean absolute difference between predicted and measured gain over them,
and ``no_op_on_optimal`` whether every workflow listed as optimal got no
recommendation.
"""

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson

from flowledger import progress
from flowledger.bench_execution import LogReader
from flowledger.broker import EmbeddedBroker, ensure_topics, free_port
from flowledger.procs import flowledger_command, spawn, stack_env, terminate, wait_http

KEY, TENANT = "bench-key", "bench"


def step(step_id: str, service: str, action: str, params: dict[str, Any] | None = None,
         needs: tuple[str, ...] = ()) -> dict[str, Any]:  # fmt: skip
    return {"id": step_id, "service": service, "action": action, "params": params or {}, "needs": list(needs)}


EMAIL = {"email": "{{ trigger.email }}"}
WORKFLOWS: dict[str, tuple[bool, list[dict[str, Any]]]] = {
    # name: (already optimal?, steps)
    "lead-intake": (False, [  # four writes chained by habit, each reading only the trigger
        step("contact", "hubspot", "create_contact", EMAIL),
        step("announce", "slack", "post_message", {"text": "new lead {{ trigger.email }}"}, ("contact",)),
        step("log", "google-sheets", "append_row", {"values": ["{{ trigger.email }}"]}, ("announce",)),
        step("subscribe", "mailchimp", "add_subscriber", EMAIL, ("log",)),
    ]),
    "order-sync": (False, [  # the receipt and the ledger row need the charge, not the invoice
        step("charge", "stripe", "get_charge", {"id": "{{ trigger.order }}"}),
        step("invoice", "quickbooks", "create_invoice", {"amount": "{{ steps.charge.output.id }}"}),
        step("receipt", "gmail", "send_email", {"to": "{{ trigger.email }}", "body": "{{ steps.charge.output.id }}"},
             ("invoice",)),
        step("ledger", "google-sheets", "append_row", {"values": ["{{ steps.charge.output.id }}"]}, ("receipt",)),
    ]),
    "crm-digest": (False, [  # three lookups in a row, each reading only the trigger
        step("contact", "hubspot", "find_contact", EMAIL),
        step("account", "salesforce", "get_account", {"domain": "{{ trigger.domain }}"}, ("contact",)),
        step("deal", "pipedrive", "get_deal", {"org": "{{ trigger.domain }}"}, ("account",)),
        step("post", "slack", "post_message", {"text": "{{ steps.contact.output.id }} {{ steps.account.output.id }} "
                                                        "{{ steps.deal.output.id }}"}),
    ]),
    "enrich-lead": (False, [  # a few companies, looked up again and again
        step("company", "clearbit", "enrich", {"domain": "{{ trigger.domain }}"}),
        step("contact", "hubspot", "create_contact", {"email": "{{ trigger.email }}",
                                                      "company": "{{ steps.company.output.id }}"}),
    ]),
    "daily-report": (False, [  # reads a sheet nobody uses before posting
        step("sheet", "google-sheets", "get_values", {"range": "A1:D20"}),
        step("post", "slack", "post_message", {"text": "report for {{ trigger.email }}"}, ("sheet",)),
    ]),
    "triage": (True, [  # every edge carries data
        step("fetch", "gmail", "get_message", {"id": "{{ trigger.order }}"}),
        step("task", "asana", "create_task", {"name": "{{ steps.fetch.output.id }}"}),
        step("notify", "slack", "post_message", {"text": "{{ steps.task.output.id }}"}),
    ]),
    "notify-all": (True, [  # already side by side
        step("chat", "slack", "post_message", {"text": "{{ trigger.email }}"}),
        step("teams", "microsoft-teams", "send_message", {"text": "{{ trigger.email }}"}),
        step("sms", "twilio", "send_sms", {"body": "{{ trigger.email }}"}),
    ]),
    "support-reply": (True, [  # ticket -> draft -> update, each step reads the one before
        step("ticket", "zendesk", "get_ticket", {"id": "{{ trigger.order }}"}),
        step("draft", "openai", "create_completion", {"prompt": "{{ steps.ticket.output.id }}"}),
        step("reply", "zendesk", "update_ticket", {"id": "{{ trigger.order }}", "body": "{{ steps.draft.output.id }}"}),
    ]),
}  # fmt: skip


def trigger(i: int) -> dict[str, Any]:
    return {"email": f"user{i}@example.com", "domain": f"company{i % 5}.example", "order": f"ord-{i}"}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def drive(api: str, bootstrap: str, runs: int, rate: float) -> dict[str, Any]:
    reader = LogReader(bootstrap)
    await reader.start()
    try:
        async with httpx.AsyncClient(base_url=api, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as http:
            return await _drive(http, reader, runs, rate)
    finally:
        await reader.stop()


async def _drive(http: httpx.AsyncClient, reader: LogReader, runs: int, rate: float) -> dict[str, Any]:
    for name, (_optimal, steps) in WORKFLOWS.items():
        body = {"id": name, "name": name, "trigger": {"service": "webhook", "event": "call"}, "steps": steps}
        (await http.post("/api/workflows", json=body)).raise_for_status()
    for name in WORKFLOWS:
        await _until(partial(http.get, f"/api/workflows/{name}"), lambda r: r.status_code == 200)
    say("warming up the workers (their consumer groups join) ...")
    warm = await _start(http, "triage", {"warm": True})
    await reader.read_until({warm}, timeout_s=180)

    say(f"recording {runs} runs of {len(WORKFLOWS)} workflows ...")
    original = await _run_all(http, reader, list(WORKFLOWS), runs, rate)
    per_workflow = []
    to_measure = []
    for name, (optimal, _steps) in WORKFLOWS.items():
        analysis = await _analyze(http, name, runs)
        entry: dict[str, Any] = {
            "workflow": name, "optimal": optimal,
            "recommendations": [r["kind"] for r in analysis["recommendations"]],
            "applied": [r["kind"] for r in analysis["recommendations"] if r["applied"]],
            "predicted_gain_p50": analysis["prediction"]["gain_p50"],
            "predicted_interval": analysis["prediction"]["gain_p50_interval"],
            "p50_before_ms": _p50(original[name]),
            "p50_before_replayed_ms": analysis["prediction"]["before"]["p50_ms"],
            "p50_after_predicted_ms": analysis["prediction"]["after"]["p50_ms"],
        }  # fmt: skip
        if analysis["optimized_definition"]:
            apply = partial(
                http.post, "/api/workflows/optimization/apply", json={"analysis_id": analysis["analysis_id"]}
            )
            applied = await _until(apply, lambda r: r.status_code != 404)  # projected a moment after it is answered
            applied.raise_for_status()
            version = applied.json()["workflow"]["version"]
            await _until(partial(http.get, f"/api/workflows/{name}"), partial(_at_version, version))
            to_measure.append(name)
        per_workflow.append(entry)
    say(f"running the optimized versions of {', '.join(to_measure)} ...")
    optimized = await _run_all(http, reader, to_measure, runs, rate)
    for entry in per_workflow:
        if entry["workflow"] in optimized:
            entry["p50_after_ms"] = _p50(optimized[entry["workflow"]])
            entry["measured_gain_p50"] = round(1 - entry["p50_after_ms"] / entry["p50_before_ms"], 4)
        say(f"{entry['workflow']}: {entry}")
    return score(per_workflow)


def score(per_workflow: list[dict[str, Any]]) -> dict[str, Any]:
    gained = [e for e in per_workflow if "measured_gain_p50" in e]
    errors = [abs(e["predicted_gain_p50"] - e["measured_gain_p50"]) for e in gained]
    return {
        "bench": "optimization",
        "workflows": len(per_workflow),
        "predicted_gain_p50": round(statistics.median(e["predicted_gain_p50"] for e in gained), 4) if gained else None,
        "measured_gain_p50": round(statistics.median(e["measured_gain_p50"] for e in gained), 4) if gained else None,
        "prediction_error": round(statistics.fmean(errors), 4) if errors else None,
        "no_op_on_optimal": all(not e["recommendations"] for e in per_workflow if e["optimal"]),
        "per_workflow": per_workflow,
    }


async def _run_all(http: httpx.AsyncClient, reader: LogReader, names: list[str], runs: int, rate: float
                   ) -> dict[str, list[float]]:  # fmt: skip
    """Run each workflow ``runs`` times (inputs 0..runs-1), interleaved at ``rate`` runs per second."""
    started: dict[str, str] = {}
    t0 = time.perf_counter()
    k = 0
    for i in progress.bar("runs started", runs, "round", iterable=range(runs)):
        for name in names:
            started[await _start(http, name, trigger(i))] = name
            k += 1
            delay = t0 + k / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
    try:
        await reader.read_until(set(started), timeout_s=300)
    except RuntimeError as exc:
        stuck = sorted({name for run_id, name in started.items() if run_id not in reader.finished})
        raise RuntimeError(f"{exc} (workflows {', '.join(stuck)})") from None
    durations: dict[str, list[float]] = {name: [] for name in names}
    for run_id, name in started.items():
        ended = [e for e in reader.events[run_id] if e["type"] in ("RunSucceeded", "RunFailed")]
        if ended and ended[-1]["type"] == "RunSucceeded":
            durations[name].append(float(ended[-1]["payload"]["duration_ms"]))
    return durations


async def _start(http: httpx.AsyncClient, workflow: str, payload: dict[str, Any]) -> str:
    run_id = f"opt-{uuid.uuid4().hex[:12]}"
    r = await http.post(f"/api/workflows/{workflow}/runs", json={"trigger": payload, "run_id": run_id})
    r.raise_for_status()
    return run_id


async def _analyze(http: httpx.AsyncClient, name: str, runs: int) -> dict[str, Any]:
    """Analyse once the projections hold every recorded run of the workflow."""
    deadline = time.monotonic() + 120
    while True:
        r = await http.post("/api/workflows/optimization/analyze",
                            json={"workflow_id": name, "strategy": "performance", "runs": runs})  # fmt: skip
        r.raise_for_status()
        analysis: dict[str, Any] = r.json()
        if analysis["prediction"].get("replayed_runs", 0) >= runs or time.monotonic() > deadline:
            return analysis
        await asyncio.sleep(1)


async def _until(
    request: Callable[[], Awaitable[httpx.Response]], ok: Callable[[httpx.Response], bool], timeout_s: float = 60
) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while not ok(response := await request()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the API did not show the change in time: {response.status_code} {response.text}")
        await asyncio.sleep(0.2)
    return response


def _at_version(version: int, response: httpx.Response) -> bool:
    return bool(response.json()["version"] == version)


def _p50(values: list[float]) -> float:
    return round(statistics.median(values), 1) if values else float("nan")


def bench_optimization(*, runs: int, rate: float, independent: bool = False) -> int:
    with tempfile.TemporaryDirectory(prefix="flowledger-bench-optimization-") as tmp, EmbeddedBroker() as broker:
        asyncio.run(ensure_topics(broker.bootstrap))
        tmp_path = Path(tmp)
        sandbox_port, api_port = free_port(), free_port()
        env = stack_env(broker.bootstrap, tmp, api_port, f"{KEY}={TENANT}",
                        FLOWLEDGER_SERVICE_BASE_URL=f"http://127.0.0.1:{sandbox_port}")  # fmt: skip
        procs = {
            "sandbox": spawn(flowledger_command("sandbox", "--port", str(sandbox_port), "--latency", "trace",
                                                *([] if independent else ["--deterministic"]), "--seed", "11"),
                             env, log=tmp_path / "sandbox.log"),
            "serve": spawn(flowledger_command("serve"), env, log=tmp_path / "serve.log"),
        }  # fmt: skip
        for role in ("executor", "monitor"):
            procs[role] = spawn(flowledger_command("worker", "--role", role), env, log=tmp_path / f"{role}.log")
        try:
            wait_http(f"http://127.0.0.1:{sandbox_port}/_sandbox/stats", 60, procs)
            wait_http(f"http://127.0.0.1:{api_port}/healthz", 60, procs)
            say((tmp_path / "sandbox.log").read_text().strip())
            result = asyncio.run(drive(f"http://127.0.0.1:{api_port}", broker.bootstrap, runs, rate))
        except (RuntimeError, httpx.HTTPError) as exc:
            say(f"bench optimization: {exc}; API log: {(tmp_path / 'serve.log').read_text()[-3000:]}")
            return 1
        finally:
            for proc in procs.values():
                terminate(proc)
    print(orjson.dumps(result).decode(), flush=True)
    return 0
