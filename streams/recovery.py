"""Troubleshooting sessions: failed runs open them; with recovery on, they repair themselves.

Input: the batches of ``workflow-events`` the metric agent reads (a hook of
``streams.metrics.aggregate_windows``, so the busiest topic is streamed once
per worker), and agent ``troubleshoot_signals`` over ``alerts`` (a firing
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
from schemas.registry import decode
from streams.app import app, routed_table, settings
from streams.metrics import EVENT_HOOKS, tables_settled

log = logging.getLogger(__name__)

WATCHED_TYPES = frozenset({
    "StepFailed", "StepSucceeded", "RunStarted", "RunResumed", "RunFailed", "RunSucceeded", "RunCancelled",
    "AlertFired", "AlertResolved", "AnomalyDetected",
})  # fmt: skip
"""A step's result is its progress; ``StepStarted`` and retry schedules add nothing here and are skipped."""
signal_topics = app.topic(topics.ALERTS, topics.ANOMALIES, value_serializer="raw", key_serializer="raw")
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


async def feed(records: list[Envelope]) -> None:
    """Apply a batch of records (run events, alerts, anomalies) and publish what they cause."""
    async with store.lock:
        now = time.time()
        outputs: list[Envelope] = []
        touched: set[str] = set()
        for record in records:
            kind, tenant, run_id = record.type, record.tenant_id, record.run_id or ""
            if kind not in WATCHED_TYPES:
                continue
            state = store.load(tenant)
            touched.add(tenant)
            if state.needs(kind, run_id):
                outputs += state.apply(record, now)
            else:  # most events: only what they change, at the time they arrive
                state.progress(kind, run_id, record.workflow_id or "", now, record.step_id or "",
                               str(getattr(record.payload, "service", "") or ""))  # fmt: skip
        await store.publish(outputs, touched)
        if outputs:
            log.info("troubleshooting: %d records from a batch of %d", len(outputs), len(records))


EVENT_HOOKS.append(feed)  # run events: the batches the metric agent reads and decodes anyway


@app.agent(signal_topics)
async def troubleshoot_signals(stream):  # type: ignore[no-untyped-def]
    """Alerts and anomalies (few): a firing alert or an anomaly joins or opens a session."""
    async for values in stream.take(200, within=0.2):
        await feed([record for value in values for record in decode(value)[0]])


@app.timer(interval=0.5)
async def probe_failing_services() -> None:
    if not tables_settled():  # a table read mid-rebalance could bring back an old state
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
