"""The sandbox: one local HTTP server that answers as any catalog service would.

``POST /{service}/{action}`` with JSON parameters and an ``Idempotency-Key``
header waits a sampled latency (``domain.latency``), then meets the fault the
schedule gives it (``domain.faults``), else executes: ``200 {"id":
"<service>-<n>", "service", "action", "received": params}``. A key already
executed successfully gets the stored answer back, without a new execution.

Faults answer as services do: ``429`` with ``Retry-After: 1``, ``500``,
``503``, ``401``, ``400``, ``404`` with ``{"ok": false, "error": {"type",
"message"}}``; ``timeout`` answers ``504`` only after 60 s, so callers time out.

With ``deterministic`` the same call (service, action, request body) always
takes as long and answers the same id: its latency is drawn from a generator
seeded by the seed and the call, its id is a digest of the call. Two versions
of a workflow given the same inputs then meet the same service latencies
(common random numbers), down to the steps that read earlier outputs, and
what differs between their runs is the workflow, not the draw. Across calls
the latencies still follow the model's distribution.

``GET /_sandbox/stats`` counts calls, executions (per key) and faults;
``PUT /_sandbox/faults`` replaces the schedule, its times counted from then.
"""

import asyncio
import hashlib
import itertools
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from domain.faults import Schedule, fault_for, parse_schedule
from domain.latency import LatencyModel, parse_latency

log = logging.getLogger(__name__)

TIMEOUT_FAULT_S = 60.0

# fault -> (status, error type, message template, extra headers)
FAULT_ANSWERS: dict[str, tuple[int, str, str, dict[str, str]]] = {
    "429": (429, "rate_limited", "Rate limit exceeded for {service}; retry after 1 second", {"Retry-After": "1"}),
    "500": (500, "internal_error", "{service} encountered an unexpected error", {}),
    "503": (503, "service_unavailable", "{service} is temporarily unavailable, try again later", {}),
    "timeout": (504, "gateway_timeout", "{service} did not answer in time", {}),
    "401": (401, "invalid_auth", "Invalid or expired access token", {}),
    "400": (400, "invalid_request", "Invalid parameters for {service}.{action}", {}),
    "404": (404, "not_found", "No such {service} resource for {action}", {}),
}


class SandboxState:
    """Schedule, generator and counters of one sandbox; ``clock`` is monotonic seconds."""

    def __init__(
        self, faults: Schedule, latency: LatencyModel, seed: int | None, clock: Callable[[], float],
        deterministic: bool = False,
    ) -> None:  # fmt: skip
        self.latency, self.rng, self.clock = latency, random.Random(seed), clock
        self.seed, self.deterministic = seed, deterministic
        self.schedule, self.started = faults, clock()
        self.calls = self.executions = 0
        self.by_key: Counter[str] = Counter()
        self.faults_injected: Counter[str] = Counter()
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

    def fault(self, service: str) -> str | None:
        return fault_for(self.schedule, service, self.clock() - self.started, self.rng)

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
        }


def _digest(seed: int | None, service: str, action: str, body: bytes) -> bytes:
    return hashlib.blake2b(f"{seed}|{service}|{action}|".encode() + body, digest_size=8).digest()


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, headers=headers, content_type="application/json")


def error_answer(status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json({"ok": False, "error": {"type": error_type, "message": message}}, status, headers)


SANDBOX_STATE = web.AppKey("sandbox", SandboxState)


def create_sandbox_app(
    faults: Schedule = (),
    latency: LatencyModel | None = None,
    seed: int | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    timeout_fault_s: float = TIMEOUT_FAULT_S,
    deterministic: bool = False,
) -> web.Application:
    """The sandbox as an aiohttp application (its C HTTP parser: a fraction of an ASGI stack's CPU per call)."""
    state = SandboxState(faults, latency or parse_latency("zero"), seed, clock, deterministic)
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
        fault = state.fault(service)
        if fault is None:
            return _json(state.execute(service, action, params, key, body))
        state.faults_injected[fault] += 1
        if fault == "timeout":
            await asyncio.sleep(timeout_fault_s)
        status, error_type, template, headers = FAULT_ANSWERS[fault]
        return error_answer(status, error_type, template.format(service=service, action=action), headers)

    app.router.add_get("/_sandbox/stats", stats)
    app.router.add_put("/_sandbox/faults", put_faults)
    app.router.add_post("/{service}/{action}", act)
    return app


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
