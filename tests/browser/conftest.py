"""The dashboard in headless Chromium against the real demo stack (`flowledger up --demo`).

Chromium is Debian's `/usr/bin/chromium`, installed here when missing by a
session fixture rather than by a Makefile step: the fixture runs exactly when
browser tests are selected (under `make test`, CI's `.ci/run`, or a plain
`pytest tests/browser`), never for `pytest tests/unit`, and a failed install
fails these tests with apt's output instead of skipping them. Playwright
drives that binary (`executable_path`); it never downloads a browser.

Screenshots and the measured timings go to `test-artifacts/` (or
`$FLOWLEDGER_TEST_ARTIFACTS`); the timings are also printed in the summary.
"""

import json
import os
from pathlib import Path

import pytest

from flowledger.bench_dashboard import READY_PROBE, VIEWPORT, DemoStack, ensure_chromium, key_script, open_dashboard

ARTIFACTS = Path(os.environ.get("FLOWLEDGER_TEST_ARTIFACTS") or Path(__file__).parents[2] / "test-artifacts")
TIMINGS = ARTIFACTS / "dashboard-timings.json"
MEASURED: dict[str, object] = {}
"""What the tests measured (not asserted): written to TIMINGS and printed at the end of the session."""

IGNORED_FAILURES = ("net::ERR_ABORTED",)
"""A request cut short because its page was closed or navigated away (the live stream when a test ends)."""


@pytest.fixture(scope="session")
def chromium() -> Path:
    try:
        return ensure_chromium()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """One demo stack for the module, with finished demo runs to show; stopped with everything it started."""
    demo = DemoStack(tmp_path_factory.mktemp("dashboard") / "data")
    demo.start()
    try:
        demo.wait_for_runs()
        yield demo
    finally:
        left = demo.stop()
        assert left == [], f"processes left after the stack stopped (killed): {left}"


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), headless=True)
        yield launched
        launched.close()


class PageLog:
    """Console errors, failed requests and HTTP errors a page met."""

    def __init__(self, page, *, refused: bool = False) -> None:
        """``refused``: the page is expected to be answered 401 (a wrong key); those answers are counted instead."""
        self.problems: list[str] = []
        self.refused = refused
        self.refusals = 0
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, message) -> None:
        if message.type == "error" and not (self.refused and "status of 401" in message.text):
            self.problems.append(f"console error: {message.text} at {message.location}")

    def _failed(self, request) -> None:
        failure = request.failure or ""
        if not any(ignored in failure for ignored in IGNORED_FAILURES):
            self.problems.append(f"request failed: {request.method} {request.url}: {failure}")

    def _response(self, response) -> None:
        if response.status == 401 and self.refused:
            self.refusals += 1
        elif response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.request.method} {response.url}")


@pytest.fixture
def context(browser, stack, request):
    """A fresh browser context (empty storage) of the screenshot size; closed after the test."""
    ctx = browser.new_context(viewport=VIEWPORT)
    ctx.add_init_script(READY_PROBE)
    yield ctx
    ctx.close()


@pytest.fixture
def page_log():
    """Collects what every page of the test met; the test fails on any console error or failed request."""
    logs: list[PageLog] = []
    yield logs
    problems = [p for log in logs for p in log.problems]
    assert problems == [], "the page logged errors or had failed requests:\n" + "\n".join(problems)


@pytest.fixture
def dashboard(context, stack, page_log, request):
    """The dashboard with the API key in localStorage, its first data drawn and its live stream connected."""
    context.add_init_script(key_script(stack.key))
    page = open_dashboard(context, stack.url, watch=lambda p: page_log.append(PageLog(p)))
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    page.close()


def record(name: str, value: object) -> None:
    MEASURED[name] = value
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    TIMINGS.write_text(json.dumps(MEASURED, indent=2) + "\n")


def pytest_terminal_summary(terminalreporter) -> None:
    if MEASURED:
        terminalreporter.section("dashboard timings (recorded, not asserted)")
        for name, value in MEASURED.items():
            terminalreporter.write_line(f"{name}: {value}")
        terminalreporter.write_line(f"written to {TIMINGS}")
