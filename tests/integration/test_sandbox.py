"""The sandbox service: `flowledger sandbox` as a real process, reached through the HTTP connector."""

import json
import subprocess
import sys
import time

import httpx
import pytest
from aiohttp.test_utils import TestServer

from connectors.base import PermanentError, RetryableError, StepCall
from connectors.credentials import CredentialRefreshFailed, CredentialStore
from connectors.http import HttpConnector, service_profiles
from connectors.oauth import TokenRefresher
from domain.faults import parse_schedule
from domain.latency import LatencyModel
from flowledger.broker import free_port
from flowledger.procs import child_preexec, terminate
from flowledger.sandbox import SandboxState, create_sandbox_app

pytestmark = pytest.mark.integration

FILE_SCHEDULE = [
    {"service": "asana", "from_s": 0, "to_s": 3600, "fault": "400"},
    {"service": "github", "from_s": 3600, "to_s": 7200, "fault": "500"},
]


@pytest.fixture(scope="module")
def sandbox_url(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sandbox")
    faults = directory / "faults.json"
    faults.write_text(json.dumps(FILE_SCHEDULE))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = directory / "sandbox.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flowledger", "sandbox", "--port", str(port), "--faults", str(faults),
             "--latency", "fixed:1", "--seed", "7"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=child_preexec,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"sandbox exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/_sandbox/stats", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("sandbox did not answer in 20s")
            time.sleep(0.05)
        yield url
    finally:
        assert terminate(proc, timeout_s=10) is not None
    assert "fixed 1 ms" in log.read_text()


@pytest.fixture
async def client():
    async with httpx.AsyncClient() as c:
        yield c


@pytest.fixture
def connect(sandbox_url, client, tmp_path):
    profiles = service_profiles(sandbox_url, "")  # as FLOWLEDGER_SERVICE_BASE_URL would
    store = CredentialStore(tmp_path, environ={})

    def connector(service):
        return HttpConnector(profiles.get(service), store, client)

    return connector


def step(service, run_id, **overrides):
    fields = {"tenant_id": "acme", "workflow_id": "wf", "run_id": run_id, "step_id": "s", "attempt": 1}
    return StepCall(**{**fields, "service": service, "action": "do_thing", "params": {"n": 1}, **overrides})


async def put_faults(client, url, schedule):
    response = await client.put(f"{url}/_sandbox/faults", json=schedule)
    assert response.status_code == 200, response.text


async def test_file_windows_bad_request_inside_success_outside(connect):
    with pytest.raises(PermanentError) as info:
        await connect("asana").call(step("asana", "r-file-1"))
    assert (info.value.status_code, info.value.error_type) == (400, "BadRequest")
    assert "Invalid parameters for asana.do_thing" in info.value.message
    output = await connect("github").call(step("github", "r-file-2", params={"title": "t"}))
    assert output["id"].startswith("github-") and output["received"] == {"title": "t"}
    assert (output["service"], output["action"]) == ("github", "do_thing")


@pytest.mark.parametrize(
    ("fault", "error", "error_type", "status", "retry_after"),
    [
        ("429", RetryableError, "RateLimited", 429, 1.0),
        ("400", PermanentError, "BadRequest", 400, None),
        ("503", RetryableError, "UpstreamError", 503, None),
        ("401", PermanentError, "Unauthorized", 401, None),
        ("404", PermanentError, "NotFound", 404, None),
    ],
)
async def test_runtime_windows_map_to_connector_errors(
    connect, client, sandbox_url, fault, error, error_type, status, retry_after
):
    await put_faults(client, sandbox_url, [{"service": "slack", "from_s": 0, "to_s": 600, "fault": fault}])
    try:
        with pytest.raises(error) as info:
            await connect("slack").call(step("slack", f"r-{fault}"))
        assert (info.value.error_type, info.value.status_code, info.value.retry_after_s) == (
            error_type, status, retry_after,
        )  # fmt: skip
        assert type(info.value) is error
        assert (await connect("trello").call(step("trello", f"r-{fault}-other")))["service"] == "trello"
    finally:
        await put_faults(client, sandbox_url, [])
    assert (await connect("slack").call(step("slack", f"r-{fault}-after")))["service"] == "slack"


async def test_a_timeout_window_makes_the_call_time_out(connect, client, sandbox_url):
    await put_faults(client, sandbox_url, [{"service": "trello", "fault": "timeout"}])
    try:
        with pytest.raises(RetryableError) as info:
            await connect("trello").call(step("trello", "r-timeout", timeout_s=0.3))
        assert info.value.error_type == "Timeout"
    finally:
        await put_faults(client, sandbox_url, [])


async def test_one_execution_per_idempotency_key(connect, client, sandbox_url):
    call = step("notion", "r-idem")
    first = await connect("notion").call(call)
    again = await connect("notion").call(call)
    other = await connect("notion").call(step("notion", "r-idem", attempt=2))
    stats = (await client.get(f"{sandbox_url}/_sandbox/stats")).json()
    assert first == again and other["id"] != first["id"]
    assert stats["executions_by_key"][call.idempotency_key] == 1
    assert stats["executions_by_key"]["acme:r-idem:s:2"] == 1
    assert stats["calls"] >= 3 and stats["executions"] >= 2


async def test_a_bad_schedule_is_refused_and_the_old_one_kept(client, sandbox_url):
    response = await client.put(f"{sandbox_url}/_sandbox/faults", json=[{"service": "x", "fault": "418"}])
    assert response.status_code == 422 and "entry 0: fault" in response.json()["error"]["message"]


# The app in this process (on a free port): counters and fault shapes, with an injected clock.


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
async def app_client():
    clock = Clock()
    schedule = parse_schedule([{"service": "*", "from_s": 10, "to_s": 20, "fault": "503"}])
    server = TestServer(create_sandbox_app(schedule, seed=1, clock=clock, timeout_fault_s=0.01), host="127.0.0.1")
    await server.start_server()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as c:
        yield c, clock
    await server.close()


@pytest.mark.parametrize(
    ("elapsed", "status", "error_type"),
    [(0, 200, None), (10, 503, "service_unavailable"), (19.9, 503, "service_unavailable"), (20, 200, None)],
)
async def test_schedule_times_count_from_start(app_client, elapsed, status, error_type):
    client, clock = app_client
    clock.now += elapsed
    response = await client.post("/slack/post", json={"text": "hi"}, headers={"Idempotency-Key": "k1"})
    assert response.status_code == status
    assert (response.json().get("error") or {}).get("type") == error_type
    stats = (await client.get("/_sandbox/stats")).json()
    assert stats["faults_injected"] == ({"503": 1} if error_type else {})
    assert stats["executions_by_key"] == ({} if error_type else {"k1": 1})


@pytest.mark.parametrize(
    ("fault", "status", "headers"),
    [("429", 429, {"retry-after": "1"}), ("500", 500, {}), ("timeout", 504, {}), ("404", 404, {})],
)
async def test_fault_answers_and_replaced_schedule(app_client, fault, status, headers):
    client, clock = app_client
    clock.now += 1000  # far past the initial window: times of a new schedule count from its arrival
    assert (await client.put("/_sandbox/faults", json=[{"service": "asana", "to_s": 5, "fault": fault}])).is_success
    response = await client.post("/asana/create_task", json={})
    assert response.status_code == status and response.json()["ok"] is False
    assert all(response.headers.get(k) == v for k, v in headers.items())
    clock.now += 5
    assert (await client.post("/asana/create_task", json={})).status_code == 200


async def test_a_replayed_key_returns_the_first_answer_even_inside_a_window(app_client):
    client, clock = app_client
    first = await client.post("/slack/post", json={"a": 1}, headers={"Idempotency-Key": "same"})
    clock.now += 15
    again = await client.post("/slack/post", json={"a": 2}, headers={"Idempotency-Key": "same"})
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    stats = (await client.get("/_sandbox/stats")).json()
    assert (stats["calls"], stats["executions"], stats["executions_by_key"]) == (2, 1, {"same": 1})


# OAuth: the token endpoint, expiring tokens, revoked grants.


async def authorize(client, service):
    r = await client.post("/_sandbox/oauth/token", data={"grant_type": "authorization_code", "client_id": service,
                                                         "code": "consent"})  # fmt: skip
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    return r.json()


async def refresh(client, refresh_token):
    return await client.post("/_sandbox/oauth/token", data={"grant_type": "refresh_token",
                                                            "refresh_token": refresh_token})  # fmt: skip


def bearer(pair):
    return {"Authorization": f"Bearer {pair['access_token']}"}


async def test_the_token_endpoint_issues_and_rotates_pairs(app_client):
    client, _ = app_client
    first = await authorize(client, "hubspot")
    assert (first["token_type"], first["expires_in"]) == ("Bearer", 3600)
    r = await refresh(client, first["refresh_token"])
    second = r.json()
    assert r.status_code == 200 and second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    spent = await refresh(client, first["refresh_token"])  # rotated: the old one is dead
    assert (spent.status_code, spent.json()["error"]) == (400, "invalid_grant")
    for form, error in [
        ({"grant_type": "authorization_code", "client_id": "hubspot"}, "invalid_request"),
        ({"grant_type": "password", "username": "u"}, "unsupported_grant_type"),
        ({"grant_type": "refresh_token", "refresh_token": "never-issued"}, "invalid_grant"),
    ]:
        r = await client.post("/_sandbox/oauth/token", data=form)
        assert (r.status_code, r.json()["error"]) == (400, error)
    stats = (await client.get("/_sandbox/stats")).json()
    assert stats["tokens"] == {"authorized": 1, "refreshed": 1, "refused": 2}


async def test_a_token_expired_window_refuses_older_tokens_until_the_caller_refreshes(app_client):
    client, clock = app_client
    clock.now += 1000
    pair = await authorize(client, "hubspot")
    assert (await client.post("/hubspot/upsert", json={}, headers=bearer(pair))).status_code == 200
    clock.now += 1
    assert (await client.put("/_sandbox/faults", json=[{"service": "hubspot", "fault": "token_expired"}])).is_success
    refused = await client.post("/hubspot/upsert", json={}, headers={**bearer(pair), "Idempotency-Key": "k-exp"})
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "token_expired"
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert (await client.post("/hubspot/upsert", json={})).status_code == 401  # no token: nothing to refresh
    assert (await client.post("/slack/post", json={}, headers=bearer(pair))).status_code == 200  # other services
    clock.now += 1
    fresh = (await refresh(client, pair["refresh_token"])).json()
    again = await client.post("/hubspot/upsert", json={}, headers={**bearer(fresh), "Idempotency-Key": "k-exp"})
    assert again.status_code == 200  # the refused attempt was not executed: its key runs now
    stats = (await client.get("/_sandbox/stats")).json()
    assert stats["faults_injected"] == {"token_expired": 2}
    assert stats["faults_by_key"] == {"k-exp": {"token_expired": 1}} and stats["executions_by_key"]["k-exp"] == 1


async def test_a_401_window_refuses_every_token_and_revokes_the_refresh(app_client):
    client, clock = app_client
    clock.now += 1000
    pair = await authorize(client, "slack")
    assert (await client.put("/_sandbox/faults", json=[{"service": "slack", "to_s": 10, "fault": "401"}])).is_success
    refused = await client.post("/slack/post", json={}, headers=bearer(pair))
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "invalid_auth"
    r = await refresh(client, pair["refresh_token"])
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant") and "revoked" in r.json()["error_description"]
    clock.now += 10  # the window is over: the same grant works again
    assert (await refresh(client, pair["refresh_token"])).status_code == 200


async def test_tokens_expire_after_their_lifetime():
    clock = Clock()
    server = TestServer(create_sandbox_app(clock=clock, token_lifetime_s=60), host="127.0.0.1")
    await server.start_server()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            pair = await authorize(client, "asana")
            assert (await authorize(client, "asana"))["expires_in"] == 60
            clock.now += 59
            assert (await client.post("/asana/create_task", json={}, headers=bearer(pair))).status_code == 200
            clock.now += 1
            expired = await client.post("/asana/create_task", json={}, headers=bearer(pair))
            assert expired.status_code == 401 and expired.json()["error"]["type"] == "token_expired"
    finally:
        await server.close()


# The connector against the sandbox process: it refreshes an expired token, and reports a revoked grant.


@pytest.fixture
def oauth_connect(sandbox_url, client, tmp_path):
    profiles = service_profiles(sandbox_url, "")
    store = CredentialStore(tmp_path, environ={})
    tokens = TokenRefresher(store, client)

    async def connect(service, credential_id):
        r = await client.post(f"{sandbox_url}/_sandbox/oauth/token",
                              data={"grant_type": "authorization_code", "client_id": service, "code": "c"})  # fmt: skip
        pair = r.json()
        store.put("acme", credential_id, {"access_token": pair["access_token"], "refresh_token": pair["refresh_token"],
                                          "token_url": f"{sandbox_url}/_sandbox/oauth/token"})  # fmt: skip
        return HttpConnector(profiles.get(service), store, client, tokens), pair

    return connect, store


async def test_the_connector_refreshes_a_token_the_sandbox_expired(oauth_connect, client, sandbox_url):
    connect, store = oauth_connect
    connector, pair = await connect("pipedrive", "pd-oauth")
    await put_faults(client, sandbox_url, [{"service": "pipedrive", "fault": "token_expired"}])
    try:
        before = (await client.get(f"{sandbox_url}/_sandbox/stats")).json()["tokens"].get("refreshed", 0)
        output = await connector.call(step("pipedrive", "r-oauth", credential_id="pd-oauth"))
        assert output["service"] == "pipedrive"
        stored = store.get("acme", "pd-oauth")
        assert stored["access_token"] != pair["access_token"] and stored["refresh_token"] != pair["refresh_token"]
        assert (await client.get(f"{sandbox_url}/_sandbox/stats")).json()["tokens"]["refreshed"] == before + 1
    finally:
        await put_faults(client, sandbox_url, [])


async def test_the_connector_reports_a_revoked_grant_as_a_credentials_failure(oauth_connect, client, sandbox_url):
    connect, _ = oauth_connect
    connector, _ = await connect("zendesk", "zd-oauth")
    await put_faults(client, sandbox_url, [{"service": "zendesk", "fault": "401"}])
    try:
        with pytest.raises(CredentialRefreshFailed) as info:
            await connector.call(step("zendesk", "r-revoked", credential_id="zd-oauth"))
        assert "credential 'zd-oauth'" in info.value.message and "invalid_grant" in info.value.message
    finally:
        await put_faults(client, sandbox_url, [])


def test_a_deterministic_sandbox_gives_the_same_call_the_same_latency_and_id():
    def state(seed):
        return SandboxState((), LatencyModel("lognormal", "test", mu=3.6, sigma=1.8), seed, lambda: 0.0,
                            deterministic=True)  # fmt: skip

    a, b = state(7), state(7)
    calls = [("slack", "post", f'{{"n": {i}}}'.encode()) for i in range(200)]
    delays = [a.delay_s(*c) for c in calls]
    assert delays == [b.delay_s(*c) for c in reversed(calls)][::-1]  # order does not matter, the call does
    assert len(set(delays)) > 150  # and calls still differ from each other
    assert a.execute("slack", "post", {}, None, b"x")["id"] == b.execute("slack", "post", {}, None, b"x")["id"]
    assert a.execute("slack", "post", {}, None, b"y")["id"] != b.execute("slack", "post", {}, None, b"x")["id"]
    assert state(8).delay_s(*calls[0]) != delays[0]
