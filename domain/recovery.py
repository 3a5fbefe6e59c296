"""Automatic recovery from failed runs: sessions, a circuit breaker per service, verification (pure).

``Recovery.apply(record, now)`` folds the run events of one tenant and
returns what to publish: session events and, when recovery is on, commands.
``Recovery.tick(now)`` returns what time makes due (the next probe).

A run that fails opens a session or joins the open one for its cause:

* **transient** failures (5xx, timeout, network, 429: the failing step's
  class by ``domain.error_classifier``) group by service, so an outage of one
  service is one session however many runs and workflows it fails. With
  recovery on, each affected workflow is paused (``PauseWorkflow``: its new
  runs wait; a service answering 429 also gets at most
  ``LOWERED_CONCURRENCY`` calls at once, ``SetServiceConcurrency``; a service
  that is down has the steps that name a fallback sent straight to it,
  ``SetServiceRoute``), and
  after ``probe_s`` one failed run is retried as a probe
  (``RetryRun``, from the failed step; half-open breaker). The probe fails:
  the next one waits twice as long (at most ``MAX_PROBE_S``, and never less
  than a ``Retry-After`` the service sent). It succeeds: the workflows are
  resumed (their waiting runs start), the concurrency limit is lifted, the
  steps go back to the service, and
  every other failed run is retried.
  When every failed run of the session has succeeded the resolution is
  verified and the session closes; a run that fails ``MAX_RETRIES`` retries
  is given up (``ResolutionFailed``) and left for a person.
* **permanent** failures (bad input, not found, credentials, quota, a step's
  own bug) group by workflow, service and class; they are ranked and a person
  is asked, and nothing is retried. A 401 that refreshing an OAuth
  credential repairs never arrives here: the connector refreshes and calls
  again within the attempt, and the step succeeds. A credentials failure that
  does arrive is one a refresh did not or could not repair.

Every session ranks its causes with ``domain.rca.rank`` over the tenant's
recent attempts when it opens. Ids derive from the session and a sequence
number, so a replay re-emits the same events and commands.
"""

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from domain.error_classifier import classify
from domain.error_rules import TRANSIENT
from domain.rca import Attempt, Candidate, rank
from domain.remedies import propose
from schemas.envelope import Envelope, deterministic_event_id
from schemas.monitoring import AlertFired, AlertResolved, AnomalyDetected
from schemas.runs import RunCancelled, RunFailed, RunSucceeded, StepFailed, StepSucceeded
from schemas.troubleshooting import (
    EvidenceAdded,
    EvidencePayload,
    ResolutionApplied,
    ResolutionFailed,
    ResolutionPayload,
    ResolutionProposed,
    ResolutionVerified,
    RootCauseCandidate,
    RootCauseRanked,
    RootCauseRankedPayload,
    SessionClosed,
    SessionOpened,
    SessionOpenedPayload,
    SessionPayload,
)
from schemas.workflows import (
    PauseWorkflow,
    ReasonPayload,
    ResumeWorkflow,
    RetryRun,
    ServiceConcurrencyPayload,
    ServiceRoutePayload,
    SetServiceConcurrency,
    SetServiceRoute,
)

PROBE_S = 2.0
MAX_PROBE_S = 60.0
MAX_RETRIES = 5
"""Retries of one run within a session before it is given up."""
RECENT_ATTEMPTS = 5000
"""Attempts kept per tenant for ranking causes."""
FULL_TYPES = frozenset({"StepFailed", "RunFailed", "AlertFired", "AlertResolved", "AnomalyDetected"})
"""Record types ``apply`` must see whole (with ``RunSucceeded`` of runs a session handles)."""
LOWERED_CONCURRENCY = 2
OUTAGE_CLASSES = frozenset({"upstream_5xx", "timeout", "network"})
"""Failures of a service that is down (not one asking to slow down): steps with a fallback use it meanwhile."""
"""Calls at once to a service that answers 429, until it answers again."""
STUCK_AFTER_S = 600.0
"""A run with no event for this long is stuck (the executor's steps time out long before)."""
SIGNAL_QUIET_S = 600.0
RERANK_AT = frozenset({2, 4, 8, 16, 32, 64})
"""Failed runs in a session at which its causes are ranked again."""
MAX_EVIDENCE = 50
"""Failed runs recorded as evidence per session; later ones are counted only."""


@dataclass
class Session:
    session_id: str
    key: tuple[str, ...]
    tenant_id: str
    service: str
    error_class: str
    transient: bool
    opened_at: float
    anchor_workflow: str
    failed: dict[str, str] = field(default_factory=dict)
    """Failed runs waiting for a retry: run id -> workflow id."""
    retrying: dict[str, str] = field(default_factory=dict)
    """Runs retried and not finished yet."""
    recovered: set[str] = field(default_factory=set)
    given_up: set[str] = field(default_factory=set)
    retries: dict[str, int] = field(default_factory=dict)
    paused: set[str] = field(default_factory=set)
    probe_run: str | None = None
    probe_every_s: float = PROBE_S
    next_probe_at: float = 0.0
    breaker: str = "open"
    """``open`` (workflows paused, probing), ``closed`` (resumed, retried runs finishing)."""
    runs_seen: int = 0
    seq: int = 0
    workflows: set[str] = field(default_factory=set)
    """Every workflow with a failed run in the session (an alert about one of them joins it)."""
    lowered: bool = False
    """The service's concurrency is lowered (rate limited) until the probe succeeds."""
    routed: bool = False
    """Steps on the service that name a fallback go to it (outage) until the probe succeeds."""
    last_signal_at: float = 0.0
    """When an alert, anomaly or stuck run last joined (sessions opened by those close when it is old)."""

    def next_id(self, what: str) -> str:
        self.seq += 1
        return deterministic_event_id(self.session_id, what, str(self.seq))


@dataclass
class Recovery:
    """One tenant's recovery state."""

    tenant_id: str
    enabled: bool = True
    probe_s: float = PROBE_S
    sessions: dict[tuple[str, ...], Session] = field(default_factory=dict)
    by_run: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Runs a session is handling -> its key."""
    last_failure: dict[str, tuple[str, str, StepFailed]] = field(default_factory=dict)
    """Run id -> (step id, service, its last StepFailed), until the run ends."""
    recent: deque[Attempt] = field(default_factory=lambda: deque(maxlen=RECENT_ATTEMPTS))
    closed: int = 0
    clock: float = 0.0
    """The ``now`` of the call being handled: the time of the events it emits."""
    in_flight: dict[str, tuple[str, float]] = field(default_factory=dict)
    """Runs started and not ended: run id -> (workflow id, time of its last event). Memory only."""
    stuck_after_s: float = STUCK_AFTER_S
    dirty: bool = False
    """Persisted state changed since the last save (``recent`` and ``in_flight`` are not persisted)."""

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["recent"] = deque(maxlen=RECENT_ATTEMPTS)
        state["in_flight"] = {}
        return state

    # ------------------------------------------------------------------ folding run events

    def needs(self, kind: str, run_id: str) -> bool:
        """Whether a record of type ``kind`` must go through ``apply``; the others only through ``progress``."""
        if kind in FULL_TYPES:
            return True
        return kind == "RunSucceeded" and (run_id in self.by_run or run_id in self.last_failure)

    def progress(
        self, kind: str, run_id: str, workflow_id: str, at: float, step_id: str = "", service: str = ""
    ) -> None:
        """What the frequent run events change: runs in flight, and successful attempts (for ranking)."""
        if kind in ("RunSucceeded", "RunFailed", "RunCancelled"):
            self.in_flight.pop(run_id, None)
        elif run_id:
            self.in_flight[run_id] = (workflow_id, at)
        if kind == "StepSucceeded":
            self.recent.append(Attempt(self.tenant_id, workflow_id, run_id, step_id, service, at, True))

    def apply(self, record: Envelope, now: float) -> list[Envelope]:
        self.clock = now
        out = self._apply(record, now)
        self.dirty = self.dirty or bool(out)
        return out

    def _apply(self, record: Envelope, now: float) -> list[Envelope]:
        run_id = record.run_id or ""
        if isinstance(record, AlertFired | AlertResolved | AnomalyDetected):
            return self._signal(record)
        if run_id and not isinstance(record, RunSucceeded | RunFailed | RunCancelled):
            self.in_flight[run_id] = (record.workflow_id, record.occurred_at.timestamp())
        if isinstance(record, StepFailed):
            self.last_failure[run_id] = (record.step_id or "", record.payload.service, record)
            self.dirty = True
            error = record.payload.error
            cls = classify(error.message, status_code=error.status_code, error_type=error.type).error_class
            self._remember(record, ok=False, error_class=cls, code=error.status_code, message=error.message)
            return []
        if isinstance(record, StepSucceeded):
            self._remember(record, ok=True)
            return []
        if isinstance(record, RunSucceeded | RunFailed | RunCancelled):
            self.in_flight.pop(run_id, None)
        if isinstance(record, RunSucceeded):
            if self.last_failure.pop(run_id, None) is not None:
                self.dirty = True
            return self._succeeded(run_id, now)
        if isinstance(record, RunFailed):
            failure = self.last_failure.pop(run_id, None)
            self.dirty = self.dirty or failure is not None
            return self._failed(record, failure, now)
        return []

    # ------------------------------------------------------------------ alerts, anomalies, stuck runs

    def _signal(self, record: AlertFired | AlertResolved | AnomalyDetected) -> list[Envelope]:
        """A firing alert or an anomaly joins the open session it concerns, else opens one of its own."""
        if isinstance(record, AnomalyDetected):
            anomaly = record.payload
            service = anomaly.key if anomaly.scope == "service" else None
            workflow = (anomaly.key if anomaly.scope == "workflow" else None) or record.workflow_id
            key: tuple[str, ...] = ("signal", "anomaly", anomaly.series)
            kind, text = "latency_anomaly", anomaly.explanation
        else:
            labels = record.payload.labels
            service = labels.get("service")
            workflow = labels.get("workflow") or record.workflow_id
            key = ("signal", "alert", record.payload.alert_id)
            kind, text = "alert", f"{record.payload.rule} ({record.payload.severity}) {labels}"
            if isinstance(record, AlertResolved):
                session = self.sessions.get(key)
                return self._close(session, "alert resolved") if session and not session.failed else []
        session = self.sessions.get(("service", service)) if service else None
        session = session or self.sessions.get(key) or next(
            (s for s in self.sessions.values() if workflow in s.workflows), None)  # fmt: skip
        out: list[Envelope] = []
        if session is None:
            session = Session("ts-" + deterministic_event_id(self.tenant_id, *key, str(record.event_id))[:18], key,
                              self.tenant_id, service or "", kind, False, self.clock, workflow)  # fmt: skip
            self.sessions[key] = session
            session.workflows.add(workflow)
            out.append(self._event(SessionOpened, session, "opened", SessionOpenedPayload(
                session_id=session.session_id, trigger=kind, summary=text[:1024],
                detail={"service": service, "workflow_id": workflow})))  # fmt: skip
            candidates = [c for c in rank(list(self.recent)) if _about(c, service or "", workflow) and c.subject]
            out += self._ranking(session, candidates)
            for proposal in propose(candidates[0], workflows=[workflow]) if candidates else []:
                out.append(self._event(ResolutionProposed, session, "proposed", ResolutionPayload(
                    session_id=session.session_id, action=proposal.action, detail=proposal.to_json())))  # fmt: skip
        session.last_signal_at = self.clock
        out.append(
            self._event(
                EvidenceAdded,
                session,
                "evidence",
                EvidencePayload(
                    session_id=session.session_id, kind=kind, detail={"event_id": record.event_id, "text": text[:500]}
                ),
            )
        )
        return out

    def _stuck(self, now: float) -> list[Envelope]:
        """Runs without an event for ``stuck_after_s``: one session per workflow, for a person."""
        out: list[Envelope] = []
        for run_id, (workflow, last) in list(self.in_flight.items()):
            if now - last < self.stuck_after_s:
                continue
            del self.in_flight[run_id]
            key = ("stuck", workflow)
            session = self.sessions.get(key)
            if session is None:
                session = Session("ts-" + deterministic_event_id(self.tenant_id, *key, run_id)[:18], key,
                                  self.tenant_id, "", "stuck_run", False, now, workflow)  # fmt: skip
                self.sessions[key] = session
                out.append(self._event(SessionOpened, session, "opened", SessionOpenedPayload(
                    session_id=session.session_id, trigger="stuck_run",
                    summary=f"runs of {workflow} made no progress for {self.stuck_after_s:g} s")))  # fmt: skip
                out.append(
                    self._event(
                        ResolutionProposed,
                        session,
                        "proposed",
                        ResolutionPayload(
                            session_id=session.session_id,
                            action="ask_person",
                            detail={"reason": "cancel the stuck runs or find what holds them (a worker, a producer)"},
                        ),
                    )
                )
            session.last_signal_at = now
            out.append(self._event(EvidenceAdded, session, "evidence", EvidencePayload(
                session_id=session.session_id, kind="stuck_run",
                detail={"run_id": run_id, "last_event_at": last})))  # fmt: skip
        return out

    def _quiet_signals(self, now: float) -> list[Envelope]:
        """Sessions opened by alerts, anomalies or stuck runs close when nothing new came for ``SIGNAL_QUIET_S``."""
        out: list[Envelope] = []
        for session in list(self.sessions.values()):
            if session.key[0] in ("signal", "stuck") and not session.failed and not session.retrying:
                if now - session.last_signal_at >= SIGNAL_QUIET_S:
                    out += self._close(session, f"nothing new for {SIGNAL_QUIET_S:g} s")
        return out

    def _close(self, session: Session, reason: str) -> list[Envelope]:
        del self.sessions[session.key]
        self.closed += 1
        return [self._event(SessionClosed, session, "closed", SessionPayload(
            session_id=session.session_id, detail={"reason": reason}))]  # fmt: skip

    def _remember(self, record: Envelope, *, ok: bool, error_class: str | None = None, code: int | None = None,
                  message: str = "") -> None:  # fmt: skip
        payload = record.payload
        self.recent.append(Attempt(
            record.tenant_id, record.workflow_id, record.run_id or "", record.step_id or "", payload.service,
            record.occurred_at.timestamp(), ok, error_class, code, message[:300], payload.credential_id,
        ))  # fmt: skip

    def _failed(self, record: RunFailed, failure: tuple[str, str, StepFailed] | None, now: float) -> list[Envelope]:
        run_id = record.run_id or ""
        if failure is None:
            return []  # not a step failure (a run-level error): nothing this engine can retry
        step_id, service, step_failed = failure
        error = step_failed.payload.error
        found = classify(error.message, status_code=error.status_code, error_type=error.type)
        if error.retryable is False:
            transient = False
        else:
            transient = found.error_class in TRANSIENT
        key = ("service", service) if transient else ("workflow", record.workflow_id, service, found.error_class)
        out: list[Envelope] = []
        session = self.sessions.get(key)
        if session is None:
            session = self._open(key, record, step_id, service, found.error_class, transient, now, out)
        session.runs_seen += 1
        if session.runs_seen in RERANK_AT:  # more evidence: rank again (the latest ranking is the session's)
            out += self._ranking(session, self._ranked(session, (run_id, step_id), record.workflow_id))
        retry_after = error.retry_after_s or found.retry_after_s or 0.0
        if run_id in session.retrying or run_id in session.failed:
            out += self._retry_failed(session, run_id, record.workflow_id, retry_after, now)
            return out
        session.failed[run_id] = record.workflow_id
        session.workflows.add(record.workflow_id)
        self.by_run[run_id] = key
        if session.runs_seen <= MAX_EVIDENCE:
            out.append(self._event(EvidenceAdded, session, "evidence", EvidencePayload(
                session_id=session.session_id, kind="failed_run", error_class=found.error_class,
                detail={"run_id": run_id, "workflow_id": record.workflow_id, "service": service,
                        "status_code": error.status_code, "message": error.message[:300]},
            )))  # fmt: skip
        if transient and self.enabled:
            if found.error_class == "rate_limited" and not session.lowered:
                out += self._concurrency(session, record.workflow_id, LOWERED_CONCURRENCY)
            elif found.error_class in OUTAGE_CLASSES and not session.routed:
                out += self._route(session, record.workflow_id, to_fallback=True)
            out += self._pause(session, record.workflow_id)
            if session.breaker == "closed":  # already resumed: this run failed after: probe again
                session.breaker = "open"
                out += self._pause_all(session)
            session.next_probe_at = max(session.next_probe_at, now + max(session.probe_every_s, retry_after))
        return out

    def _open(self, key: tuple[str, ...], record: RunFailed, failure_step: str, service: str, error_class: str,
              transient: bool, now: float, out: list[Envelope]) -> Session:  # fmt: skip
        sid = "ts-" + deterministic_event_id(self.tenant_id, *key, str(record.event_id))[:18]
        session = Session(sid, key, self.tenant_id, service, error_class, transient, now, record.workflow_id,
                          probe_every_s=self.probe_s, next_probe_at=now + self.probe_s)  # fmt: skip
        self.sessions[key] = session
        summary = (f"{service} fails with {error_class}: runs of {record.workflow_id}"
                   + (" and others wait while it is probed" if transient and self.enabled else ""))  # fmt: skip
        trigger = "failure_burst" if transient else "failed_run"
        out.append(self._event(SessionOpened, session, "opened", SessionOpenedPayload(
            session_id=sid, trigger=trigger, summary=summary,
            detail={"service": service, "error_class": error_class, "transient": transient},
        )))  # fmt: skip
        candidates = self._ranked(session, (record.run_id or "", failure_step), record.workflow_id)
        out += self._ranking(session, candidates)
        top = candidates[0] if candidates else None
        if top is not None and not transient:
            proposals = propose(top, workflows=[record.workflow_id])
        elif transient:
            proposals = propose(Candidate("service_outage", {"service": service}, error_class, 1.0, {}),
                                workflows=[record.workflow_id])  # fmt: skip
        else:
            proposals = []
        if not transient and not any(p.action == "ask_person" for p in proposals):
            proposals = [*proposals, *propose(Candidate("bad_data", {"service": service}, error_class, 1.0, {}))]
        for p in proposals:
            out.append(self._event(ResolutionProposed, session, "proposed", ResolutionPayload(
                session_id=sid, action=p.action, detail=p.to_json())))  # fmt: skip
        return session

    def _ranked(self, session: Session, failure: tuple[str, str], workflow: str) -> list[Candidate]:
        """Causes that explain ``failure`` (run, step), else those about the session's service or workflow."""
        ranked = rank(list(self.recent))
        return [c for c in ranked if failure in c.failures] or [
            c for c in ranked if _about(c, session.service, workflow)
        ]

    def _ranking(self, session: Session, candidates: list[Candidate]) -> list[Envelope]:
        if not candidates:
            return []
        return [self._event(RootCauseRanked, session, "ranked", RootCauseRankedPayload(
            session_id=session.session_id, candidates=tuple(_public(c) for c in candidates[:5]),
        ))]  # fmt: skip

    def _succeeded(self, run_id: str, now: float) -> list[Envelope]:
        key = self.by_run.get(run_id)
        session = self.sessions.get(key) if key else None
        if session is None or run_id not in session.retrying:
            return []
        workflow = session.retrying.pop(run_id)
        session.recovered.add(run_id)
        self.by_run.pop(run_id, None)
        out: list[Envelope] = []
        if run_id == session.probe_run:
            session.probe_run = None
            session.probe_every_s = self.probe_s
            session.breaker = "closed"
            out += self._resume(session, f"probe run {run_id} of {workflow} succeeded")
            if session.lowered:
                out += self._concurrency(session, workflow, None)
            if session.routed:
                out += self._route(session, workflow, to_fallback=False)
            for other, other_workflow in sorted(session.failed.items()):
                out += self._retry(session, other, other_workflow, "the service answers again")
            session.failed.clear()
        return out + self._maybe_close(session)

    def _retry_failed(self, session: Session, run_id: str, workflow: str, retry_after: float,
                      now: float) -> list[Envelope]:  # fmt: skip
        """A retried run failed again: it waits for the next probe, or is given up."""
        session.retrying.pop(run_id, None)
        out: list[Envelope] = []
        if session.retries.get(run_id, 0) >= MAX_RETRIES:
            session.given_up.add(run_id)
            self.by_run.pop(run_id, None)
            if session.probe_run == run_id:
                session.probe_run = None
            out.append(self._event(ResolutionFailed, session, "failed", ResolutionPayload(
                session_id=session.session_id, action="retry_failed_runs",
                detail={"run_id": run_id, "retries": session.retries[run_id], "next": "ask_person"})))  # fmt: skip
            return out + self._maybe_close(session)
        session.failed[run_id] = workflow
        if run_id == session.probe_run:
            session.probe_run = None
            session.probe_every_s = min(session.probe_every_s * 2, MAX_PROBE_S)
        if session.breaker == "closed":
            session.breaker = "open"
            out += self._pause_all(session)
        session.next_probe_at = now + max(session.probe_every_s, retry_after)
        return out

    # ------------------------------------------------------------------ time

    def tick(self, now: float) -> list[Envelope]:
        """What time makes due: probes (one failed run of each open breaker), stuck runs, quiet sessions closing."""
        self.clock = now
        out: list[Envelope] = self._stuck(now) + self._quiet_signals(now)
        for session in list(self.sessions.values()):
            if not (session.transient and self.enabled and session.breaker == "open"):
                continue
            if session.probe_run is not None or not session.failed or now < session.next_probe_at:
                continue
            run_id = sorted(session.failed)[0]
            workflow = session.failed.pop(run_id)
            session.probe_run = run_id
            out += self._retry(session, run_id, workflow, f"probe: is {session.service} back?", action="probe")
        self.dirty = self.dirty or bool(out)
        return out

    # ------------------------------------------------------------------ actions

    def _retry(self, session: Session, run_id: str, workflow: str, reason: str, action: str = "retry_failed_runs"
               ) -> list[Envelope]:  # fmt: skip
        session.retries[run_id] = session.retries.get(run_id, 0) + 1
        session.retrying[run_id] = workflow
        self.by_run[run_id] = session.key
        command = RetryRun(
            event_id=session.next_id(f"retry:{run_id}"), occurred_at=self._at(), tenant_id=self.tenant_id,
            workflow_id=workflow, run_id=run_id, correlation_id=session.session_id,
            payload=ReasonPayload(reason=f"{session.session_id}: {reason}"),
        )  # fmt: skip
        applied = self._event(ResolutionApplied, session, "applied", ResolutionPayload(
            session_id=session.session_id, action=action,
            detail={"run_id": run_id, "workflow_id": workflow, "retry": session.retries[run_id]}))  # fmt: skip
        return [command, applied]

    def _pause(self, session: Session, workflow: str) -> list[Envelope]:
        if workflow in session.paused:
            return []
        session.paused.add(workflow)
        return self._workflow_command(session, PauseWorkflow, workflow, "pause_workflows",
                                      f"circuit open: {session.service} fails ({session.error_class})")  # fmt: skip

    def _pause_all(self, session: Session) -> list[Envelope]:
        out: list[Envelope] = []
        for workflow in sorted(session.paused):
            out += self._workflow_command(session, PauseWorkflow, workflow, "pause_workflows",
                                          f"circuit open again: {session.service} fails")  # fmt: skip
        return out

    def _concurrency(self, session: Session, workflow: str, limit: int | None) -> list[Envelope]:
        """Lower a rate-limiting service's calls at once (``limit``), or lift the limit again (``None``)."""
        session.lowered = limit is not None
        action = "lower_concurrency" if limit else "raise_concurrency"
        reason = f"{session.service} answers 429" if limit else f"{session.service} answers again"
        return self._service_command(session, workflow, SetServiceConcurrency, ServiceConcurrencyPayload, action,
                                     reason, limit=limit)  # fmt: skip

    def _route(self, session: Session, workflow: str, *, to_fallback: bool) -> list[Envelope]:
        """Send steps on an unavailable service that name a fallback straight to it, or back to the service."""
        session.routed = to_fallback
        action = "switch_to_fallback" if to_fallback else "switch_back"
        reason = f"{session.service} is down" if to_fallback else f"{session.service} answers again"
        return self._service_command(session, workflow, SetServiceRoute, ServiceRoutePayload, action, reason,
                                     to_fallback=to_fallback)  # fmt: skip

    def _service_command(
        self, session: Session, workflow: str, kind: type[SetServiceConcurrency | SetServiceRoute],
        payload: type[ServiceConcurrencyPayload | ServiceRoutePayload], action: str, reason: str, **setting: Any,
    ) -> list[Envelope]:  # fmt: skip
        """A command about the session's service for the tenant's executor, and the action recorded."""
        command = kind(
            event_id=session.next_id(action), occurred_at=self._at(), tenant_id=self.tenant_id, workflow_id=workflow,
            correlation_id=session.session_id,
            payload=payload(service=session.service, reason=f"{session.session_id}: {reason}", **setting),
        )  # fmt: skip
        return [command, self._applied(session, action, {"service": session.service, **setting})]

    def _resume(self, session: Session, reason: str) -> list[Envelope]:
        out: list[Envelope] = []
        for workflow in sorted(session.paused):
            out += self._workflow_command(session, ResumeWorkflow, workflow, "resume_workflows", reason)
        return out

    def _workflow_command(
        self, session: Session, kind: type[PauseWorkflow | ResumeWorkflow], workflow: str, action: str, reason: str
    ) -> list[Envelope]:
        command = kind(
            event_id=session.next_id(f"{action}:{workflow}"), occurred_at=self._at(), tenant_id=self.tenant_id,
            workflow_id=workflow, correlation_id=session.session_id,
            payload=ReasonPayload(reason=f"{session.session_id}: {reason}"[:1024]),
        )  # fmt: skip
        return [command, self._applied(session, action, {"workflow_id": workflow, "reason": reason})]

    def _applied(self, session: Session, action: str, detail: dict[str, Any]) -> Envelope:
        payload = ResolutionPayload(session_id=session.session_id, action=action, detail=detail)
        return self._event(ResolutionApplied, session, "applied", payload)

    def _maybe_close(self, session: Session) -> list[Envelope]:
        if session.failed or session.retrying or session.probe_run:
            return []
        out: list[Envelope] = []
        if session.recovered:
            out.append(self._event(ResolutionVerified, session, "verified", ResolutionPayload(
                session_id=session.session_id, action="retry_failed_runs",
                detail={"recovered": sorted(session.recovered), "given_up": sorted(session.given_up),
                        "mttr_s": round(self.clock - session.opened_at, 3)})))  # fmt: skip
        out += self._resume(session, "session closed") if session.breaker == "open" else []
        out += self._concurrency(session, session.anchor_workflow, None) if session.lowered else []
        out += self._route(session, session.anchor_workflow, to_fallback=False) if session.routed else []
        out.append(self._event(SessionClosed, session, "closed", SessionPayload(
            session_id=session.session_id,
            detail={"recovered": len(session.recovered), "given_up": len(session.given_up)})))  # fmt: skip
        del self.sessions[session.key]
        self.closed += 1
        return out

    def _at(self) -> datetime:
        return datetime.fromtimestamp(self.clock, UTC)

    def _event(self, kind: Any, session: Session, what: str, payload: Any) -> Envelope:
        """A session event of type ``kind`` (each takes the same envelope fields)."""
        event_id = session.next_id(what)
        payload = payload.model_copy(update={"seq": session.seq})
        event: Envelope = kind(
            event_id=event_id, occurred_at=self._at(), tenant_id=self.tenant_id,
            workflow_id=session.anchor_workflow, correlation_id=session.session_id, payload=payload,
        )  # fmt: skip
        return event


def _about(candidate: Candidate, service: str, workflow: str) -> bool:
    subject = candidate.subject
    return subject.get("service") == service or subject.get("workflow_id") == workflow or not subject


def _public(c: Candidate) -> RootCauseCandidate:
    return RootCauseCandidate(cause=c.cause, confidence=c.confidence,
                              evidence={"subject": c.subject, "role": c.role, "error_class": c.error_class,
                                        **c.evidence})  # fmt: skip
