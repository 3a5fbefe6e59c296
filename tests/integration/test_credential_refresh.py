"""An OAuth credential expiring mid-run on a stack of its own: refreshed by the executor, never in the log.

Its own broker, sandbox, API and worker, the API and the worker sharing one
data directory (one credential store, as ``flowledger up`` runs them), so
the credential goes in through the API and the worker uses it.
"""

import asyncio
import subprocess
import sys
import time

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from connectors.credentials import CredentialStore
from flowledger.broker import EmbeddedBroker, ensure_topics, free_port
from tests.integration.conftest import (
    SandboxProcess,
    ServeProcess,
    WorkerProcess,
    auth,
    define_workflow,
    eventually,
    start_run,
)

pytestmark = pytest.mark.integration
KEY = auth("key-a")
TENANT = "tenant-a"
NO_RETRY = {"maximum_attempts": 1}
"""A 401 is not retried anyway; no retry at all proves the refresh happened inside the attempt."""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with EmbeddedBroker() as broker:
        asyncio.run(ensure_topics(broker.bootstrap))
        data_dir = tmp_path_factory.mktemp("cred-stack")
        sandbox = SandboxProcess(tmp_path_factory.mktemp("cred-sandbox"), latency="fixed:20")
        api = ServeProcess(broker.bootstrap, data_dir, group="cred-projector")
        worker = WorkerProcess(broker.bootstrap, data_dir, sandbox, free_port())
        try:
            api.start()
            worker.start()
            yield broker, api, sandbox, data_dir
        finally:
            worker.stop()
            api.stop()
            sandbox.stop()


def authorize(sandbox, service):
    """The tokens a person's consent gives (the sandbox's authorization-code grant)."""
    form = {"grant_type": "authorization_code", "client_id": service, "code": "consent"}
    return httpx.post(f"{sandbox.url}/_sandbox/oauth/token", data=form).json()


async def store_oauth(http, sandbox, credential_id, service):
    pair = authorize(sandbox, service)
    secret = {"access_token": pair["access_token"], "refresh_token": pair["refresh_token"],
              "token_url": f"{sandbox.url}/_sandbox/oauth/token"}  # fmt: skip
    assert (
        await http.put(f"/api/credentials/{credential_id}", json={"secret": secret}, headers=KEY)
    ).status_code == 204
    return pair


async def runs(http, run_ids):
    return [(await http.get(f"/api/runs/{r}", headers=KEY)).json() for r in run_ids]


async def all_in(http, run_ids, status):
    found = await runs(http, run_ids)
    return found if all(r.get("status") == status for r in found) else None


async def test_a_revoked_grant_fails_the_step_naming_the_credential(stack):
    _, api, sandbox, _ = stack
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        await store_oauth(http, sandbox, "desk-oauth", "freshdesk")
        ticket = {"id": "ticket", "service": "freshdesk", "action": "create_ticket", "credential_id": "desk-oauth",
                  "retry": NO_RETRY}  # fmt: skip
        workflow = await define_workflow(http, KEY, "wf-cred", [ticket])
        sandbox.faults([{"service": "freshdesk", "fault": "401"}])
        try:
            run_id = await start_run(http, KEY, workflow)
            [run] = await eventually(lambda: all_in(http, [run_id], "failed"), timeout_s=150)
        finally:
            sandbox.faults([])
    [step] = run["steps"]
    error = step["last_error"]
    assert (error["type"], error["status_code"]) == ("CredentialRefreshFailed", 401)
    assert "credential 'desk-oauth'" in error["message"] and "invalid_grant" in error["message"]
    assert sandbox.stats()["tokens"]["refused"] >= 1


async def test_a_token_expiring_mid_run_is_refreshed_and_never_logged(stack):
    broker, api, sandbox, data_dir = stack
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        first = await store_oauth(http, sandbox, "crm-oauth", "zoho-crm")
        crm = {"service": "zoho-crm", "credential_id": "crm-oauth", "retry": NO_RETRY}
        workflow = await define_workflow(http, KEY, "wf-cred", [
            {"id": "lookup", "action": "find_contact", **crm},
            # long enough for the test to see every lookup and expire the tokens before any update, on a busy machine
            {"id": "pause", "service": "delay", "action": "wait", "params": {"seconds": 3}, "needs": ["lookup"]},
            {"id": "update", "action": "update_contact", "needs": ["pause"], **crm},
            {"id": "tell", "service": "slack", "action": "post_message", "needs": ["update"]},
        ])  # fmt: skip
        warm = await start_run(http, KEY, workflow)
        await eventually(lambda: all_in(http, [warm], "succeeded"), timeout_s=150)

        run_ids = [await start_run(http, KEY, workflow) for _ in range(6)]

        async def looked_up():
            found = await runs(http, run_ids)
            return all(any(s["step_id"] == "lookup" and s["status"] == "succeeded" for s in r.get("steps", []))
                       for r in found)  # fmt: skip

        await eventually(looked_up, every_s=0.05)
        # Mid-run: every access token issued so far has expired; the update steps meet that.
        sandbox.faults([{"service": "zoho-crm", "fault": "token_expired"}])
        try:
            done = await eventually(lambda: all_in(http, run_ids, "succeeded"), timeout_s=60)
            stats = sandbox.stats()
        finally:
            sandbox.faults([])
    assert all(s["attempts"] == 1 for r in done for s in r["steps"])  # refreshed inside the attempt, no retry
    assert stats["faults_injected"]["token_expired"] >= 1
    assert stats["tokens"]["refreshed"] == 1  # however many steps were refused at once
    stored = CredentialStore(data_dir).get(TENANT, "crm-oauth")
    assert stored["access_token"] != first["access_token"] and stored["refresh_token"] != first["refresh_token"]
    assert stored["token_url"].endswith("/_sandbox/oauth/token") and "expires_at" in stored

    secrets = [first["access_token"], first["refresh_token"], stored["access_token"], stored["refresh_token"]]
    events = await read_log(broker.bootstrap)
    assert any(b'"credential_id":"crm-oauth"' in e.replace(b" ", b"") for e in events)
    assert [s for s in secrets if any(s.encode() in e for e in events)] == []
    api.stop()  # one process may open the embedded ClickHouse path
    tables = dump_clickhouse(api)
    assert "zoho-crm" in tables and "crm-oauth" in tables
    assert [s for s in secrets if s in tables] == []
    logs = "".join(p.read_text(errors="replace") for p in data_dir.glob("*.log"))
    assert [s for s in secrets if s in logs] == []


async def read_log(bootstrap: str, timeout_s: float = 60) -> list[bytes]:
    """Every record of every topic, from the start to where each partition ended when reading began."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(t, p) for t in await consumer.topics() for p in consumer.partitions_for_topic(t)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        values: list[bytes] = []
        ends: dict[TopicPartition, int] = {}  # the high watermark the first fetch reports (workers keep writing)
        read: dict[TopicPartition, int] = dict.fromkeys(partitions, 0)
        deadline = time.monotonic() + timeout_s
        while len(ends) < len(partitions) or any(read[tp] < end for tp, end in ends.items()):
            assert time.monotonic() < deadline, "the log was not read to its end"
            fetched = await consumer.getmany(timeout_ms=200, max_records=10_000)
            values += [m.value or b"" for batch in fetched.values() for m in batch]
            for tp in partitions:
                read[tp] = await consumer.position(tp)
                if tp not in ends and consumer.highwater(tp) is not None:
                    ends[tp] = consumer.highwater(tp)
        return values
    finally:
        await consumer.stop()


DUMP = """
import sys
from projections.warehouse import Warehouse
wh = Warehouse(sys.argv[1])
for database, table in wh.query("SELECT database, name FROM system.tables WHERE database NOT IN "
                                "('system', 'INFORMATION_SCHEMA', 'information_schema')"):
    for row in wh.query(f"SELECT * FROM `{database}`.`{table}`"):
        print(table, *row, sep="\\t")
"""


def dump_clickhouse(api: ServeProcess) -> str:
    """Every row of every table of the stopped API's embedded ClickHouse."""
    result = subprocess.run([sys.executable, "-c", DUMP, api.env["CLICKHOUSE_URL"]], capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout
