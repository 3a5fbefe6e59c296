"""``flowledger bench generation``: sentences -> workflow definitions, in process and through the API.

Sentences are the recipe texts of the labelled development set in the shared
data (the first ``--sentences``). Two measurements:

* **in process**: ``Detector.detect`` alone and ``detect`` + ``generate``, for
  the learned and the keyword detector, after start-up (the learned one is
  trained first; its training time is printed);
* **through the API**: its own broker and API (ClickHouse embedded), one
  tenant with a few defined workflows so the history query has rows; every
  sentence posted to ``POST /api/workflows/automation/generate`` one after
  another; the client's round trip and the server's own ``elapsed_ms``. The
  first request trains the detector and is reported on its own. The history
  of a tenant is cached for 30 s, so most of these requests use it cached;
  ``api_history_uncached_*`` is one request from each of 20 other tenants,
  each querying the projections.

Sentences the generator refuses (no action found) are counted, not timed.
"""

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from domain.catalog import load_catalog
from domain.generation import GenerationError, generate
from domain.intent import Detector
from flowledger import progress
from flowledger.bench import percentile
from flowledger.broker import EmbeddedBroker, ensure_topics, free_port
from flowledger.detect import default_training_file, read_examples
from flowledger.procs import flowledger_command, spawn, stack_env, terminate, wait_http

KEY, TENANT = "bench-key", "bench"
COLD_TENANTS = 20
"""Tenants asked once each: their history is not cached yet, so each request queries the projections."""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _ms(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(values), 3), "p95_ms": round(percentile(values, 0.95), 3)}


def in_process(texts: list[str], detector: Detector) -> dict[str, Any]:
    detect_ms, generate_ms, refused = [], [], 0
    for text in progress.bar("in process", len(texts), "text", iterable=texts):
        t0 = time.perf_counter()
        found = detector.detect(text)
        t1 = time.perf_counter()
        try:
            generate(text, found, detector.catalog)
        except GenerationError:
            refused += 1
            continue
        t2 = time.perf_counter()
        detect_ms.append((t1 - t0) * 1000)
        generate_ms.append((t2 - t0) * 1000)
    return {"detect": _ms(detect_ms), "detect_and_generate": _ms(generate_ms), "refused": refused}


async def through_api(api: str, texts: list[str]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=60) as http:
        for i, service in enumerate(("gmail", "slack", "asana")):
            workflow = {"id": f"history-{i}", "name": "history", "trigger": {"service": service, "event": "new"},
                        "steps": [{"id": "s", "service": "google-sheets", "action": "add_row"}]}  # fmt: skip
            (await http.post("/api/workflows", json=workflow)).raise_for_status()
        t0 = time.perf_counter()
        first = await http.post("/api/workflows/automation/generate", json={"user_input": texts[0]})
        first_ms = (time.perf_counter() - t0) * 1000
        first.raise_for_status()
        client_ms, server_ms, refused = [], [], 0
        for text in progress.bar("through the API", len(texts), "text", iterable=texts):
            t0 = time.perf_counter()
            r = await http.post("/api/workflows/automation/generate", json={"user_input": text})
            elapsed = (time.perf_counter() - t0) * 1000
            if r.status_code == 422:
                refused += 1
                continue
            r.raise_for_status()
            client_ms.append(elapsed)
            server_ms.append(r.json()["elapsed_ms"])
            detector = r.json()["detector"]
        cold_ms = []
        for i in range(COLD_TENANTS):
            t0 = time.perf_counter()
            r = await http.post("/api/workflows/automation/generate", json={"user_input": texts[i]},
                                headers={"Authorization": f"Bearer cold-{i}"})  # fmt: skip
            cold_ms.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
    return {"first_request_ms": round(first_ms, 1), "client": _ms(client_ms), "server": _ms(server_ms),
            "cold_history": _ms(cold_ms), "refused": refused, "detector": detector}  # fmt: skip


def bench_generation(*, sentences: int) -> int:
    path = default_training_file()
    if path is None:
        say("bench generation: the labelled recipes (detection/zapier_dev.jsonl in the shared data) are not there")
        return 1
    examples = read_examples(path)
    texts = [e.text for e in examples][:sentences]
    catalog = load_catalog()
    t0 = time.perf_counter()
    learned = Detector.train(catalog, examples)
    train_s = time.perf_counter() - t0
    say(f"trained on {len(examples)} recipes in {train_s:.1f} s; {len(texts)} sentences")
    result: dict[str, Any] = {"bench": "generation", "sentences": len(texts), "train_s": round(train_s, 2)}
    for name, detector in (("learned", learned), ("keyword", Detector(catalog))):
        figures = in_process(texts, detector)
        say(f"in process, {name}: {figures}")
        result[f"{name}_detect_p95_ms"] = figures["detect"]["p95_ms"]
        result[f"{name}_generate_p95_ms"] = figures["detect_and_generate"]["p95_ms"]
    with tempfile.TemporaryDirectory(prefix="flowledger-bench-gen-") as tmp, EmbeddedBroker() as broker:
        asyncio.run(ensure_topics(broker.bootstrap))
        api_port = free_port()
        keys = ",".join([f"{KEY}={TENANT}", *(f"cold-{i}=cold-{i}" for i in range(COLD_TENANTS))])
        env = stack_env(broker.bootstrap, tmp, api_port, keys)
        serve = spawn(flowledger_command("serve"), env, log=Path(tmp) / "serve.log")
        try:
            wait_http(f"http://127.0.0.1:{api_port}/healthz", 60, {"serve": serve})
            figures = asyncio.run(through_api(f"http://127.0.0.1:{api_port}", texts))
        finally:
            terminate(serve)
    say(f"through the API: {figures}")
    result.update(
        api_first_request_ms=figures["first_request_ms"],
        api_p50_ms=figures["client"]["p50_ms"],
        api_p95_ms=figures["client"]["p95_ms"],
        api_server_p95_ms=figures["server"]["p95_ms"],
        api_history_uncached_p95_ms=figures["cold_history"]["p95_ms"],
        refused=figures["refused"],
    )
    print(orjson.dumps(result).decode(), flush=True)
    return 0
