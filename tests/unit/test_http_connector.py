import base64
import json
from datetime import UTC, datetime

import httpx
import pytest

from connectors.base import PermanentError, RetryableError, StepCall
from connectors.credentials import CredentialStore
from connectors.http import HttpConnector, ServiceProfile, parse_service_urls, retry_after_s, service_profiles

TOKEN = "plain-token-without-known-format-7f3a"
SLACK_TOKEN = "xoxb-123456789012-abcdefABCDEF"


def step(**overrides):
    fields = {
        "tenant_id": "acme", "workflow_id": "wf", "run_id": "run-1", "step_id": "post", "attempt": 2,
        "service": "slack", "action": "post_message", "params": {"channel": "#ops", "text": "hi"},
        "credential_id": "cred-slack", "timeout_s": 7.5,
    }  # fmt: skip
    return StepCall(**{**fields, **overrides})


@pytest.fixture
def store(tmp_path):
    store = CredentialStore(tmp_path, environ={})
    store.put("acme", "cred-slack", {"token": TOKEN})
    store.put("acme", "cred-basic", {"username": "bot", "password": "pa55-w0rd-xyz"})
    store.put("acme", "cred-slack-format", {"token": SLACK_TOKEN})
    return store


def connector(store, handler, **profile):
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return HttpConnector(ServiceProfile("slack", "https://api.test/v1", **profile), store, client)


async def test_request_carries_params_idempotency_key_credential_and_timeout(store):
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={"ok": True, "ts": "1.2"})

    output = await connector(store, handler).call(step())
    request = seen[0]
    assert output == {"ok": True, "ts": "1.2"}
    assert (request.method, str(request.url)) == ("POST", "https://api.test/v1/slack/post_message")
    assert json.loads(request.content) == {"channel": "#ops", "text": "hi"}
    assert request.headers["Idempotency-Key"] == "acme:run-1:post:2"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.extensions["timeout"]["read"] == 7.5


@pytest.mark.parametrize(
    ("auth", "auth_header", "credential_id", "header", "value"),
    [
        ("bearer", None, "cred-slack", "Authorization", f"Bearer {TOKEN}"),
        ("api_key_header", None, "cred-slack", "X-API-Key", TOKEN),
        ("api_key_header", "X-Custom-Key", "cred-slack", "X-Custom-Key", TOKEN),
        ("basic", None, "cred-basic", "Authorization", "Basic " + base64.b64encode(b"bot:pa55-w0rd-xyz").decode()),
        ("none", None, "cred-slack", "Authorization", None),
    ],
)
async def test_auth_headers(store, auth, auth_header, credential_id, header, value):
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={})

    await connector(store, handler, auth=auth, auth_header=auth_header).call(step(credential_id=credential_id))
    assert seen[0].headers.get(header) == value


@pytest.mark.parametrize(
    ("endpoints", "action", "method", "url"),
    [
        ({}, "post_message", "POST", "https://api.test/v1/slack/post_message"),
        (
            {"post_message": ("post", "/chat.postMessage")},
            "post_message",
            "POST",
            "https://api.test/v1/chat.postMessage",
        ),
        ({"list": ("GET", "/conversations.list")}, "list", "GET", "https://api.test/v1/conversations.list?limit=5&x=a"),
    ],
)
async def test_endpoints(store, endpoints, action, method, url):
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={})

    params = {"limit": 5, "x": "a"} if method == "GET" else {"text": "hi"}
    await connector(store, handler, endpoints=endpoints).call(step(action=action, params=params))
    assert (seen[0].method, str(seen[0].url)) == (method, url)


@pytest.mark.parametrize(
    ("status", "headers", "body", "error", "error_type", "retry_after"),
    [
        (429, {"Retry-After": "3"}, {"error": "ratelimited"}, RetryableError, "RateLimited", 3.0),
        (429, {"Retry-After": "soon"}, {"error": "ratelimited"}, RetryableError, "RateLimited", None),
        (429, {}, {}, RetryableError, "RateLimited", None),
        (408, {}, {}, RetryableError, "Timeout", None),
        (504, {}, {}, RetryableError, "Timeout", None),
        (500, {}, {"message": "boom"}, RetryableError, "UpstreamError", None),
        (502, {}, "bad gateway", RetryableError, "UpstreamError", None),
        (503, {}, {}, RetryableError, "UpstreamError", None),
        (401, {}, {"error": "invalid_auth"}, PermanentError, "Unauthorized", None),
        (403, {}, {"error": "missing_scope"}, PermanentError, "Forbidden", None),
        (404, {}, {"error": "channel_not_found"}, PermanentError, "NotFound", None),
        (400, {}, {"error": {"message": "text is too long"}}, PermanentError, "BadRequest", None),
        (409, {}, {"error": "conflict"}, PermanentError, "Conflict", None),
        (422, {}, {"errors": [{"field": "text"}]}, PermanentError, "UnprocessableEntity", None),
    ],
)
async def test_status_mapping(store, status, headers, body, error, error_type, retry_after):
    def handler(request):
        if isinstance(body, str):
            return httpx.Response(status, headers=headers, text=body)
        return httpx.Response(status, headers=headers, json=body)

    with pytest.raises(error) as info:
        await connector(store, handler).call(step())
    assert type(info.value) is error
    assert (info.value.error_type, info.value.status_code, info.value.retry_after_s) == (
        error_type,
        status,
        retry_after,
    )
    assert str(status) in info.value.message


@pytest.mark.parametrize(
    ("exc", "error", "error_type"),
    [
        (httpx.ReadTimeout("read timed out"), RetryableError, "Timeout"),
        (httpx.ConnectTimeout("connect timed out"), RetryableError, "Timeout"),
        (httpx.ConnectError("connection refused"), RetryableError, "ConnectError"),
        (httpx.ReadError("connection reset"), RetryableError, "ConnectError"),
        (httpx.RemoteProtocolError("server disconnected"), RetryableError, "NetworkError"),
        (httpx.UnsupportedProtocol("ftp"), PermanentError, "InvalidURL"),
    ],
)
async def test_transport_failures(store, exc, error, error_type):
    def handler(request):
        raise exc

    with pytest.raises(error) as info:
        await connector(store, handler).call(step())
    assert info.value.error_type == error_type and info.value.status_code is None


@pytest.mark.parametrize(
    ("credential_id", "secret"),
    [("cred-slack", TOKEN), ("cred-slack-format", SLACK_TOKEN), ("cred-basic", "pa55-w0rd-xyz")],
)
@pytest.mark.parametrize("status", [400, 401, 403, 429, 500])
async def test_the_secret_never_appears_in_an_error_message(store, credential_id, secret, status):
    def handler(request):
        echoed = f"invalid credential {secret} (header {request.headers['Authorization']})"
        return httpx.Response(status, json={"error": {"message": echoed}})

    auth = "basic" if credential_id == "cred-basic" else "bearer"
    with pytest.raises((RetryableError, PermanentError)) as info:
        await connector(store, handler, auth=auth).call(step(credential_id=credential_id))
    assert secret not in str(info.value) and "[REDACTED]" in str(info.value)


async def test_service_message_is_cut_at_500_characters(store):
    def handler(request):
        return httpx.Response(400, json={"error": "x" * 2000})

    with pytest.raises(PermanentError) as info:
        await connector(store, handler).call(step())
    assert info.value.message.count("x") == 500


@pytest.mark.parametrize(
    ("response", "output"),
    [
        (httpx.Response(200, text="accepted"), {"body": "accepted"}),
        (httpx.Response(201, json={"id": 7}), {"id": 7}),
        (httpx.Response(200, json=[1, 2]), {"result": [1, 2]}),
        (httpx.Response(204), {"body": ""}),
    ],
)
async def test_success_outputs(store, response, output):
    assert await connector(store, lambda request: response).call(step()) == output


@pytest.mark.parametrize(
    ("credential_id", "required", "error_type"),
    [(None, True, "CredentialMissing"), ("cred-nope", False, "CredentialNotFound")],
)
async def test_credential_problems_are_permanent_and_send_nothing(store, credential_id, required, error_type):
    seen = []
    conn = connector(store, lambda r: seen.append(r) or httpx.Response(200), credential_required=required)
    with pytest.raises(PermanentError) as info:
        await conn.call(step(credential_id=credential_id))
    assert info.value.error_type == error_type and seen == []


async def test_a_credential_missing_the_needed_field_is_permanent(store):
    conn = connector(store, lambda r: httpx.Response(200), auth="basic")
    with pytest.raises(PermanentError, match="'username'") as info:
        await conn.call(step(credential_id="cred-slack"))
    assert info.value.error_type == "CredentialInvalid" and TOKEN not in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", 1.0),
        (" 120 ", 120.0),
        ("1.5", 1.5),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("tomorrow", None),
        (None, None),
        ("", None),
    ],
)
def test_retry_after(value, expected):
    assert retry_after_s(value, now=datetime(2015, 10, 21, 7, 28, tzinfo=UTC)) == expected


@pytest.mark.parametrize(
    ("base", "overrides", "service", "expected"),
    [
        (None, "", "slack", None),
        ("http://127.0.0.1:5070", "", "asana", ("http://127.0.0.1:5070/asana/create_task", False)),
        (None, "slack=https://slack.com/api", "slack", ("https://slack.com/api/create_task", True)),
        ("http://sb", "slack=https://slack.com/api, asana=https://app.asana.com/api/1.0", "asana",
         ("https://app.asana.com/api/1.0/create_task", True)),
        ("http://sb/", "slack=https://slack.com/api", "trello", ("http://sb/trello/create_task", False)),
    ],
)  # fmt: skip
def test_service_profiles(base, overrides, service, expected):
    profile = service_profiles(base, overrides).get(service)
    got = None if profile is None else (profile.endpoint("create_task")[1], profile.credential_required)
    assert got == expected


@pytest.mark.parametrize("spec", ["slack", "slack=", "=https://x", "slack=ftp://x", "slack=https://a,bad"])
def test_malformed_service_urls(spec):
    with pytest.raises(ValueError, match="FLOWLEDGER_SERVICE_URLS"):
        parse_service_urls(spec)


def test_services_token_endpoints_come_from_configuration():
    profiles = service_profiles(
        "http://sb", "slack=https://slack.com/api", "slack=https://slack.com/api/oauth.v2.access"
    )
    assert profiles.get("slack").token_url == "https://slack.com/api/oauth.v2.access"
    assert profiles.get("asana").token_url is None
    with pytest.raises(ValueError, match="FLOWLEDGER_SERVICE_TOKEN_URLS entry 'slack'"):
        service_profiles(None, "", "slack")
