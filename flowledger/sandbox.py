"""The sandbox: one local HTTP server that answers as any catalog service would.

``POST /{service}/{action}`` with JSON parameters and an ``Idempotency-Key``
header waits a sampled latency (``domain.latency``), then meets the fault the
schedule gives it (``domain.faults``), else executes: ``200 {"id":
"<service>-<n>", "service", "action", "received": params}``. A key already
executed successfully gets the stored answer back, without a new execution.

Faults answer as services do: ``429`` with ``Retry-After: 1``, ``500``,
``503``, ``401``, ``400``, ``404`` with ``{"ok": false, "error": {"type",
"message"}}``; ``timeout`` answers ``504`` only after 60 s, so callers time out.

``GET /_sandbox/stats`` counts calls, executions (per key) and faults;
``PUT /_sandbox/faults`` replaces the schedule, its times counted from then.
"""

import asyncio
import itertools
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

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

    def __init__(self, faults: Schedule, latency: LatencyModel, seed: int | None, clock: Callable[[], float]):
        self.latency, self.rng, self.clock = latency, random.Random(seed), clock
        self.schedule, self.started = faults, clock()
        self.calls = self.executions = 0
        self.by_key: Counter[str] = Counter()
        self.faults_injected: Counter[str] = Counter()
        self.answers: dict[str, dict[str, Any]] = {}
        self.ids = itertools.count(1)

    def replace_schedule(self, faults: Schedule) -> None:
        self.schedule, self.started = faults, self.clock()

    def fault(self, service: str) -> str | None:
        return fault_for(self.schedule, service, self.clock() - self.started, self.rng)

    def execute(self, service: str, action: str, params: Any, key: str | None) -> dict[str, Any]:
        self.executions += 1
        answer = {"id": f"{service}-{next(self.ids)}", "service": service, "action": action, "received": params}
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


def error_answer(status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"ok": False, "error": {"type": error_type, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def create_sandbox_app(
    faults: Schedule = (),
    latency: LatencyModel | None = None,
    seed: int | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    timeout_fault_s: float = TIMEOUT_FAULT_S,
) -> FastAPI:
    state = SandboxState(faults, latency or parse_latency("zero"), seed, clock)
    app = FastAPI(title="Flowledger sandbox", docs_url=None, redoc_url=None)
    app.state.sandbox = state

    @app.get("/_sandbox/stats")
    async def stats() -> dict[str, Any]:
        return state.stats()

    @app.put("/_sandbox/faults")
    async def put_faults(request: Request) -> JSONResponse:
        try:
            state.replace_schedule(parse_schedule(await request.body()))
        except ValueError as exc:
            return error_answer(422, "invalid_schedule", str(exc))
        return JSONResponse({"windows": len(state.schedule)})

    @app.post("/{service}/{action}")
    async def act(service: str, action: str, request: Request) -> JSONResponse:
        state.calls += 1
        try:
            params = await request.json() if await request.body() else {}
        except ValueError:
            return error_answer(400, "invalid_json", "The request body is not JSON")
        await asyncio.sleep(state.latency.sample_ms(state.rng) / 1000)
        key = request.headers.get("Idempotency-Key")
        if key and key in state.answers:
            return JSONResponse(state.answers[key], headers={"Idempotent-Replayed": "true"})
        fault = state.fault(service)
        if fault is None:
            return JSONResponse(state.execute(service, action, params, key))
        state.faults_injected[fault] += 1
        if fault == "timeout":
            await asyncio.sleep(timeout_fault_s)
        status, error_type, template, headers = FAULT_ANSWERS[fault]
        return error_answer(status, error_type, template.format(service=service, action=action), headers)

    return app


def run_sandbox(
    host: str = "127.0.0.1",
    port: int = 5070,
    faults_path: Path | None = None,
    latency_spec: str = "trace",
    seed: int | None = None,
) -> None:
    """Serve the sandbox until interrupted."""
    import uvicorn

    faults = parse_schedule(faults_path.read_text()) if faults_path else ()
    latency = parse_latency(latency_spec, environ=os.environ)
    print(
        f"sandbox on http://{host}:{port}: {len(faults)} fault windows; latency {latency.source} "
        f"(median {latency.median_ms:.1f} ms, p99 {latency.p99_ms:.1f} ms)",
        flush=True,
    )
    app = create_sandbox_app(faults, latency, seed)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=1)
