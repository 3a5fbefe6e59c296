"""The sandbox: one local HTTP server that answers as any catalog service would.

``POST /{service}/{action}`` with JSON parameters and an ``Idempotency-Key``
header waits a sampled latency (``domain.latency``), then meets the fault the
schedule gives it (``domain.faults``), else executes: ``200 {"id":
"<service>-<n>", "service", "action", "received": params}``. A key already
executed successfully gets the stored answer back, without a new execution.

Faults answer as services do: ``429`` with ``Retry-After: 1``, ``500``,
``503``, ``401``, ``400``, ``404`` with ``{"ok": false, "error": {"type",
"message"}}``; ``timeout`` answers ``504`` only after 60 s, so callers time out.

OAuth, as a provider's token endpoint does it (RFC 6749):
``POST /_sandbox/oauth/token`` with a form body. ``grant_type=
authorization_code&client_id=<service>&code=<any>`` stands for the consent a
person gives once and issues an access token and a refresh token for the
service; ``grant_type=refresh_token&refresh_token=...`` spends the refresh
token and issues a new pair (the refresh token rotates: a spent one is
``400 invalid_grant``, as is any refresh token of a service a ``401`` window
covers: its grant is revoked). Access tokens live ``token_lifetime_s``
(``expires_in``); an older one, or one issued before a ``token_expired``
window began, is refused with ``401 token_expired`` (and a
``WWW-Authenticate`` header). Calls without a token, or with one the sandbox
did not issue, are served as before, except inside a ``token_expired``
window (see ``domain.faults``).

With ``deterministic`` the same call (service, action, request body) always
takes as long and answers the same id: its latency is drawn from a generator
seeded by the seed and the call, its id is a digest of the call. Two versions
of a workflow given the same inputs then meet the same service latencies
(common random numbers), down to the steps that read earlier outputs, and
what differs between their runs is the workflow, not the draw. Across calls
the latencies still follow the model's distribution.

``GET /_sandbox/stats`` counts calls, executions (per key), faults (per key
too) and tokens issued, refreshed and refused; ``PUT /_sandbox/faults``
replaces the schedule, its times counted from then.
"""

import asyncio
import hashlib
import itertools
import logging
import os
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from domain.faults import Schedule, fault_for, parse_schedule, revoked
from domain.latency import LatencyModel, parse_latency

log = logging.getLogger(__name__)

TIMEOUT_FAULT_S = 60.0
TOKEN_LIFETIME_S = 3600.0
TOKEN_EXPIRED_HEADERS = {
    "WWW-Authenticate": 'Bearer error="invalid_token", error_description="The access token expired"'
}

# fault -> (status, error type, message template, extra headers)
FAULT_ANSWERS: dict[str, tuple[int, str, str, dict[str, str]]] = {
    "429": (429, "rate_limited", "Rate limit exceeded for {service}; retry after 1 second", {"Retry-After": "1"}),
    "500": (500, "internal_error", "{service} encountered an unexpected error", {}),
    "503": (503, "service_unavailable", "{service} is temporarily unavailable, try again later", {}),
    "timeout": (504, "gateway_timeout", "{service} did not answer in time", {}),
    "401": (401, "invalid_auth", "Invalid authentication credentials for {service}", {}),
    "token_expired": (401, "token_expired", "The access token expired; refresh it", TOKEN_EXPIRED_HEADERS),
    "400": (400, "invalid_request", "Invalid parameters for {service}.{action}", {}),
    "404": (404, "not_found", "No such {service} resource for {action}", {}),
}


class Tokens:
    """The OAuth tokens a sandbox issued: access token -> (service, when), live refresh token -> service."""

    def __init__(self, lifetime_s: float, clock: Callable[[], float]) -> None:
        self.lifetime_s, self.clock = lifetime_s, clock
        self.access: dict[str, tuple[str, float]] = {}
        self.refresh: dict[str, str] = {}
        self.counts: Counter[str] = Counter()

    def issue(self, service: str, counted: str) -> dict[str, Any]:
        """A new token pair for ``service``, as a token endpoint's answer."""
        self.counts[counted] += 1
        access, refresh = f"sbx-at-{secrets.token_urlsafe(24)}", f"sbx-rt-{secrets.token_urlsafe(24)}"
        self.access[access] = (service, self.clock())
        self.refresh[refresh] = service
        return {"access_token": access, "token_type": "Bearer", "expires_in": int(self.lifetime_s),
                "refresh_token": refresh}  # fmt: skip

    def issued_at(self, authorization: str | None) -> float | None:
        """When the bearer token of an ``Authorization`` header was issued; None if not one of ours."""
        scheme, _, token = (authorization or "").partition(" ")
        found = self.access.get(token.strip()) if scheme.lower() == "bearer" else None
        return found[1] if found else None


class SandboxState:
    """Schedule, generator, tokens and counters of one sandbox; ``clock`` is monotonic seconds."""

    def __init__(
        self, faults: Schedule, latency: LatencyModel, seed: int | None, clock: Callable[[], float],
        token_lifetime_s: float = TOKEN_LIFETIME_S, deterministic: bool = False,
    ) -> None:  # fmt: skip
        self.latency, self.rng, self.clock = latency, random.Random(seed), clock
        self.seed, self.deterministic = seed, deterministic
        self.schedule, self.started = faults, clock()
        self.tokens = Tokens(token_lifetime_s, clock)
        self.calls = self.executions = 0
        self.by_key: Counter[str] = Counter()
        self.faults_injected: Counter[str] = Counter()
        self.faults_by_key: dict[str, Counter[str]] = {}
        self.answers: dict[str, dict[str, Any]] = {}
        self.ids = itertools.count(1)

    def replace_schedule(self, faults: Schedule) -> None:
        self.schedule, self.started = faults, self.clock()

    def delay_s(self, service: str, action: str, body: bytes) -> float:
        if not self.deterministic:
            return self.latency.sample_ms(self.rng) / 1000
        return (
            self.latency.sample_ms(random.Random(int.from_bytes(_digest(self.seed, service, action, body), "big")))
            / 1000
        )

    def fault(self, service: str, token_issued: float | None, key: str | None) -> str | None:
        """The fault a call meets (a token older than its lifetime: ``token_expired``), counted."""
        if token_issued is not None and self.clock() - token_issued >= self.tokens.lifetime_s:
            fault: str | None = "token_expired"
        else:
            issued_s = None if token_issued is None else token_issued - self.started
            fault = fault_for(self.schedule, service, self.clock() - self.started, self.rng, token_issued_s=issued_s)
        if fault is not None:
            self.faults_injected[fault] += 1
            if key:
                self.faults_by_key.setdefault(key, Counter())[fault] += 1
        return fault

    def revoked(self, service: str) -> bool:
        return revoked(self.schedule, service, self.clock() - self.started)

    def execute(self, service: str, action: str, params: Any, key: str | None, body: bytes = b"") -> dict[str, Any]:
        self.executions += 1
        number = _digest(self.seed, service, action, body).hex() if self.deterministic else next(self.ids)
        answer = {"id": f"{service}-{number}", "service": service, "action": action, "received": params}
        if key:
            self.by_key[key] += 1
            self.answers[key] = answer
        return answer

    def stats(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "executions": self.executions,
            "executions_by_key": dict(self.by_key),
            "faults_injected": dict(self.faults_injected),
            "faults_by_key": {key: dict(faults) for key, faults in self.faults_by_key.items()},
            "tokens": dict(self.tokens.counts),
        }


def _digest(seed: int | None, service: str, action: str, body: bytes) -> bytes:
    return hashlib.blake2b(f"{seed}|{service}|{action}|".encode() + body, digest_size=8).digest()


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, headers=headers, content_type="application/json")


def error_answer(status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json({"ok": False, "error": {"type": error_type, "message": message}}, status, headers)


def oauth_error(error: str, description: str) -> web.Response:
    """A token endpoint's refusal (RFC 6749 section 5.2)."""
    return _json({"error": error, "error_description": description}, 400, {"Cache-Control": "no-store"})


SANDBOX_STATE = web.AppKey("sandbox", SandboxState)


def create_sandbox_app(
    faults: Schedule = (),
    latency: LatencyModel | None = None,
    seed: int | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    timeout_fault_s: float = TIMEOUT_FAULT_S,
    token_lifetime_s: float = TOKEN_LIFETIME_S,
    deterministic: bool = False,
) -> web.Application:
    """The sandbox as an aiohttp application (its C HTTP parser: a fraction of an ASGI stack's CPU per call)."""
    state = SandboxState(faults, latency or parse_latency("zero"), seed, clock, token_lifetime_s, deterministic)
    app = web.Application()
    app[SANDBOX_STATE] = state

    async def stats(request: web.Request) -> web.Response:
        return _json(state.stats())

    async def put_faults(request: web.Request) -> web.Response:
        try:
            state.replace_schedule(parse_schedule(await request.read()))
        except ValueError as exc:
            return error_answer(422, "invalid_schedule", str(exc))
        return _json({"windows": len(state.schedule)})

    async def act(request: web.Request) -> web.Response:
        service, action = request.match_info["service"], request.match_info["action"]
        state.calls += 1
        body = await request.read()
        try:
            params = orjson.loads(body) if body else {}
        except ValueError:
            return error_answer(400, "invalid_json", "The request body is not JSON")
        delay_s = state.delay_s(service, action, body)
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        key = request.headers.get("Idempotency-Key")
        if key and key in state.answers:
            return _json(state.answers[key], headers={"Idempotent-Replayed": "true"})
        fault = state.fault(service, state.tokens.issued_at(request.headers.get("Authorization")), key)
        if fault is None:
            return _json(state.execute(service, action, params, key, body))
        if fault == "timeout":
            await asyncio.sleep(timeout_fault_s)
        status, error_type, template, headers = FAULT_ANSWERS[fault]
        return error_answer(status, error_type, template.format(service=service, action=action), headers)

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        await wait(state)
        grant = str(form.get("grant_type") or "")
        if grant == "authorization_code":
            service, code = str(form.get("client_id") or ""), str(form.get("code") or "")
            if not service or not code:
                return oauth_error("invalid_request", "authorization_code needs client_id (the service) and code")
            return _json(state.tokens.issue(service, "authorized"), headers={"Cache-Control": "no-store"})
        if grant != "refresh_token":
            return oauth_error("unsupported_grant_type", "grant_type is authorization_code or refresh_token")
        spent = str(form.get("refresh_token") or "")
        owner = state.tokens.refresh.get(spent)
        if owner is None or state.revoked(owner):
            state.tokens.counts["refused"] += 1
            why = "unknown or already used" if owner is None else f"revoked: {owner} refuses these credentials"
            return oauth_error("invalid_grant", f"The refresh token is {why}")
        del state.tokens.refresh[spent]
        return _json(state.tokens.issue(owner, "refreshed"), headers={"Cache-Control": "no-store"})

    app.router.add_get("/_sandbox/stats", stats)
    app.router.add_put("/_sandbox/faults", put_faults)
    app.router.add_post("/_sandbox/oauth/token", token)
    app.router.add_post("/{service}/{action}", act)
    return app


async def wait(state: SandboxState) -> None:
    """The sampled latency of one answer."""
    delay_s = state.latency.sample_ms(state.rng) / 1000
    if delay_s > 0:
        await asyncio.sleep(delay_s)


def run_sandbox(
    host: str = "127.0.0.1",
    port: int = 5070,
    faults_path: Path | None = None,
    latency_spec: str = "trace",
    seed: int | None = None,
    deterministic: bool = False,
) -> None:
    """Serve the sandbox until interrupted (SIGINT or SIGTERM)."""
    faults = parse_schedule(faults_path.read_text()) if faults_path else ()
    latency = parse_latency(latency_spec, environ=os.environ)
    print(
        f"sandbox on http://{host}:{port}: {len(faults)} fault windows; latency {latency.source} "
        f"(median {latency.median_ms:.1f} ms, p99 {latency.p99_ms:.1f} ms)",
        flush=True,
    )
    app = create_sandbox_app(faults, latency, seed, deterministic=deterministic)
    web.run_app(app, host=host, port=port, print=None, access_log=None, shutdown_timeout=1)
