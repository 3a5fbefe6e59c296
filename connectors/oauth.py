"""Refreshing OAuth credentials: one refresh at a time per credential, stored before it is used.

``TokenRefresher.refresh(tenant_id, credential_id, rejected=...)`` POSTs the
credential's refresh token to its token endpoint (``grant_type=refresh_token``,
form-encoded), writes the new access token (and a rotated refresh token)
into the encrypted store, and returns the credential as stored.

* **Single flight.** Calls for one credential that arrive while a refresh is
  under way wait for that refresh and share its result; a call whose
  ``rejected`` token is no longer the stored one gets the stored credential
  without a new grant (another call refreshed it since). The grant runs as
  its own task: a step that times out while waiting does not cancel it, so
  a rotated refresh token is never lost between the endpoint and the store.
* **Across processes** the store's ``update`` is the arbiter: the new token
  is written only if the credential still holds the refresh token that was
  spent (else a person replaced it, and theirs is kept), and an
  ``invalid_grant`` answered while another process rotated the token first
  returns that process's token instead of failing.

Errors: ``CredentialRefreshFailed`` (permanent) when the endpoint refuses
the grant or the credential cannot be refreshed; ``RetryableError`` when the
endpoint is unreachable, slow, rate limited or failing (the step's retries
try again). Messages name the credential and the endpoint's OAuth error,
with every secret value masked; log lines name the tenant and credential id.
"""

import asyncio
import logging
import time
from collections.abc import Callable

import httpx

from connectors.base import RetryableError
from connectors.credentials import CredentialRefreshFailed, CredentialStore
from connectors.http import retry_after_s, scrub
from domain.oauth import Grant, Refusal, due, grant_form, read_token_answer, refreshed, secret_values, token_endpoint

log = logging.getLogger(__name__)

REFRESH_TIMEOUT_S = 10.0
Key = tuple[str, str]


class TokenRefresher:
    """Refreshes the OAuth credentials of one store; one instance per event loop (a worker has one)."""

    def __init__(
        self,
        store: CredentialStore,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
        timeout_s: float = REFRESH_TIMEOUT_S,
    ) -> None:
        self.store = store
        self.client = client
        self.clock = clock
        self.timeout_s = timeout_s
        self._flights: dict[Key, asyncio.Task[dict[str, str]]] = {}

    def due(self, secret: dict[str, str], token_url: str | None = None) -> bool:
        """Refresh before the call: no access token yet, or one about to expire."""
        return due(secret, now=self.clock(), token_url=token_url)

    async def refresh(
        self, tenant_id: str, credential_id: str, *, token_url: str | None = None, rejected: str | None = None
    ) -> dict[str, str]:
        """The credential with a fresh access token (``rejected``: the token a service just refused)."""
        secret = await self._join(tenant_id, credential_id, token_url, rejected)
        if rejected is not None and secret.get("access_token") == rejected:
            # The flight joined was about another token (an older one, or an expiry check): one of its own.
            secret = await self._join(tenant_id, credential_id, token_url, rejected)
        return secret

    async def _join(
        self, tenant_id: str, credential_id: str, token_url: str | None, rejected: str | None
    ) -> dict[str, str]:
        key = (tenant_id, credential_id)
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.create_task(self._refresh(tenant_id, credential_id, token_url, rejected))
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._landed(key, done))
        return await asyncio.shield(flight)

    def _landed(self, key: Key, flight: asyncio.Task[dict[str, str]]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            flight.exception()  # retrieved: every waiter may have given up

    async def _refresh(
        self, tenant_id: str, credential_id: str, token_url: str | None, rejected: str | None
    ) -> dict[str, str]:
        secret = self.store.get(tenant_id, credential_id)
        if rejected is not None and secret.get("access_token") != rejected:
            return secret  # refreshed since the refused call read it
        if rejected is None and not self.due(secret, token_url):
            return secret
        url = token_endpoint(secret, token_url)
        if url is None or not secret.get("refresh_token"):
            raise CredentialRefreshFailed(tenant_id, credential_id, "it has no refresh token or no token endpoint")
        answer = await self._post(url, secret, credential_id)
        if isinstance(answer, Refusal):
            return await self._refused(tenant_id, credential_id, secret, answer)
        stored = await asyncio.to_thread(self.store.update, tenant_id, credential_id, _written(secret, answer))
        log.info(
            "credential %r of tenant %r refreshed%s", credential_id, tenant_id,
            " (refresh token rotated)" if answer.refresh_token else "",
        )  # fmt: skip
        return stored

    async def _post(self, url: str, secret: dict[str, str], credential_id: str) -> Grant | Refusal:
        masked = secret_values(secret)
        try:
            response = await self.client.post(
                url, data=grant_form(secret), headers={"Accept": "application/json"}, timeout=self.timeout_s
            )
        except httpx.TimeoutException as exc:
            raise RetryableError(
                f"token endpoint timed out after {self.timeout_s:g}s (refreshing {credential_id!r})",
                error_type="Timeout",
            ) from exc
        except httpx.TransportError as exc:
            detail = scrub(str(exc) or type(exc).__name__, masked)
            raise RetryableError(
                f"token endpoint unreachable (refreshing {credential_id!r}): {detail}", error_type="ConnectError"
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        after = retry_after_s(response.headers.get("Retry-After"))
        return read_token_answer(response.status_code, body, now=self.clock(), retry_after_s=after)

    async def _refused(
        self, tenant_id: str, credential_id: str, secret: dict[str, str], refusal: Refusal
    ) -> dict[str, str]:
        answered = scrub(f"answered {refusal.explain()}", secret_values(secret))
        if refusal.retryable:
            kind = "RateLimited" if refusal.status == 429 else "UpstreamError"
            raise RetryableError(
                f"token endpoint {answered} (refreshing {credential_id!r})",
                error_type=kind, status_code=refusal.status, retry_after_s=refusal.retry_after_s,
            )  # fmt: skip
        if refusal.error == "invalid_grant":  # spent by another process that rotated it first?
            current = await asyncio.to_thread(self.store.get, tenant_id, credential_id)
            if current.get("refresh_token") != secret.get("refresh_token"):
                return current
        log.warning("credential %r of tenant %r: refresh refused: %s", credential_id, tenant_id, answered)
        raise CredentialRefreshFailed(tenant_id, credential_id, f"the token endpoint {answered}")


def _written(spent: dict[str, str], grant: Grant) -> Callable[[dict[str, str]], dict[str, str] | None]:
    """The store update: the grant applied, unless the credential no longer holds the refresh token spent."""

    def change(current: dict[str, str]) -> dict[str, str] | None:
        if current.get("refresh_token") != spent.get("refresh_token"):
            return None  # replaced meanwhile: keep what is there
        return refreshed(current, grant)

    return change
