"""Refreshing OAuth credentials: the connector on a 401, the refresher's single flight, the store's last word.

One ``httpx.MockTransport`` plays both the service and its token endpoint.
"""

import asyncio
import logging
from urllib.parse import parse_qs

import httpx
import pytest

from connectors.base import PermanentError, RetryableError, StepCall
from connectors.credentials import CredentialRefreshFailed, CredentialStore
from connectors.http import HttpConnector, ServiceProfile
from connectors.oauth import TokenRefresher

TOKEN_URL = "https://idp.test/oauth/token"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
OLD = {"access_token": "at-0-old", "refresh_token": "rt-0-old", "token_url": TOKEN_URL}


class FakeIdp:
    """A service (``https://api.test``) and its token endpoint.

    ``service``: ``fresh`` accepts only tokens this endpoint issued (the
    stored one has expired), ``ok`` accepts any, ``refuse`` answers 401 to
    all, ``forbid`` 403. ``endpoint``: ``rotate`` issues a new pair and
    refuses a spent refresh token, ``keep`` a new access token only,
    ``invalid_grant``, ``echo`` (a 400 quoting the refresh token), ``503``,
    ``timeout``.
    """

    def __init__(self, service="fresh", endpoint="rotate", delay_s=0.0):
        self.service, self.endpoint, self.delay_s = service, endpoint, delay_s
        self.grants: list[dict[str, str]] = []
        self.presented: list[str] = []
        self.issued: set[str] = set()
        self.live_refresh = {"rt-0-old"}

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            return await self.token(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.presented.append(token)
        if self.service == "forbid":
            return httpx.Response(403, json={"error": "missing_scope"})
        if self.service == "refuse" or (self.service == "fresh" and token not in self.issued):
            return httpx.Response(401, json={"error": {"message": f"token {token} expired"}})
        return httpx.Response(200, json={"ok": True, "token_seen": token[:5]})

    async def token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        self.grants.append(form)
        await asyncio.sleep(self.delay_s)
        if self.endpoint == "timeout":
            raise httpx.ReadTimeout("no answer", request=request)
        if self.endpoint == "503":
            return httpx.Response(503, text="upstream down")
        if self.endpoint == "echo":
            return httpx.Response(400, json={"error": "invalid_grant", "error_description": f"{form['refresh_token']}"})
        if self.endpoint == "invalid_grant" or form.get("refresh_token") not in self.live_refresh:
            return httpx.Response(400, json={"error": "invalid_grant", "error_description": "revoked"})
        n = len(self.grants)
        self.issued.add(f"at-{n}-new")
        answer = {"access_token": f"at-{n}-new", "token_type": "Bearer", "expires_in": 3600}
        if self.endpoint == "rotate":
            self.live_refresh.discard(form["refresh_token"])
            self.live_refresh.add(f"rt-{n}-new")
            answer["refresh_token"] = f"rt-{n}-new"
        return httpx.Response(200, json=answer)


@pytest.fixture
def store(tmp_path):
    store = CredentialStore(tmp_path, environ={})
    store.put("acme", "crm", dict(OLD))
    store.put("acme", "static", {"token": "static-token-123"})
    return store


def make(store, idp, *, token_url=None, clock=lambda: T0):
    client = httpx.AsyncClient(transport=httpx.MockTransport(idp))
    tokens = TokenRefresher(store, client, clock=clock)
    profile = ServiceProfile("crm", "https://api.test", token_url=token_url)
    return HttpConnector(profile, store, client, tokens), tokens


def step(credential_id="crm", run_id="run-1"):
    return StepCall(tenant_id="acme", workflow_id="wf", run_id=run_id, step_id="s", attempt=1, service="crm",
                    action="upsert", params={"n": 1}, credential_id=credential_id)  # fmt: skip


@pytest.mark.parametrize(
    ("service", "endpoint", "credential", "error", "error_type", "grants", "stored_access"),
    [
        # the stored token expired: refreshed once, the call sent again with the new one
        ("fresh", "rotate", "crm", None, None, 1, "at-1-new"),
        ("fresh", "keep", "crm", None, None, 1, "at-1-new"),
        # refreshed, and still refused: final, and says so
        ("refuse", "rotate", "crm", PermanentError, "Unauthorized", 1, "at-1-new"),
        # the token endpoint refuses the grant: a person must reconnect it
        ("refuse", "invalid_grant", "crm", CredentialRefreshFailed, "CredentialRefreshFailed", 1, "at-0-old"),
        # the token endpoint is down: worth another attempt later
        ("refuse", "503", "crm", RetryableError, "UpstreamError", 1, "at-0-old"),
        ("refuse", "timeout", "crm", RetryableError, "Timeout", 1, "at-0-old"),
        # nothing to refresh, or not an authentication failure: no grant
        ("refuse", "rotate", "static", PermanentError, "Unauthorized", 0, None),
        ("forbid", "rotate", "crm", PermanentError, "Forbidden", 0, "at-0-old"),
    ],
)
async def test_a_401_refreshes_once_and_sends_the_call_again(
    store, service, endpoint, credential, error, error_type, grants, stored_access
):
    idp = FakeIdp(service, endpoint)
    connector, _ = make(store, idp)
    if error is None:
        assert (await connector.call(step(credential)))["token_seen"] == "at-1-"
        assert idp.presented == ["at-0-old", "at-1-new"]
    else:
        with pytest.raises(error) as info:
            await connector.call(step(credential))
        assert type(info.value) is error and info.value.error_type == error_type
        assert info.value.retryable is (error is RetryableError)
        if error_type == "Unauthorized" and grants:
            assert "refused again after refreshing credential 'crm'" in info.value.message
    assert len(idp.grants) == grants
    if grants:
        assert idp.grants[0] == {"grant_type": "refresh_token", "refresh_token": "rt-0-old"}
    if stored_access:
        assert store.get("acme", credential).get("access_token") == stored_access


async def test_the_new_tokens_are_stored_encrypted_and_a_rotated_refresh_token_replaces_the_old(store, tmp_path):
    connector, _ = make(store, FakeIdp("fresh", "rotate"))
    await connector.call(step())
    assert store.get("acme", "crm") == {
        "access_token": "at-1-new", "refresh_token": "rt-1-new", "token_url": TOKEN_URL,
        "expires_at": "2026-01-01T01:00:00Z",
    }  # fmt: skip
    on_disk = (tmp_path / "credentials.json").read_text()
    assert "at-1-new" not in on_disk and "rt-1-new" not in on_disk


async def test_a_refused_refresh_names_the_credential_and_is_final(store):
    connector, _ = make(store, FakeIdp("refuse", "invalid_grant"))
    with pytest.raises(CredentialRefreshFailed) as info:
        await connector.call(step())
    message = info.value.message
    assert "credential 'crm' of tenant 'acme' could not be refreshed" in message
    assert "400 invalid_grant" in message and "reconnect" in message
    assert (info.value.status_code, info.value.retryable) == (401, False)


@pytest.mark.parametrize(
    ("secret", "token_url", "presented"),
    [
        ({**OLD, "expires_at": "2026-01-01T00:00:30Z"}, None, ["at-1-new"]),  # expiring in 30 s: refreshed first
        ({**OLD, "expires_at": "2026-01-01T02:00:00Z"}, None, ["at-0-old", "at-1-new"]),  # not yet: 401 first
        ({"refresh_token": "rt-0-old", "token_url": TOKEN_URL}, None, ["at-1-new"]),  # no access token yet
        ({"access_token": "at-0-old", "refresh_token": "rt-0-old"}, TOKEN_URL, ["at-0-old", "at-1-new"]),  # profile's
    ],
)
async def test_expiring_tokens_are_refreshed_before_the_call(store, secret, token_url, presented):
    store.put("acme", "crm", secret)
    idp = FakeIdp("fresh", "rotate")
    connector, _ = make(store, idp, token_url=token_url)
    await connector.call(step())
    assert idp.presented == presented and len(idp.grants) == 1


async def test_steps_refused_at_once_share_one_refresh(store):
    idp = FakeIdp("fresh", "rotate", delay_s=0.05)  # a spent refresh token is refused: a second grant would fail
    connector, _ = make(store, idp)
    outputs = await asyncio.gather(*(connector.call(step(run_id=f"run-{i}")) for i in range(8)))
    assert [o["token_seen"] for o in outputs] == ["at-1-"] * 8
    assert len(idp.grants) == 1
    # a call that read the old token before the refresh and is refused after it: no new grant
    _, tokens = make(store, idp)
    assert (await tokens.refresh("acme", "crm", rejected="at-0-old"))["access_token"] == "at-1-new"
    assert len(idp.grants) == 1


async def test_a_step_giving_up_does_not_cancel_the_refresh(store):
    idp = FakeIdp("fresh", "rotate", delay_s=0.1)
    _, tokens = make(store, idp)
    waiting = asyncio.create_task(tokens.refresh("acme", "crm", rejected="at-0-old"))
    await asyncio.sleep(0.02)
    waiting.cancel()
    await asyncio.sleep(0.2)
    assert store.get("acme", "crm")["refresh_token"] == "rt-1-new"  # the rotated token was not lost


async def test_another_process_refreshing_first_wins(store):
    idp = FakeIdp("fresh", "rotate")
    _, tokens = make(store, idp)
    # The other process spent rt-0-old and stored its pair after this one read the credential.
    idp.live_refresh = {"rt-9-other"}
    original_get = store.get
    reads = []

    def get_then_other_process_writes(tenant, credential):
        reads.append(credential)
        secret = original_get(tenant, credential)
        if len(reads) == 1:
            store.put(tenant, credential, {**OLD, "access_token": "at-9-other", "refresh_token": "rt-9-other"})
        return secret

    store.get = get_then_other_process_writes
    secret = await tokens.refresh("acme", "crm", rejected="at-0-old")
    assert (secret["access_token"], secret["refresh_token"]) == ("at-9-other", "rt-9-other")


async def test_a_credential_replaced_during_the_grant_is_kept(store):
    idp = FakeIdp("fresh", "rotate", delay_s=0.05)
    _, tokens = make(store, idp)
    refreshing = asyncio.create_task(tokens.refresh("acme", "crm", rejected="at-0-old"))
    await asyncio.sleep(0.02)
    store.put("acme", "crm", {"access_token": "at-person", "refresh_token": "rt-person", "token_url": TOKEN_URL})
    assert (await refreshing)["access_token"] == "at-person"
    assert store.get("acme", "crm")["refresh_token"] == "rt-person"


@pytest.mark.parametrize(("service", "endpoint"), [("fresh", "rotate"), ("refuse", "echo"), ("refuse", "rotate")])
async def test_no_secret_in_log_lines_or_errors(store, caplog, service, endpoint):
    store.put("acme", "crm", {**OLD, "client_secret": "cs-very-secret"})
    idp = FakeIdp(service, endpoint)
    connector, _ = make(store, idp)
    caplog.set_level(logging.DEBUG)
    said = []
    try:
        said.append(str(await connector.call(step())))
    except (PermanentError, RetryableError) as exc:
        said.append(str(exc))
    said.append(caplog.text)
    secrets = ["at-0-old", "rt-0-old", "at-1-new", "rt-1-new", "cs-very-secret"]
    assert not [s for s in secrets for text in said if s in text]
    assert idp.grants  # the refresh did happen
    if endpoint == "rotate" and service == "fresh":
        assert "credential 'crm' of tenant 'acme' refreshed" in caplog.text


async def test_a_token_refused_while_a_flight_for_an_older_one_lands_gets_its_own_refresh(store):
    idp = FakeIdp("fresh", "rotate", delay_s=0.05)
    _, tokens = make(store, idp)
    store.put("acme", "crm", {**OLD, "access_token": "at-newer"})  # stored after the first call read at-0-old
    stale, newer = await asyncio.gather(
        tokens.refresh("acme", "crm", rejected="at-0-old"),  # finds at-newer stored: no grant
        tokens.refresh("acme", "crm", rejected="at-newer"),  # joins that flight, then needs its own
    )
    assert stale["access_token"] == "at-newer" and newer["access_token"] == "at-1-new"
    assert len(idp.grants) == 1
