"""``flowledger demo``: realistic workflows run continuously against the sandbox.

Defines three workflows through the API, then starts runs of them at a steady
pace with varied trigger payloads, and every cycle gives the sandbox a fault
schedule (rate limits on Slack, a wave of 503s from Asana, expired HubSpot
credentials) so every dashboard and endpoint has live, imperfect data.
Stops on SIGTERM or Ctrl-C.
"""

import asyncio
import itertools
import random
import signal
from typing import Any

import httpx

WORKFLOWS: list[dict[str, Any]] = [
    {
        "id": "important-email-to-asana",
        "name": "Important emails become Asana tasks and a Slack message",
        "trigger": {"service": "gmail", "event": "new_email", "filter": 'trigger.importance == "high"'},
        "steps": [
            {
                "id": "create-task",
                "service": "asana",
                "action": "create_task",
                "params": {"name": "{{ trigger.subject }}", "notes": "From {{ trigger.sender }}"},
            },
            {
                "id": "notify",
                "service": "slack",
                "action": "post_message",
                "params": {
                    "channel": "#ops",
                    "text": "New task {{ steps.create-task.output.id }}: {{ trigger.subject }}",
                },
            },
            {
                "id": "log",
                "service": "google-sheets",
                "action": "append_row",
                "params": {"row": ["{{ run.id }}", "{{ trigger.subject }}"]},
            },
        ],
    },
    {
        "id": "new-lead-enrichment",
        "name": "Enrich a new lead, add it to the CRM and the newsletter",
        "trigger": {"service": "typeform", "event": "new_entry"},
        "steps": [
            {
                "id": "enrich",
                "service": "clearbit",
                "action": "enrich_person",
                "params": {"email": "{{ trigger.email }}"},
            },
            {
                "id": "crm",
                "service": "hubspot",
                "action": "create_contact",
                "params": {"email": "{{ trigger.email }}", "company": "{{ steps.enrich.output.id }}"},
            },
            {
                "id": "newsletter",
                "service": "mailchimp",
                "action": "add_member",
                "params": {"email": "{{ trigger.email }}"},
                "when": "trigger.consent == True",
            },
        ],
    },
    {
        "id": "deploy-announcement",
        "name": "Announce a deploy everywhere, then update the status page",
        "trigger": {"service": "github", "event": "push"},
        "steps": [
            {
                "id": "chat",
                "service": "slack",
                "action": "post_message",
                "params": {"text": "Deploying {{ trigger.sha }}"},
            },
            {
                "id": "ticket",
                "service": "jira",
                "action": "transition_issue",
                "params": {"issue": "{{ trigger.issue }}"},
            },
            {"id": "marker", "service": "datadog", "action": "create_event", "params": {"title": "deploy"}},
            {
                "id": "status",
                "service": "statuspage",
                "action": "update_component",
                "needs": ["chat", "ticket", "marker"],
            },
        ],
    },
]

CYCLE_S = 300.0
FAULTS = [
    {"service": "slack", "from_s": 30, "to_s": 75, "fault": "429", "rate": 0.5},
    {"service": "asana", "from_s": 120, "to_s": 150, "fault": "503", "rate": 0.4},
    {"service": "hubspot", "from_s": 200, "to_s": 230, "fault": "401", "rate": 1.0},
    {"service": "*", "from_s": 0, "to_s": CYCLE_S, "fault": "timeout", "rate": 0.002},
]


def trigger_for(workflow_id: str, rng: random.Random, n: int) -> dict[str, Any]:
    if workflow_id == "important-email-to-asana":
        return {"subject": f"Customer escalation #{n}", "sender": "ceo@example.com",
                "importance": rng.choice(["high", "high", "normal"])}  # fmt: skip
    if workflow_id == "new-lead-enrichment":
        return {"email": f"lead{n}@example.com", "consent": rng.random() < 0.6}
    return {"sha": f"{rng.getrandbits(28):07x}", "issue": f"OPS-{n}"}


async def run_demo(api: str, key: str, sandbox: str, *, runs_per_s: float = 1.0, seed: int = 1) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=10) as http:
        for workflow in WORKFLOWS:
            (await http.post("/api/workflows", json=workflow)).raise_for_status()
        await _wait_defined(http, stop)
        next_cycle = 0.0
        for n in itertools.count(1):
            if stop.is_set():
                return
            if loop.time() >= next_cycle:
                httpx.put(f"{sandbox}/_sandbox/faults", json=FAULTS, timeout=5)
                next_cycle = loop.time() + CYCLE_S
            workflow_id = rng.choice(WORKFLOWS)["id"]
            body = {"trigger": trigger_for(workflow_id, rng, n)}
            try:
                await http.post(f"/api/workflows/{workflow_id}/runs", json=body)
            except httpx.HTTPError:
                pass  # the API restarting; the next tick tries again
            try:
                await asyncio.wait_for(stop.wait(), timeout=rng.expovariate(runs_per_s))
            except TimeoutError:
                pass


async def _wait_defined(http: httpx.AsyncClient, stop: asyncio.Event) -> None:
    """Definitions are read back through the projection; wait until all are there."""
    while not stop.is_set():
        answers = [await http.get(f"/api/workflows/{w['id']}") for w in WORKFLOWS]
        if all(a.status_code == 200 for a in answers):
            return
        await asyncio.sleep(0.2)
