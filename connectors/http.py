"""Calling a service's HTTP API, and translating its answers into connector errors.

How an answer maps (``raise_for_response``, ``send``):

=====================================  ===============================================
answer                                 error
=====================================  ===============================================
429                                    RetryableError RateLimited, Retry-After parsed
408, 504, ``httpx.TimeoutException``   RetryableError Timeout
other 5xx                              RetryableError UpstreamError
``httpx.NetworkError`` (connect ...)   RetryableError ConnectError
401 / 403                              PermanentError Unauthorized / Forbidden
404                                    PermanentError NotFound
other 4xx                              PermanentError (BadRequest, Conflict ...)
=====================================  ===============================================

Error messages quote the service (first 500 characters) after masking
well-known token formats and the exact secret values the call used.

A 401 to a call whose credential is an OAuth one with a refresh token
(``domain.oauth``) is not final: the connector refreshes the credential
(``connectors.oauth.TokenRefresher``, once for every call refused with the
same token) and sends the call once more with the new token, under the same
idempotency key. A token known to be expiring is refreshed before the call.
A refresh the token endpoint refuses is a ``CredentialRefreshFailed``
naming the credential; a second 401 after a refresh is final.
"""

import base64
import email.utils
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import httpx

from connectors.base import PermanentError, RetryableError, StepCall
from connectors.credentials import CredentialStore
from connectors.transport import AiohttpClient, json_body
from domain.oauth import refreshable, secret_values
from domain.redaction import REDACTED, redact

AuthKind = Literal["none", "bearer", "api_key_header", "basic"]
DEFAULT_PATH = "/{service}/{action}"
MESSAGE_LIMIT = 500
_BODYLESS = frozenset({"GET", "HEAD", "DELETE"})


@dataclass(frozen=True)
class ServiceProfile:
    """Where a service lives and how a credential is presented to it.

    ``endpoints`` maps an action to ``(method, path)``; an action not listed is
    ``POST`` to ``default_path`` (``/{service}/{action}``, formatted with both).
    With ``credential_required`` false a call without a credential goes out
    without one (a sandbox or gateway); with a credential it is always sent.
    ``token_url`` is the service's OAuth token endpoint, for credentials that
    do not name their own.
    """

    service: str
    base_url: str
    auth: AuthKind = "bearer"
    auth_header: str | None = None
    endpoints: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    default_path: str = DEFAULT_PATH
    credential_required: bool = True
    token_url: str | None = None

    @property
    def header_name(self) -> str:
        return self.auth_header or ("X-API-Key" if self.auth == "api_key_header" else "Authorization")

    def endpoint(self, action: str) -> tuple[str, str]:
        """(method, absolute URL) of an action."""
        method, path = self.endpoints.get(action) or ("POST", self.default_path)
        path = path.format(service=self.service, action=action)
        return method.upper(), f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"


def auth_headers(profile: ServiceProfile, secret: Mapping[str, str]) -> dict[str, str]:
    """The header carrying ``secret``; a missing field is a PermanentError naming the field."""

    def need(*names: str) -> str:
        for name in names:
            if secret.get(name):
                return secret[name]
        raise PermanentError(
            f"credential for {profile.service} lacks field {names[0]!r} needed for {profile.auth} auth",
            error_type="CredentialInvalid",
        )

    if profile.auth == "bearer":
        return {profile.header_name: f"Bearer {need('access_token', 'token', 'api_key')}"}
    if profile.auth == "api_key_header":
        return {profile.header_name: need("api_key", "token", "key")}
    if profile.auth == "basic":
        pair = f"{need('username')}:{need('password')}".encode()
        return {profile.header_name: f"Basic {base64.b64encode(pair).decode()}"}
    return {}


def retry_after_s(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP-date; None if absent or unparsable.

    >>> retry_after_s("7")
    7.0
    >>> retry_after_s("Wed, 21 Oct 2015 07:28:30 GMT", now=datetime(2015, 10, 21, 7, 28, tzinfo=UTC))
    30.0
    """
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """First ``MESSAGE_LIMIT`` characters of ``text`` with token formats and the given secret values masked."""
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return redact(text)[:MESSAGE_LIMIT]


class Answer(Protocol):
    """What is read of an HTTP answer: an ``httpx.Response`` or a ``connectors.transport.WireAnswer``."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def text(self) -> str: ...
    def json(self) -> Any: ...


def service_message(response: Answer) -> str:
    """The service's own words: a JSON ``error``/``message`` field if there is one, else the body text."""
    try:
        body = response.json()
    except ValueError:
        return response.text
    if isinstance(body, dict):
        error = body.get("error")
        for candidate in (error.get("message") if isinstance(error, dict) else error, body.get("message")):
            if isinstance(candidate, str) and candidate:
                return candidate
    return json.dumps(body)


def _type_name(status: int) -> str:
    words = re.findall(r"[A-Za-z0-9]+", httpx.codes.get_reason_phrase(status).title())
    return "".join(words) or f"HTTP{status}"


def raise_for_response(response: Answer, service: str, secrets: Iterable[str] = ()) -> None:
    """Raise the ConnectorError an unsuccessful answer stands for; return for 1xx-3xx."""
    status = response.status_code
    if status < 400:
        return
    detail = scrub(service_message(response), secrets)
    message = f"{service} answered {status} {httpx.codes.get_reason_phrase(status)}: {detail}"
    if status == 429:
        after = retry_after_s(response.headers.get("Retry-After"))
        raise RetryableError(message, error_type="RateLimited", status_code=status, retry_after_s=after)
    if status in (408, 504):
        raise RetryableError(message, error_type="Timeout", status_code=status)
    if status >= 500:
        raise RetryableError(message, error_type="UpstreamError", status_code=status)
    names = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}
    raise PermanentError(message, error_type=names.get(status, _type_name(status)), status_code=status)


def output_of(response: Answer) -> dict[str, Any]:
    """A 2xx body as a step output: a JSON object as is, other JSON under ``result``, text under ``body``."""
    try:
        body = response.json()
    except ValueError:
        return {"body": response.text}
    return body if isinstance(body, dict) else {"result": body}


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    service: str,
    params: Mapping[str, Any],
    headers: Mapping[str, str],
    timeout_s: float,
    secrets: Iterable[str] = (),
) -> dict[str, Any]:
    """One request; its output, or the mapped ConnectorError (transport failures included).

    Through an ``AiohttpClient`` the request goes to aiohttp without httpx's
    request and response models (the same request, answer and errors).
    """
    response: Answer
    try:
        if isinstance(client, AiohttpClient):
            if method in _BODYLESS:
                response = await client.wire.request(
                    method, url, headers=headers, params=_query(params), timeout_s=timeout_s
                )
            else:
                wire_headers = {**headers, "Content-Type": "application/json"}
                response = await client.wire.request(
                    method, url, headers=wire_headers, content=json_body(params), timeout_s=timeout_s
                )
        else:
            body: dict[str, Any] = {"params": _query(params)} if method in _BODYLESS else {"json": params}
            response = await client.request(method, url, headers=dict(headers), timeout=timeout_s, **body)
    except httpx.TimeoutException as exc:
        raise RetryableError(f"{service} did not answer within {timeout_s:g}s", error_type="Timeout") from exc
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise PermanentError(f"{service}: invalid URL: {scrub(str(exc), secrets)}", error_type="InvalidURL") from exc
    except httpx.NetworkError as exc:
        detail = scrub(str(exc) or type(exc).__name__, secrets)
        raise RetryableError(f"{service} unreachable: {detail}", error_type="ConnectError") from exc
    except httpx.TransportError as exc:
        detail = scrub(str(exc) or type(exc).__name__, secrets)
        raise RetryableError(f"{service} transport failure: {detail}", error_type="NetworkError") from exc
    raise_for_response(response, service, secrets)
    return output_of(response)


def _query(params: Mapping[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items() if v is not None}


class Tokens(Protocol):
    """What the connector needs to refresh OAuth credentials (``connectors.oauth.TokenRefresher``)."""

    def due(self, secret: dict[str, str], token_url: str | None = None) -> bool: ...

    async def refresh(
        self, tenant_id: str, credential_id: str, *, token_url: str | None = None, rejected: str | None = None
    ) -> dict[str, str]: ...


class HttpConnector:
    """A catalog service reached over HTTP, as its ``ServiceProfile`` describes.

    With ``tokens`` a refreshable credential refused with a 401 is refreshed and the call sent once more.
    """

    def __init__(
        self,
        profile: ServiceProfile,
        credential_store: CredentialStore,
        client: httpx.AsyncClient,
        tokens: Tokens | None = None,
    ) -> None:
        self.profile = profile
        self.credentials = credential_store
        self.client = client
        self.tokens = tokens

    async def call(self, call: StepCall) -> dict[str, Any]:
        secret = self._secret(call)
        refresh = self._refreshable(secret)
        if refresh and self.tokens and self.tokens.due(secret or {}, self.profile.token_url):
            secret = await self._refresh(call, rejected=None)
        try:
            return await self._send(call, secret)
        except PermanentError as exc:
            if exc.status_code != 401 or not refresh or secret is None:
                raise
            refused = exc
        secret = await self._refresh(call, rejected=secret.get("access_token"))
        try:
            return await self._send(call, secret)
        except PermanentError as exc:
            if exc.status_code != 401:
                raise
            raise PermanentError(
                f"{exc.message} (refused again after refreshing credential {call.credential_id!r})",
                error_type=exc.error_type, status_code=exc.status_code,
            ) from refused  # fmt: skip

    def _secret(self, call: StepCall) -> dict[str, str] | None:
        """The call's credential; None when it goes without one."""
        if self.profile.auth == "none":
            return None
        if call.credential_id:
            return self.credentials.get(call.tenant_id, call.credential_id)
        if self.profile.credential_required:
            raise PermanentError(
                f"{call.service} needs a credential: set credential_id on step {call.step_id}",
                error_type="CredentialMissing",
            )
        return None

    def _refreshable(self, secret: dict[str, str] | None) -> bool:
        return (
            self.tokens is not None
            and secret is not None
            and self.profile.auth == "bearer"
            and refreshable(secret, self.profile.token_url)
        )

    async def _refresh(self, call: StepCall, *, rejected: str | None) -> dict[str, str]:
        assert self.tokens is not None and call.credential_id is not None
        return await self.tokens.refresh(
            call.tenant_id, call.credential_id, token_url=self.profile.token_url, rejected=rejected
        )

    async def _send(self, call: StepCall, secret: dict[str, str] | None) -> dict[str, Any]:
        headers = {"Idempotency-Key": call.idempotency_key, "Accept": "application/json"}
        if secret is not None:
            headers.update(auth_headers(self.profile, secret))
        method, url = self.profile.endpoint(call.action)
        return await send(
            self.client, method, url, service=call.service, params=call.params, headers=headers,
            timeout_s=call.timeout_s, secrets=secret_values(secret or {}),
        )  # fmt: skip


def parse_service_urls(spec: str, setting: str = "FLOWLEDGER_SERVICE_URLS") -> dict[str, str]:
    """``slack=https://slack.com/api,asana=https://app.asana.com/api/1.0`` -> {service: URL}."""
    urls: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        service, sep, url = (s.strip() for s in entry.partition("="))
        if not sep or not service or not url.startswith(("http://", "https://")):
            raise ValueError(f"{setting} entry {entry!r} is not service=http(s)://url")
        urls[service] = url
    return urls


class ServiceProfiles:
    """Profiles from configuration: per-service URLs first, else the default base URL, else none.

    A service with its own URL is that service's API (``POST <url>/<action>``,
    credential required); the default base URL serves every service
    (``POST <url>/<service>/<action>``, as the sandbox does) and sends a
    credential only when the step names one. ``token_urls`` are services'
    OAuth token endpoints, for credentials that do not name their own.
    """

    def __init__(
        self, base_url_default: str | None, urls: Mapping[str, str], token_urls: Mapping[str, str] | None = None
    ) -> None:
        self.base_url_default = base_url_default or None
        self.urls = dict(urls)
        self.token_urls = dict(token_urls or {})

    def get(self, service: str) -> ServiceProfile | None:
        token_url = self.token_urls.get(service)
        if service in self.urls:
            return ServiceProfile(service, self.urls[service], default_path="/{action}", token_url=token_url)
        if self.base_url_default:
            return ServiceProfile(service, self.base_url_default, credential_required=False, token_url=token_url)
        return None


def service_profiles(base_url_default: str | None, overrides: str = "", token_urls: str = "") -> ServiceProfiles:
    """Profiles from ``FLOWLEDGER_SERVICE_BASE_URL``, ``FLOWLEDGER_SERVICE_URLS`` and
    ``FLOWLEDGER_SERVICE_TOKEN_URLS`` values."""
    return ServiceProfiles(
        base_url_default, parse_service_urls(overrides), parse_service_urls(token_urls, "FLOWLEDGER_SERVICE_TOKEN_URLS")
    )
