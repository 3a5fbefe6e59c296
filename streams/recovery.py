"""Agent ``troubleshoot_runs``: failed runs open troubleshooting sessions; with recovery on, they repair themselves.

Input topics: ``workflow-events`` (step and run results), ``alerts`` (a firing
alert joins the session of what it is about, or opens one) and ``anomalies``
(likewise); a run without an event for ``STUCK_AFTER_S`` opens a session too.
Output topics: ``troubleshooting-sessions`` (``SessionOpened``,
``EvidenceAdded``, ``RootCauseRanked``, ``ResolutionProposed``,
``ResolutionApplied``, ``ResolutionVerified``, ``ResolutionFailed``,
``SessionClosed``) and, when ``WORKFLOW_AUTO_RECOVERY_ENABLED=true``,
``workflow-commands`` (``PauseWorkflow``, ``ResumeWorkflow``, ``RetryRun``).
Table: ``recovery_state`` (tenant -> its ``domain.recovery.Recovery``,
pickled, without the recent attempts and runs in flight, which are rebuilt
from new events), written when it changed, after the outputs of its batch
were acknowledged.
Timer ``probe_failing_services`` sends the probes that are due.

Delivery: at-least-once. Output ids derive from the session and its
sequence, so a batch replayed after a crash re-sends the same records: the
projection keeps one of each, and the executor ignores a second ``RetryRun``
of a run that is no longer failed. The decisions themselves are
``domain.recovery``; this module only feeds and publishes them.
"""

import asyncio
import logging
import pickle
import time

from domain.recovery import Recovery
from flowledger.client import Producer
from schemas import topics
from schemas.envelope import Envelope
from schemas.monitoring import AlertFired, AlertResolved, AnomalyDetected
from schemas.registry import decode
from schemas.runs import RunCancelled, RunFailed, RunStarted, RunSucceeded, StepFailed, StepStarted, StepSucceeded
from streams.app import app, settings
from streams.metrics import routed_table

log = logging.getLogger(__name__)

WATCHED = (
    StepStarted, StepFailed, StepSucceeded, RunStarted, RunFailed, RunSucceeded, RunCancelled,
    AlertFired, AlertResolved, AnomalyDetected,
)  # fmt: skip
watched_topics = app.topic(
    topics.WORKFLOW_EVENTS, topics.ALERTS, topics.ANOMALIES, value_serializer="raw", key_serializer="raw"
)
recovery_table = routed_table("recovery_state", 1, route=lambda key: 0)
"""Written from batches of several partitions and from the probe timer: every key in the one changelog partition."""


class Store:
    """Tenants' recovery states, cached; the table is read once per tenant and written after each batch."""

    def __init__(self) -> None:
        self.cache: dict[str, Recovery] = {}
        self.lock = asyncio.Lock()
        self.producer: Producer | None = None
        self.loaded = False
        """Every tenant in the table is cached (after a restart, open sessions must keep probing)."""

    def load(self, tenant_id: str) -> Recovery:
        state = self.cache.get(tenant_id)
        if state is None:
            raw = recovery_table.get(tenant_id.encode())
            if raw:
                state = pickle.loads(raw)  # noqa: S301 - written by this module only
            else:
                state = Recovery(tenant_id)
            state.enabled = settings.workflow_auto_recovery_enabled
            state.probe_s = settings.flowledger_recovery_probe_s
            self.cache[tenant_id] = state
        return state

    async def publish(self, records: list[Envelope], tenants: set[str]) -> None:
        """Send the records; once acknowledged, write the states of ``tenants`` that changed."""
        if records:
            if self.producer is None:
                self.producer = Producer(settings.bootstrap, linger_ms=5)
                await self.producer.start()
            await self.producer.send(records)
        for tenant in tenants:
            state = self.cache[tenant]
            if state.dirty:
                state.dirty = False
                recovery_table[tenant.encode()] = pickle.dumps(state)


store = Store()


@app.agent(watched_topics)
async def troubleshoot_runs(stream):  # type: ignore[no-untyped-def]
    async for values in stream.take(1000, within=0.05):
        async with store.lock:
            now = time.time()
            outputs: list[Envelope] = []
            touched: set[str] = set()
            for value in values:
                good, _bad = decode(value)
                for record in good:
                    if isinstance(record, WATCHED):
                        touched.add(record.tenant_id)
                        outputs += store.load(record.tenant_id).apply(record, now)
            await store.publish(outputs, touched)
            if outputs:
                log.info("troubleshooting: %d records from %d events", len(outputs), len(values))


@app.timer(interval=0.5)
async def probe_failing_services() -> None:
    if not app.tables.recovery.completed.is_set():  # type: ignore[attr-defined]
        return
    async with store.lock:
        if not store.loaded:
            for key in list(recovery_table.keys()):
                store.load(bytes(key).decode())
            store.loaded = True
        now = time.time()
        outputs: list[Envelope] = []
        touched: set[str] = set()
        for tenant_id, state in store.cache.items():
            if state.sessions or state.in_flight:
                outputs += state.tick(now)
                touched.add(tenant_id)
        await store.publish(outputs, touched)


@app.on_before_shutdown.connect  # type: ignore[arg-type]  # faust types the handler loosely
async def _stop_producer(app: object, *args: object, **kwargs: object) -> None:
    if store.producer is not None:
        await store.producer.stop()
