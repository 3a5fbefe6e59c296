"""Connectors that need no catalog profile: webhook, email, delay, transform, filter.

Bad parameters are a ``PermanentError`` of type ``InvalidParams``. The executor
renders templates and evaluates conditions before the call, so transform and
filter only pass their rendered parameters through.
"""

import asyncio
import math
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import aiosmtplib
import httpx

from connectors.base import ConnectorError, PermanentError, RetryableError, StepCall
from connectors.credentials import CredentialStore
from connectors.http import scrub, send

MAX_DELAY_S = 3600.0


def invalid(call: StepCall, problem: str) -> PermanentError:
    return PermanentError(f"{call.service}.{call.action}: {problem}", error_type="InvalidParams")


class WebhookConnector:
    """POST ``params["body"]`` (or every parameter but ``url``) as JSON to ``params["url"]``."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def call(self, call: StepCall) -> dict[str, Any]:
        url = call.params.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise invalid(call, "params.url must be an http(s) URL")
        body = call.params["body"] if "body" in call.params else {k: v for k, v in call.params.items() if k != "url"}
        headers = {"Idempotency-Key": call.idempotency_key, "Accept": "application/json"}
        return await send(
            self.client, "POST", url, service=call.service, params=body, headers=headers, timeout_s=call.timeout_s
        )


class EmailConnector:
    """Send one message over SMTP: params ``to`` (address or list), ``subject``, ``body``, optional ``from``.

    SMTP replies 4xx are retryable (``SMTPTransient``), 5xx permanent
    (``SMTPPermanent``; a refused login is ``Unauthorized``); an unreachable or
    silent server is retryable (``ConnectError`` / ``Timeout``). SMTP codes go in
    the message, not in ``status_code``, which holds HTTP statuses only.
    """

    def __init__(
        self,
        credential_store: CredentialStore | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 25,
        starttls: bool = False,
        username: str | None = None,
        sender: str = "flowledger@localhost",
    ) -> None:
        self.credentials = credential_store
        self.host, self.port, self.starttls = host, port, starttls
        self.username, self.sender = username, sender

    async def call(self, call: StepCall) -> dict[str, Any]:
        message, recipients = self._message(call)
        password = self._password(call)
        try:
            refused, _ = await aiosmtplib.send(
                message, hostname=self.host, port=self.port, start_tls=self.starttls,
                username=self.username if password else None, password=password, timeout=call.timeout_s,
            )  # fmt: skip
        except aiosmtplib.SMTPException as exc:
            raise smtp_error(exc, [password] if password else []) from exc
        except OSError as exc:
            raise RetryableError(f"smtp {self.host}:{self.port} unreachable: {exc}", error_type="ConnectError") from exc
        return {"message_id": message["Message-ID"], "accepted": [r for r in recipients if r not in refused]}

    def _message(self, call: StepCall) -> tuple[EmailMessage, list[str]]:
        params = call.params
        to = params.get("to")
        recipients = [to] if isinstance(to, str) else to
        if not recipients or not all(isinstance(r, str) and "@" in r for r in recipients):
            raise invalid(call, "params.to must be an address or a list of addresses")
        for name in ("subject", "body"):
            if not isinstance(params.get(name), str):
                raise invalid(call, f"params.{name} must be a string")
        message = EmailMessage()
        message["From"] = params.get("from") or self.sender
        message["To"] = ", ".join(recipients)
        message["Subject"] = params["subject"]
        message["Message-ID"] = make_msgid(domain="flowledger")
        message.set_content(params["body"])
        return message, list(recipients)

    def _password(self, call: StepCall) -> str | None:
        if not call.credential_id:
            return None
        if self.credentials is None:
            raise PermanentError("email: no credential store configured", error_type="CredentialMissing")
        secret = self.credentials.get(call.tenant_id, call.credential_id)
        if not secret.get("password"):
            raise PermanentError("email: credential lacks field 'password'", error_type="CredentialInvalid")
        return secret["password"]


def smtp_error(exc: aiosmtplib.SMTPException, secrets: Sequence[str] = ()) -> ConnectorError:
    """The connector error an aiosmtplib failure stands for."""
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        return RetryableError(f"smtp timeout: {scrub(str(exc), secrets)}", error_type="Timeout")
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        return _by_code(min(codes) if codes else 550, f"every recipient refused: {scrub(detail, secrets)}")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return PermanentError(f"smtp login refused: {exc.code}", error_type="Unauthorized")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _by_code(exc.code, f"{exc.code} {scrub(exc.message, secrets)}")
    if isinstance(exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPServerDisconnected):
        return RetryableError(f"smtp unreachable: {scrub(str(exc), secrets)}", error_type="ConnectError")
    return PermanentError(f"smtp: {scrub(str(exc), secrets)}", error_type="SMTPError")


def _by_code(code: int, message: str) -> ConnectorError:
    if 400 <= code < 500:
        return RetryableError(f"smtp transient failure: {message}", error_type="SMTPTransient")
    return PermanentError(f"smtp permanent failure: {message}", error_type="SMTPPermanent")


class DelayConnector:
    """Wait ``params["seconds"]`` (>= 0, at most an hour); returns ``{"slept_s": seconds}``."""

    async def call(self, call: StepCall) -> dict[str, Any]:
        seconds = call.params.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
            raise invalid(call, "params.seconds must be a number")
        if seconds < 0:
            raise invalid(call, "params.seconds must be >= 0")
        slept = min(float(seconds), MAX_DELAY_S)
        await asyncio.sleep(slept)
        return {"slept_s": slept}


class TransformConnector:
    """The rendered ``params["output"]`` if given (a non-object under ``output``), else every parameter."""

    async def call(self, call: StepCall) -> dict[str, Any]:
        if "output" not in call.params:
            return dict(call.params)
        output = call.params["output"]
        return dict(output) if isinstance(output, dict) else {"output": output}


class FilterConnector:
    """``{"passed": params["passed"]}``: the executor evaluates the condition into a bool."""

    async def call(self, call: StepCall) -> dict[str, Any]:
        passed = call.params.get("passed")
        if not isinstance(passed, bool):
            raise invalid(call, "params.passed must be a boolean (the evaluated condition)")
        return {"passed": passed}
