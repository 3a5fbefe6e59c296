import asyncio
import email
import json
import math

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from connectors.base import PermanentError, RetryableError, StepCall
from connectors.builtin import (
    MAX_DELAY_S,
    DelayConnector,
    EmailConnector,
    FilterConnector,
    TransformConnector,
    WebhookConnector,
)
from connectors.credentials import CredentialStore
from connectors.http import HttpConnector, service_profiles
from connectors.registry import ConnectorRegistry
from flowledger.broker import free_port

PASSWORD = "smtp-pa55word-q8z"


def step(service, params, **overrides):
    fields = {"tenant_id": "acme", "workflow_id": "wf", "run_id": "run-1", "step_id": "s1", "attempt": 1}
    return StepCall(**{**fields, "service": service, "action": "run", "params": params, **overrides})


def webhook(handler):
    return WebhookConnector(httpx.AsyncClient(transport=httpx.MockTransport(handler)))


@pytest.mark.parametrize(
    ("params", "sent"),
    [
        ({"url": "https://hooks.test/x", "body": {"a": 1}}, {"a": 1}),
        ({"url": "https://hooks.test/x", "a": 1, "b": [2]}, {"a": 1, "b": [2]}),
        ({"url": "https://hooks.test/x", "body": [1, 2]}, [1, 2]),
    ],
)
async def test_webhook_posts_json(params, sent):
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, text="ok")

    assert await webhook(handler).call(step("webhook", params)) == {"body": "ok"}
    assert (seen[0].method, str(seen[0].url)) == ("POST", "https://hooks.test/x")
    assert json.loads(seen[0].content) == sent
    assert seen[0].headers["Idempotency-Key"] == "acme:run-1:s1:1"


@pytest.mark.parametrize(
    ("answer", "error", "error_type"),
    [
        (httpx.Response(429, headers={"Retry-After": "2"}), RetryableError, "RateLimited"),
        (httpx.Response(503), RetryableError, "UpstreamError"),
        (httpx.Response(400, json={"error": "bad"}), PermanentError, "BadRequest"),
        (httpx.ConnectError("refused"), RetryableError, "ConnectError"),
    ],
)
async def test_webhook_errors_map_like_http(answer, error, error_type):
    def handler(request):
        if isinstance(answer, Exception):
            raise answer
        return answer

    with pytest.raises(error) as info:
        await webhook(handler).call(step("webhook", {"url": "https://hooks.test/x"}))
    assert info.value.error_type == error_type


@pytest.mark.parametrize("params", [{}, {"url": "ftp://x"}, {"url": 3}])
async def test_webhook_needs_an_http_url(params):
    with pytest.raises(PermanentError, match="params.url") as info:
        await webhook(lambda r: httpx.Response(200)).call(step("webhook", params))
    assert info.value.error_type == "InvalidParams"


class Recorder:
    """An SMTP handler that keeps messages and refuses the recipients it is told to."""

    def __init__(self):
        self.messages = []
        self.refuse = {"busy@example.com": "450 4.2.1 Mailbox busy", "nobody@example.com": "550 5.1.1 No such user"}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content)))
        return "250 Message accepted"


def authenticate(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login == b"bot" and data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp():
    recorder = Recorder()
    controller = Controller(
        recorder, hostname="127.0.0.1", port=free_port(), authenticator=authenticate, auth_require_tls=False
    )
    controller.start()
    yield controller, recorder
    controller.stop()


@pytest.fixture
def store(tmp_path):
    store = CredentialStore(tmp_path, environ={})
    store.put("acme", "smtp", {"password": PASSWORD})
    store.put("acme", "smtp-wrong", {"password": "not-" + PASSWORD})
    return store


@pytest.mark.parametrize(
    ("to", "credential_id", "accepted"),
    [
        ("ops@example.com", None, ["ops@example.com"]),
        (["a@example.com", "b@example.com"], None, ["a@example.com", "b@example.com"]),
        (["a@example.com", "nobody@example.com"], "smtp", ["a@example.com"]),
    ],
)
async def test_email_is_delivered(smtp, store, to, credential_id, accepted):
    controller, recorder = smtp
    conn = EmailConnector(store, host="127.0.0.1", port=controller.port, username="bot")
    params = {"to": to, "subject": "Disk almost full", "body": "85% used", "from": "alerts@example.com"}
    output = await conn.call(step("email", params, credential_id=credential_id))
    assert output["accepted"] == accepted and output["message_id"].startswith("<")
    rcpt_tos, message = recorder.messages[-1]
    assert rcpt_tos == accepted
    assert (message["Subject"], message["From"], message["Message-ID"]) == (
        "Disk almost full", "alerts@example.com", output["message_id"],
    )  # fmt: skip
    assert message.get_payload().strip() == "85% used"


@pytest.mark.parametrize(
    ("to", "credential_id", "error", "error_type"),
    [
        ("busy@example.com", None, RetryableError, "SMTPTransient"),
        ("nobody@example.com", None, PermanentError, "SMTPPermanent"),
        ("ops@example.com", "smtp-wrong", PermanentError, "Unauthorized"),
    ],
)
async def test_email_smtp_errors(smtp, store, to, credential_id, error, error_type):
    controller, _ = smtp
    conn = EmailConnector(store, host="127.0.0.1", port=controller.port, username="bot")
    with pytest.raises(error) as info:
        await conn.call(step("email", {"to": to, "subject": "s", "body": "b"}, credential_id=credential_id))
    assert type(info.value) is error and info.value.error_type == error_type
    assert PASSWORD not in str(info.value)


async def test_email_to_a_closed_port_is_retryable(store):
    conn = EmailConnector(store, host="127.0.0.1", port=free_port())
    with pytest.raises(RetryableError) as info:
        await conn.call(step("email", {"to": "a@example.com", "subject": "s", "body": "b"}, timeout_s=2))
    assert info.value.error_type == "ConnectError"


@pytest.mark.parametrize(
    "params",
    [
        {"subject": "s", "body": "b"},
        {"to": "not-an-address", "subject": "s", "body": "b"},
        {"to": "a@x.io", "body": "b"},
    ],
)
async def test_email_invalid_params(store, params):
    with pytest.raises(PermanentError) as info:
        await EmailConnector(store).call(step("email", params))
    assert info.value.error_type == "InvalidParams"


@pytest.mark.parametrize(("seconds", "slept"), [(0, 0.0), (0.01, 0.01), (2, 2.0), (86_400, MAX_DELAY_S)])
async def test_delay(monkeypatch, seconds, slept):
    waits = []

    async def fake_sleep(s):
        waits.append(s)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    assert await DelayConnector().call(step("delay", {"seconds": seconds})) == {"slept_s": slept}
    assert waits == [slept]


async def test_delay_really_sleeps():
    loop = asyncio.get_running_loop()
    start = loop.time()
    await DelayConnector().call(step("delay", {"seconds": 0.05}))
    assert loop.time() - start >= 0.05


@pytest.mark.parametrize("seconds", [-1, "1", True, None, math.nan, math.inf])
async def test_delay_invalid(seconds):
    with pytest.raises(PermanentError, match="seconds") as info:
        await DelayConnector().call(step("delay", {"seconds": seconds}))
    assert info.value.error_type == "InvalidParams"


@pytest.mark.parametrize(
    ("params", "output"),
    [
        ({"output": {"title": "x", "n": 2}}, {"title": "x", "n": 2}),
        ({"output": "text"}, {"output": "text"}),
        ({"title": "x"}, {"title": "x"}),
        ({}, {}),
    ],
)
async def test_transform(params, output):
    assert await TransformConnector().call(step("transform", params)) == output


@pytest.mark.parametrize(
    ("params", "output"), [({"passed": True}, {"passed": True}), ({"passed": False}, {"passed": False})]
)
async def test_filter(params, output):
    assert await FilterConnector().call(step("filter", params)) == output


@pytest.mark.parametrize("params", [{}, {"passed": "true"}, {"passed": 1}])
async def test_filter_needs_a_bool(params):
    with pytest.raises(PermanentError, match="passed"):
        await FilterConnector().call(step("filter", params))


@pytest.fixture
async def registry(store):
    profiles = service_profiles(None, "slack=https://slack.com/api")
    async with httpx.AsyncClient() as client:
        yield ConnectorRegistry(profiles, store, client)


@pytest.mark.parametrize(
    ("service", "kind"),
    [
        ("webhook", WebhookConnector),
        ("email", EmailConnector),
        ("delay", DelayConnector),
        ("transform", TransformConnector),
        ("filter", FilterConnector),
        ("slack", HttpConnector),
    ],
)
async def test_registry_maps_services(registry, service, kind):
    assert type(registry.for_service(service)) is kind
    assert registry.for_service(service) is registry.for_service(service)


async def test_registry_refuses_a_service_without_a_base_url(registry):
    with pytest.raises(PermanentError, match="no base URL configured for service asana"):
        registry.for_service("asana")


async def test_registry_from_env(store):
    env = {"FLOWLEDGER_SERVICE_BASE_URL": "http://127.0.0.1:5070", "FLOWLEDGER_SMTP_PORT": "2525"}
    async with httpx.AsyncClient() as client:
        registry = ConnectorRegistry.from_env(store, client, env)
        asana = registry.for_service("asana")
        email_conn = registry.for_service("email")
    assert isinstance(asana, HttpConnector) and asana.profile.endpoint("x")[1] == "http://127.0.0.1:5070/asana/x"
    assert isinstance(email_conn, EmailConnector) and email_conn.port == 2525
