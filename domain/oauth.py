"""OAuth 2.0 credentials and the refresh-token grant (RFC 6749 sections 5 and 6), as pure functions.

A stored credential is a mapping of strings. Besides the plain forms
(``token``, ``api_key``, ``username`` and ``password``) it may be an OAuth
credential:

=================  ===========================================================
field              meaning
=================  ===========================================================
``access_token``   what calls present (``Authorization: Bearer ...``)
``refresh_token``  what buys a new access token at the token endpoint
``token_url``      the token endpoint (else the one the service profile knows)
``expires_at``     when the access token expires: RFC 3339 or epoch seconds
``client_id``      sent with the grant, for providers that want it
``client_secret``  likewise (in the form body)
``scope``          likewise
=================  ===========================================================

A credential is *refreshable* when it holds a refresh token and a token
endpoint is known. It is *due* for a refresh when it is refreshable and has
no access token yet, or its ``expires_at`` is less than ``REFRESH_EARLY_S``
away. The grant is a form ``grant_type=refresh_token&refresh_token=...``; the
answer is read by ``read_token_answer``: a ``Grant`` (a new access token,
maybe a rotated refresh token, maybe a lifetime) or a ``Refusal``, retryable
when the endpoint was only unavailable (429, 5xx) and final when it refused
the grant (``invalid_grant``: the refresh token is revoked or expired).

>>> secret = {"access_token": "a1", "refresh_token": "r1", "token_url": "https://idp.test/token"}
>>> refreshable(secret), due(secret, now=0.0)
(True, False)
>>> answer = read_token_answer(200, {"access_token": "a2", "expires_in": 3600, "token_type": "Bearer"}, now=0.0)
>>> refreshed(secret, answer) == {**secret, "access_token": "a2", "expires_at": "1970-01-01T01:00:00Z"}
True
>>> read_token_answer(400, {"error": "invalid_grant"}, now=0.0).retryable
False
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

REFRESH_EARLY_S = 60.0
"""An access token this close to its ``expires_at`` is refreshed before the call, not after a 401."""
OAUTH_FIELDS = ("access_token", "refresh_token", "token_url", "expires_at", "client_id", "client_secret", "scope")
GRANT_EXTRAS = ("client_id", "client_secret", "scope")
"""Fields of the credential sent along with the refresh token when present."""
SECRET_FIELDS = ("access_token", "refresh_token", "client_secret")


@dataclass(frozen=True)
class Grant:
    """A token endpoint's answer that gives a new access token."""

    access_token: str
    refresh_token: str | None = None
    """A rotated refresh token, when the endpoint sent one (the old one is then dead)."""
    expires_at: float | None = None
    """Epoch seconds, from ``expires_in``."""


@dataclass(frozen=True)
class Refusal:
    """A token endpoint's answer that gives no access token."""

    status: int
    error: str
    """The OAuth error code (``invalid_grant``, ``invalid_client`` ...) or what was wrong with the answer."""
    description: str = ""
    retryable: bool = False
    retry_after_s: float | None = None

    def explain(self) -> str:
        return f"{self.status} {self.error}" + (f" ({self.description})" if self.description else "")


def token_endpoint(secret: Mapping[str, str], default: str | None = None) -> str | None:
    """The credential's own ``token_url``, else ``default`` (the service profile's)."""
    return secret.get("token_url") or default or None


def refreshable(secret: Mapping[str, str], token_url: str | None = None) -> bool:
    """A refresh token and a token endpoint (the credential's, else ``token_url``)."""
    return bool(secret.get("refresh_token")) and token_endpoint(secret, token_url) is not None


def parse_time(value: str) -> float:
    """Epoch seconds from RFC 3339 (a zone required) or a number of epoch seconds; ValueError otherwise.

    >>> parse_time("2026-01-01T00:00:00Z"), parse_time("1767225600")
    (1767225600.0, 1767225600.0)
    """
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return when.timestamp()


def format_time(epoch_s: float) -> str:
    """RFC 3339 in UTC, to the second."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expires_at(secret: Mapping[str, str]) -> float | None:
    """The access token's expiry in epoch seconds; None when not given or unreadable."""
    value = secret.get("expires_at")
    if not value:
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def due(secret: Mapping[str, str], *, now: float, token_url: str | None = None, early_s: float = REFRESH_EARLY_S
        ) -> bool:  # fmt: skip
    """Refresh before calling: refreshable, and no access token yet or one about to expire."""
    if not refreshable(secret, token_url):
        return False
    if not secret.get("access_token"):
        return True
    expiry = expires_at(secret)
    return expiry is not None and expiry - now <= early_s


def grant_form(secret: Mapping[str, str]) -> dict[str, str]:
    """The form body of the refresh-token grant (RFC 6749 section 6)."""
    form = {"grant_type": "refresh_token", "refresh_token": secret["refresh_token"]}
    form.update({name: secret[name] for name in GRANT_EXTRAS if secret.get(name)})
    return form


def read_token_answer(status: int, body: Any, *, now: float, retry_after_s: float | None = None) -> Grant | Refusal:
    """What a token endpoint's answer (its status and JSON body, None if not JSON) means."""
    fields = body if isinstance(body, Mapping) else {}
    if 200 <= status < 300:
        return _grant(status, fields, now)
    error = fields.get("error")
    code = error if isinstance(error, str) and error else f"http_{status}"
    described = fields.get("error_description")
    description = described if isinstance(described, str) else ""
    retryable = status == 429 or status == 408 or status >= 500
    return Refusal(status, code, description, retryable, retry_after_s if retryable else None)


def _grant(status: int, fields: Mapping[str, Any], now: float) -> Grant | Refusal:
    access_token = fields.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        return Refusal(status, "invalid_response", "the answer has no access_token")
    token_type = fields.get("token_type")
    if isinstance(token_type, str) and token_type.lower() != "bearer":
        return Refusal(status, "unsupported_token_type", f"token_type {token_type!r} is not Bearer")
    rotated = fields.get("refresh_token")
    lifetime = _seconds(fields.get("expires_in"))
    return Grant(
        access_token,
        rotated if isinstance(rotated, str) and rotated else None,
        now + lifetime if lifetime is not None else None,
    )


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int | float) and value > 0:
        return float(value)
    return None


def refreshed(secret: Mapping[str, str], grant: Grant) -> dict[str, str]:
    """The credential after ``grant``: the new access token, a rotated refresh token, the new expiry.

    Without an ``expires_in`` the old ``expires_at`` is dropped: it described the old token.
    """
    new = {k: v for k, v in secret.items() if k != "expires_at"}
    new["access_token"] = grant.access_token
    if grant.refresh_token:
        new["refresh_token"] = grant.refresh_token
    if grant.expires_at is not None:
        new["expires_at"] = format_time(grant.expires_at)
    return new


def secret_values(secret: Mapping[str, str]) -> list[str]:
    """The values to mask in anything said about this credential (every field but the token URL and times)."""
    return [v for k, v in secret.items() if v and k not in ("token_url", "expires_at", "scope")]


def problems(secret: Mapping[str, str]) -> list[str]:
    """What is wrong with the OAuth fields of a credential about to be stored (empty: nothing)."""
    found: list[str] = []
    url = secret.get("token_url")
    if url is not None and not url.startswith(("http://", "https://")):
        found.append("token_url must be an http(s) URL")
    when = secret.get("expires_at")
    if when is not None:
        try:
            parse_time(when)
        except ValueError:
            found.append("expires_at must be RFC 3339 with a time zone (2026-01-01T00:00:00Z) or epoch seconds")
    if "refresh_token" in secret and not secret["refresh_token"]:
        found.append("refresh_token is empty")
    return found
