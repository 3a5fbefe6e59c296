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


@pytest.mark.parametrize(
    ("subject", "named"),
    [({"service": "gmail", "credential_id": "c1"}, "credential c1"), ({"service": "gmail"}, "the credential")],
)
def test_a_refused_credential_goes_to_a_person_the_connector_has_refreshed_it_already(subject, named):
    [only] = propose(cause("credentials", subject, "credentials"))
    assert (only.action, only.automatic) == ("ask_person", False)
    assert named in only.reason and "reconnect" in only.reason
    assert only.params == {"service": "gmail", "credential_id": subject.get("credential_id")}


def test_the_outage_plan_names_the_affected_workflows_in_order():
    plan = propose(cause("service_outage", {"service": "hubspot"}), workflows=["w2", "w1"])
    assert plan[0].params == {"service": "hubspot", "workflow_ids": ["w1", "w2"]}
