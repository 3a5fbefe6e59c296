"""What to do about a ranked cause (pure).

``propose(cause)`` answers the actions for the top candidate of
``domain.rca.rank``, in order. An action is *automatic* when the engine may
apply it alone (with ``WORKFLOW_AUTO_RECOVERY_ENABLED=true``): it is safe to
repeat and its outcome can be checked. Everything that needs a change of data,
definition or account goes to a person, and nothing is retried that cannot
succeed as it is (a 400 is reported, not retried forever).

===================  =========================================================
cause                actions
===================  =========================================================
``service_outage``   pause the affected workflows (circuit breaker), probe the
                     service, resume them with their waiting runs when a probe
                     succeeds, then resume the failed runs from the failed step
``rate_limit``       lower the service's concurrency, retry the failed runs
                     after its ``Retry-After``, raise concurrency as 429s stop
``credentials``      a person: reconnect the account (refreshing is the
                     connector's: a refreshable credential refused with a 401
                     is refreshed and the call sent again before a step
                     fails, so a credential failure seen here is one a
                     refresh did not or could not repair)
``transient``        resume the failed runs from the failed step, with backoff
``change``           a person: roll back to the version before, or fix it
``bad_data``         a person: the input values the failing runs share
``step_bug``         a person: the step's own code raises
``downstream``       what the upstream step's cause calls for
===================  =========================================================
"""

from dataclasses import dataclass, field
from typing import Any

from domain.rca import Candidate

PROBE_EVERY_S = 30.0
CONCURRENCY_FACTOR = 0.5


@dataclass(frozen=True)
class Proposal:
    action: str
    automatic: bool
    reason: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "automatic": self.automatic, "reason": self.reason, "params": self.params}


def propose(cause: Candidate, *, workflows: list[str] | None = None) -> list[Proposal]:
    """The actions for ``cause`` (the top candidate), automatic ones first where order allows."""
    subject, evidence = cause.subject, cause.evidence
    affected = sorted(workflows or [])
    if cause.cause == "service_outage":
        service = subject["service"]
        return [
            Proposal("pause_workflows", True, f"{service} fails for every caller: stop sending it runs",
                     {"service": service, "workflow_ids": affected}),
            Proposal("probe_service", True, f"call {service} every {PROBE_EVERY_S:g} s until it answers",
                     {"service": service, "every_s": PROBE_EVERY_S}),
            Proposal("resume_workflows", True, "when a probe succeeds: waiting runs start",
                     {"service": service, "workflow_ids": affected}),
            Proposal("retry_failed_runs", True, "resume the failed runs from the failed step",
                     {"service": service}),
        ]  # fmt: skip
    if cause.cause == "rate_limit":
        service = subject["service"]
        return [
            Proposal("lower_concurrency", True, f"{service} answers 429 on {evidence.get('failure_share', 0):.0%} "
                     "of calls", {"service": service, "factor": CONCURRENCY_FACTOR}),
            Proposal("retry_failed_runs", True, "after the service's Retry-After", {"service": service}),
            Proposal("raise_concurrency", True, "step by step once 429s stop", {"service": service}),
        ]  # fmt: skip
    if cause.cause == "credentials":
        credential = subject.get("credential_id")
        named = f"credential {credential}" if credential else "the credential its steps send"
        return [
            Proposal("ask_person", False, f"{subject['service']} refuses {named} and refreshing did not help "
                     "(refused, or nothing to refresh with): reconnect the account, store the credential again "
                     "and retry the failed runs", {"service": subject["service"], "credential_id": credential}),
        ]  # fmt: skip
    if cause.cause == "transient" or (cause.cause == "downstream" and cause.error_class in _TRANSIENT):
        return [Proposal("retry_failed_runs", True, "isolated transient failures: resume from the failed step",
                         {"backoff": True})]  # fmt: skip
    reasons = {
        "change": f"failures began with version {subject.get('version')}: roll back or fix it",
        "bad_data": f"the failing runs share input {subject.get('inputs') or 'values'} the service rejects",
        "step_bug": f"step {subject.get('step_id')} raises in its own code",
        "downstream": f"step {subject.get('step_id')} fails and its dependents with it",
    }
    return [Proposal("ask_person", False, reasons.get(cause.cause, "no safe automatic action"), dict(subject))]


_TRANSIENT = frozenset({"upstream_5xx", "timeout", "network", "rate_limited"})
