import pytest

from domain.rca import Candidate
from domain.remedies import propose


def cause(name, subject, error_class=None, **evidence):
    return Candidate(name, subject, error_class, 0.9, {"failure_share": 0.4, **evidence})


@pytest.mark.parametrize(
    ("candidate", "actions", "automatic"),
    [
        (cause("service_outage", {"service": "hubspot"}, "upstream_5xx"),
         ["pause_workflows", "probe_service", "resume_workflows", "retry_failed_runs"], True),
        (cause("rate_limit", {"service": "slack"}, "rate_limited"),
         ["lower_concurrency", "retry_failed_runs", "raise_concurrency"], True),
        (cause("transient", {}, "timeout"), ["retry_failed_runs"], True),
        (cause("downstream", {"step_id": "fetch"}, "timeout"), ["retry_failed_runs"], True),
        (cause("downstream", {"step_id": "fetch"}, "bad_input"), ["ask_person"], False),
        (cause("change", {"workflow_id": "w", "version": 3}, "bad_input"), ["ask_person"], False),
        (cause("bad_data", {"workflow_id": "w", "inputs": {"customer": "acme"}}, "bad_input"), ["ask_person"], False),
        (cause("step_bug", {"step_id": "t"}, "step_bug"), ["ask_person"], False),
    ],
)  # fmt: skip
def test_each_cause_gets_its_actions(candidate, actions, automatic):
    proposals = propose(candidate, workflows=["w2", "w1"])
    assert [p.action for p in proposals] == actions
    assert all(p.automatic is automatic for p in proposals)


def test_a_person_is_asked_with_the_reason_and_nothing_is_retried_for_bad_input():
    [only] = propose(cause("bad_data", {"workflow_id": "w", "inputs": {"customer": "acme"}}, "bad_input"))
    assert only.action == "ask_person" and "customer" in only.reason and not only.automatic


def test_credentials_refresh_automatically_only_when_the_credential_is_known():
    known = propose(cause("credentials", {"service": "gmail", "credential_id": "c1"}, "credentials"))
    unknown = propose(cause("credentials", {"service": "gmail"}, "credentials"))
    assert [(p.action, p.automatic) for p in known] == [("refresh_credential", True), ("ask_person", False)]
    assert unknown[0].automatic is False


def test_the_outage_plan_names_the_affected_workflows_in_order():
    plan = propose(cause("service_outage", {"service": "hubspot"}), workflows=["w2", "w1"])
    assert plan[0].params == {"service": "hubspot", "workflow_ids": ["w1", "w2"]}
