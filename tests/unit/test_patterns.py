import pytest

from domain.patterns import StepOutcomes, Workflow, failure_points, mine, shape


def wf(workflow_id, trigger, *steps, runs=0):
    return Workflow(workflow_id, {"trigger": {"service": trigger}, "steps": [
        {"id": sid, "service": service, "needs": list(needs)} for sid, service, needs in steps
    ]}, runs)  # fmt: skip


@pytest.mark.parametrize(
    ("steps", "services", "paths"),
    [
        ([("a", "asana", ())], ["asana"], [("gmail", "asana")]),
        ([("a", "asana", ()), ("s", "slack", ())], ["asana", "slack"], [("gmail", "asana"), ("gmail", "slack")]),
        ([("a", "asana", ()), ("s", "slack", ("a",))], ["asana", "slack"],
         [("gmail", "asana"), ("gmail", "asana", "slack")]),
        # a diamond: two paths reach the last step
        ([("a", "asana", ()), ("b", "trello", ()), ("s", "slack", ("a", "b"))], ["asana", "trello", "slack"],
         [("gmail", "asana"), ("gmail", "asana", "slack"), ("gmail", "trello"), ("gmail", "trello", "slack")]),
        # needs naming an unknown step hangs off the trigger rather than vanishing
        ([("s", "slack", ("ghost",))], ["slack"], [("gmail", "slack")]),
    ],
)  # fmt: skip
def test_shape_follows_needs_from_the_trigger(steps, services, paths):
    trigger, found_services, found_paths = shape(wf("w", "gmail", *steps).definition)
    assert (trigger, found_services, sorted(found_paths)) == ("gmail", services, sorted(paths))


def test_support_counts_workflows_and_reports_runs():
    workflows = [
        wf("w1", "gmail", ("a", "asana", ()), ("s", "slack", ("a",)), runs=100),
        wf("w2", "gmail", ("a", "asana", ()), ("s", "slack", ("a",)), runs=1),
        wf("w3", "gmail", ("a", "asana", ()), runs=5),
        wf("w4", "typeform", ("h", "hubspot", ()), runs=500),
    ]
    found = mine(workflows, [], min_support=2)
    assert [(p.trigger, p.action, p.workflows, p.runs) for p in found.pairs] == [
        ("gmail", "asana", 3, 106), ("gmail", "slack", 2, 101)
    ]  # fmt: skip
    assert [(t.trigger, t.actions, t.workflows, t.example) for t in found.templates] == [
        ("gmail", ("asana", "slack"), 2, "w1")
    ]
    assert ("gmail", "asana", "slack") in [c.services for c in found.sequences]
    assert found.pair_support("typeform", "hubspot") == 0  # one workflow is below the support
    assert mine(workflows, [], min_support=1).pair_support("typeform", "hubspot") == 1
    assert found.templates_for("gmail")[0].actions == ("asana", "slack")
    assert found.templates_for("dropbox") == []


def test_a_workflow_counts_once_per_pattern_even_when_it_repeats_a_service():
    found = mine([wf("w1", "gmail", ("a", "slack", ()), ("b", "slack", ()))], [], min_support=1)
    assert [(p.action, p.workflows) for p in found.pairs] == [("slack", 1)]


def test_failure_points_rank_by_failed_attempts_then_rate():
    outcomes = [
        StepOutcomes("asana", "task", attempts=100, failed=5, workflows=3, top_error="RateLimited"),
        StepOutcomes("slack", "post", attempts=10, failed=5, workflows=1, top_error="invalid_auth"),
        StepOutcomes("jira", "issue", attempts=50, failed=20, workflows=2, top_error="BadRequest"),
        StepOutcomes("gmail", "send", attempts=80, failed=0, workflows=4),
    ]
    points = failure_points(outcomes)
    assert [(p.service, p.failure_rate) for p in points] == [("jira", 0.4), ("slack", 0.5), ("asana", 0.05)]


def test_nothing_mined_from_nothing():
    found = mine([], [])
    assert (found.pairs, found.sequences, found.templates, found.failure_points) == ([], [], [], [])
