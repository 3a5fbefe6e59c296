"""``flowledger bench dashboard``: the page in a real browser against the demo stack.

Starts ``flowledger up --demo`` on free ports in a temporary directory (its own
broker, ClickHouse, API, workers, sandbox and demo traffic), opens ``/`` in
headless Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright) and
measures, over ``--samples`` page loads: the first contentful paint and the
time to ``body[data-ready=true]`` (the first data drawn); and over as many runs
produced through the ingest route while one page is open: the live update
latency, from the wall-clock ms at which the run's first event was sent to the
``data-seen-at`` (the browser's ``Date.now()``) of its row. Browser and
producer share this machine's clock. The last line printed is one JSON object.

``--screenshots DIR`` also saves the overview, a run's timeline and a
troubleshooting session (opened by a sandbox outage of the demo's first lead
step) as PNG files.

The browser tests (``tests/browser``) use the same stack, installer and probes.
"""

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from flowledger.bench import percentile
from flowledger.broker import free_port
from flowledger.procs import alive, child_env, descendants, flowledger_command

CHROMIUM = Path("/usr/bin/chromium")
APT_PACKAGES = ("chromium", "fonts-dejavu-core")
"""Debian's browser, and a font so that text in screenshots is drawn (headless has no desktop fonts)."""
VIEWPORT = {"width": 1400, "height": 900}
TENANT = "default"
KEY_STORAGE = "flowledger.apiKey"

READY_PROBE = """
(() => {
  const mark = () => {
    if (window.__flReadyAt === undefined && document.body && document.body.dataset.ready === 'true') {
      window.__flReadyAt = performance.now();
    }
  };
  new MutationObserver(mark).observe(document, {attributes: true, subtree: true, attributeFilter: ['data-ready']});
})();
"""
"""Records ``performance.now()`` at the moment ``body[data-ready=true]`` is set (not when a poll notices it)."""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_chromium() -> Path:
    """``/usr/bin/chromium``, installed from Debian's packages when missing; RuntimeError with apt's output if not."""
    if CHROMIUM.exists():
        return CHROMIUM
    output = []
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", *APT_PACKAGES]):
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        output.append(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}")
        if result.returncode != 0:
            raise RuntimeError(f"installing Chromium failed ({result.returncode}):\n" + "\n".join(output)[-6000:])
    if not CHROMIUM.exists():
        raise RuntimeError(f"apt installed {APT_PACKAGES} but {CHROMIUM} is missing:\n" + "\n".join(output)[-6000:])
    return CHROMIUM


class DemoStack:
    """``flowledger up --demo`` as a child process: free ports, its own data dir, one API key (tenant ``default``).

    The supervisor runs in its own process group; ``stop`` asks it to stop its
    children in order (SIGTERM), kills what is left of the group and of the
    children it saw, and waits.
    """

    def __init__(self, data_dir: Path, *, log: Path | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = "fl_test_" + secrets.token_urlsafe(18)
        self.headers = {"Authorization": f"Bearer {self.key}"}
        self.log = log or data_dir / "up.log"
        self.sandbox_url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self._seen: set[int] = set()

    def start(self, timeout_s: float = 90) -> "DemoStack":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = child_env(
            FLOWLEDGER_DATA_DIR=str(self.data_dir), PYTHON_API_PORT=str(self.port), FLOWLEDGER_BROKER_PORT="0",
            FLOWLEDGER_API_KEYS=f"{self.key}={TENANT}", FLOWLEDGER_WORKER_HEARTBEAT_S="1",
        )  # fmt: skip
        for name in ("KAFKA_BOOTSTRAP_SERVERS", "CLICKHOUSE_URL", "FLOWLEDGER_API_HOST"):
            env.pop(name, None)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                flowledger_command("up", "--demo"), env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while "Ctrl-C stops everything" not in (text := self.log.read_text(errors="replace")):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"flowledger up --demo did not start:\n{text[-3000:]}")
            time.sleep(0.2)
        found = re.search(r"Sandbox:\s+(\S+)", text)
        self.sandbox_url = found.group(1) if found else ""
        self._remember_children()
        return self

    def wait_for_runs(self, count: int = 3, timeout_s: float = 90) -> None:
        """Until the demo's runs are projected (the page has something to show), finished ones among them."""
        deadline = time.monotonic() + timeout_s
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=10) as http:
            while True:
                finished = 0
                for workflow_id in ("new-lead-enrichment", "deploy-announcement", "important-email-to-asana"):
                    page = http.get(f"/api/workflows/{workflow_id}/runs", params={"status": "succeeded"})
                    finished += len(page.json().get("runs", [])) if page.status_code == 200 else 0
                if finished >= count:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the demo finished {finished} runs in {timeout_s:.0f}s")
                time.sleep(0.5)
        self._remember_children()

    def _remember_children(self) -> None:
        if self.proc is not None:
            self._seen |= descendants(self.proc.pid)

    def stop(self) -> list[int]:
        """Stop everything; returns the pids that had to be killed after the orderly stop."""
        if self.proc is None:
            return []
        self._remember_children()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                pass
        killed = []
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pid in sorted(self._seen):
            if alive(pid):
                killed.append(pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.proc.wait()
        return killed


@contextmanager
def demo_stack(data_dir: Path | None = None) -> Iterator[DemoStack]:
    with tempfile.TemporaryDirectory(prefix="flowledger-dashboard-") as tmp:
        stack = DemoStack(data_dir or Path(tmp) / "data")
        try:
            yield stack.start()
        finally:
            stack.stop()


def failing_run(workflow_id: str, run_id: str) -> list[dict[str, Any]]:
    """A run whose one step fails with a 401 (a permanent failure): the events as the ingest route takes them."""
    from schemas.runs import RunFailed, RunStarted, StepFailed, StepStarted

    now = datetime.now(UTC)
    ids: dict[str, Any] = {"tenant_id": TENANT, "workflow_id": workflow_id, "run_id": run_id}
    call = {"service": "slack", "action": "post_message"}
    error = {"type": "invalid_auth", "message": "invalid_auth", "status_code": 401}
    records = [
        RunStarted(event_id=str(uuid.uuid4()), occurred_at=now, **ids),
        StepStarted(event_id=str(uuid.uuid4()), occurred_at=now, **ids, step_id="notify", payload=call),
        StepFailed(event_id=str(uuid.uuid4()), occurred_at=now, **ids, step_id="notify",
                   payload={**call, "duration_ms": 5.0, "error": error}),
        RunFailed(event_id=str(uuid.uuid4()), occurred_at=now, **ids,
                  payload={"failed_step_id": "notify", "error": {"type": "invalid_auth", "message": "invalid_auth"}}),
    ]  # fmt: skip
    return [r.model_dump(mode="json") for r in records]


def produce_failing_run(http: httpx.Client, workflow_id: str) -> tuple[str, float]:
    """Post a new failing run through ``POST /api/events``; returns its id and the wall-clock ms it was sent at."""
    run_id = f"{workflow_id}-{uuid.uuid4().hex[:10]}"
    events = failing_run(workflow_id, run_id)
    sent_ms = time.time() * 1000
    answer = http.post("/api/events", json={"events": events})
    if answer.status_code != 202:
        raise RuntimeError(f"ingest answered {answer.status_code}: {answer.text[:500]}")
    return run_id, sent_ms


def key_script(key: str) -> str:
    """An init script putting the API key where the page reads it (inside the browser; never in a URL)."""
    return f"window.localStorage.setItem({json.dumps(KEY_STORAGE)}, {json.dumps(key)});"


def load_timings(page: Any) -> dict[str, float | None]:
    """First contentful paint and time to ``data-ready`` of the page's last navigation, in ms from its start."""
    paint = page.evaluate(
        "() => (performance.getEntriesByType('paint').find(e => e.name === 'first-contentful-paint') || {}).startTime"
    )
    ready = page.evaluate("() => window.__flReadyAt")
    return {"first_paint_ms": paint, "ready_ms": ready}


def open_dashboard(
    context: Any, url: str, timeout_ms: float = 30_000, watch: Callable[[Any], object] | None = None
) -> Any:
    """A new page on ``url`` once its first data is drawn and its live stream is connected.

    ``watch(page)`` runs before the page navigates (to listen to its console and requests from the start).
    """
    page = context.new_page()
    if watch is not None:
        watch(page)
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]", timeout=timeout_ms)
    page.wait_for_selector("[data-testid=live-status][data-state=live]", timeout=timeout_ms)
    return page


def seen_latency_ms(page: Any, run_id: str, sent_ms: float, timeout_ms: float = 30_000) -> float:
    """Wait for the run's row; its ``data-seen-at`` minus the time its first event was sent."""
    row = page.wait_for_selector(f"[data-testid=run-row][data-run-id='{run_id}']", timeout=timeout_ms)
    return float(row.get_attribute("data-seen-at")) - sent_ms


def browser_context(playwright: Any) -> tuple[Any, Any]:
    browser = playwright.chromium.launch(executable_path=str(ensure_chromium()), headless=True)
    context = browser.new_context(viewport=VIEWPORT)
    return browser, context


def bench_dashboard(samples: int = 10, screenshots: Path | None = None, warmup_s: float = 0.0) -> int:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        say("the dashboard benchmark drives a browser with Playwright: pip install -e '.[dev]'")
        return 1
    ensure_chromium()
    started = time.monotonic()
    with (
        demo_stack() as stack,
        sync_playwright() as playwright,
        httpx.Client(base_url=stack.url, headers=stack.headers, timeout=10) as http,
    ):
        say(f"stack up in {time.monotonic() - started:.1f}s; waiting for demo runs")
        stack.wait_for_runs()
        if warmup_s > 0:
            say(f"{warmup_s:.0f}s more of demo traffic, so that the charts have closed windows")
            time.sleep(warmup_s)
        browser, context = browser_context(playwright)
        context.add_init_script(key_script(stack.key))
        context.add_init_script(READY_PROBE)
        paints: list[float] = []
        readies: list[float] = []
        for _ in range(samples):
            page = open_dashboard(context, stack.url)
            timing = load_timings(page)
            page.close()
            if timing["first_paint_ms"] is not None:
                paints.append(float(timing["first_paint_ms"]))
            if timing["ready_ms"] is not None:
                readies.append(float(timing["ready_ms"]))
        page = open_dashboard(context, stack.url)
        if screenshots is not None:  # before the benchmark's own failing runs join the demo's
            take_screenshots(page, stack, http, screenshots)
        updates = []
        for _ in range(samples):
            run_id, sent_ms = produce_failing_run(http, "bench-dashboard")
            updates.append(seen_latency_ms(page, run_id, sent_ms))
            time.sleep(0.3)
        page.close()
        browser.close()
    result = {
        "bench": "dashboard",
        "first_paint_ms_p50": round(percentile(paints, 0.5), 1),
        "first_paint_ms_max": round(max(paints, default=float("nan")), 1),
        "ready_ms_p50": round(percentile(readies, 0.5), 1),
        "live_update_ms_p50": round(percentile(updates, 0.5), 1),
        "live_update_ms_p99": round(percentile(updates, 0.99), 1),
        "samples": samples,
    }
    print(json.dumps(result), flush=True)
    return 0


OUTAGE_SERVICE = "clearbit"
OUTAGE: list[dict[str, Any]] = [{"service": OUTAGE_SERVICE, "from_s": 0, "to_s": 40, "fault": "503", "rate": 1.0}]
"""An outage of the demo's lead enrichment's first step: its runs fail and open one troubleshooting session."""


def outage_session(stack: DemoStack, http: httpx.Client, timeout_s: float = 90) -> str:
    """Start the outage and wait for the session it opens; its id.

    The schedule is put again every few seconds: the demo puts its own at the start of every cycle.
    """
    deadline = time.monotonic() + timeout_s
    put_at = 0.0
    while True:
        if time.monotonic() - put_at > 10:
            httpx.put(f"{stack.sandbox_url}/_sandbox/faults", json=OUTAGE, timeout=5).raise_for_status()
            put_at = time.monotonic()
        session_id = session_about(http, OUTAGE_SERVICE)
        if session_id is not None:
            return session_id
        if time.monotonic() > deadline:
            raise RuntimeError(f"no troubleshooting session about the {OUTAGE_SERVICE} outage within {timeout_s:.0f}s")
        time.sleep(1)


def session_about(http: httpx.Client, service: str, error_class: str = "upstream_5xx") -> str | None:
    """The newest session about ``service`` failing with ``error_class`` (not the demo's rare timeouts), if any."""
    answer = http.get("/api/workflows/troubleshooting/sessions")
    for session in answer.json().get("sessions", []) if answer.status_code == 200 else []:
        text = json.dumps(session)
        if service in text and error_class in text:
            return str(session["session_id"])
    return None


def take_screenshots(page: Any, stack: DemoStack, http: httpx.Client, directory: Path) -> None:
    """An outage of clearbit, then: the overview, the timeline of a finished demo run with parallel steps, and the
    troubleshooting session the outage opened."""
    directory.mkdir(parents=True, exist_ok=True)
    session_id = outage_session(stack, http)
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_timeout(2000)
    page.screenshot(path=str(directory / "overview.png"))
    row = page.wait_for_selector(
        "[data-testid=run-row][data-workflow-id=deploy-announcement][data-status=succeeded]", timeout=60_000
    )
    row.click()
    page.wait_for_selector("[data-testid=run-timeline] [data-testid=gantt-bar]")
    scroll_to(page, "[data-testid=runs]")
    page.wait_for_timeout(500)
    page.screenshot(path=str(directory / "run-timeline.png"))
    page.wait_for_selector(f"[data-testid=session-row][data-session-id='{session_id}']", timeout=30_000).click()
    page.wait_for_selector("[data-testid=session-detail]")
    scroll_to(page, "[data-testid=sessions]")
    page.wait_for_timeout(500)
    page.screenshot(path=str(directory / "troubleshooting-session.png"))
    say(f"screenshots in {directory}")


def scroll_to(page: Any, selector: str) -> None:
    """Scroll so that the panel holding ``selector`` starts just below the page's sticky header."""
    page.eval_on_selector(
        selector,
        """e => {
          const panel = e.closest('section') || e;
          const header = document.querySelector('header');
          const top = panel.getBoundingClientRect().top + window.scrollY - (header ? header.offsetHeight + 12 : 0);
          window.scrollTo(0, Math.max(0, top));
        }""",
    )
