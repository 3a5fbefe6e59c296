import pytest

from domain.alerting import (
    BASELINE_MIN_POINTS,
    Alert,
    AlertState,
    Condition,
    InhibitRule,
    NotifierState,
    Rule,
    RuleError,
    Silence,
    builtin_rules,
    evaluate,
    plan_notifications,
    routed,
)
from schemas.monitoring import AlertRoute, ChannelRef


@pytest.mark.parametrize(
    ("text", "value", "baseline", "holds"),
    [
        ("error_rate > 0.1", 0.2, None, True),
        ("error_rate > 0.1", 0.1, None, False),
        ("error_rate >= 0.1", 0.1, None, True),
        ("throughput_per_s == 0", 0.0, None, True),
        ("throughput_per_s != 0", 0.0, None, False),
        ("latency_p95_ms < 50", 49.9, None, True),
        ("latency_p95_ms > 2.0 x baseline", 250.0, 100.0, True),
        ("latency_p95_ms > 2.0 x baseline", 150.0, 100.0, False),
        ("latency_p95_ms > 2 * baseline", 250.0, None, False),  # no history: a relative rule cannot judge
        ("anomaly_score > 0.9", 0.95, None, True),
    ],
)
def test_conditions(text, value, baseline, holds):
    assert Condition.parse(text).holds(value, baseline) is holds


@pytest.mark.parametrize(
    "text", ["error_rate >", "p95 > 1", "error_rate ~ 0.1", "error_rate > 0.1 x median", "drop table > 1"]
)
def test_bad_conditions_say_what_is_wrong(text):
    with pytest.raises(RuleError, match="condition"):
        Condition.parse(text)


def run(rule, values, state=None):
    """Evaluate one observation per minute; returns the transitions, None where nothing changed."""
    state = state or AlertState()
    return [evaluate(rule, state, value=v, at=60.0 * (i + 1)) for i, v in enumerate(values)], state


ERRORS = Condition.parse("error_rate > 0.1")


@pytest.mark.parametrize(
    ("rule", "values", "expected"),
    [
        # for 0: fires on the first breach, resolves on the first good window
        (Rule("r", ERRORS), [0.0, 0.5, 0.5, 0.0], [None, "fired", None, "resolved"]),
        # for 2 minutes: pending, still pending, fires when it has held for 120 s
        (Rule("r", ERRORS, for_s=120), [0.5, 0.5, 0.5, 0.0], ["pending", None, "fired", "resolved"]),
        # a breach shorter than `for` never fires
        (Rule("r", ERRORS, for_s=120), [0.5, 0.0, 0.5, 0.0], ["pending", "cleared", "pending", "cleared"]),
        # keep_firing_for: stays firing through a short dip, resolves once it has been clear that long
        (Rule("r", ERRORS, keep_firing_for_s=120), [0.5, 0.0, 0.5, 0.0, 0.0, 0.0],
         ["fired", None, None, None, "resolved", None]),
    ],
)  # fmt: skip
def test_rule_state_machine(rule, values, expected):
    transitions, _ = run(rule, values)
    assert transitions == expected


def test_baseline_is_learned_and_an_incident_does_not_become_normal():
    rule = Rule("slow", Condition.parse("latency_p95_ms > 2.0 x baseline"))
    normal = [100.0] * BASELINE_MIN_POINTS
    transitions, state = run(rule, [*normal, 150.0, 300.0, 320.0, 340.0, 110.0])
    assert transitions[: BASELINE_MIN_POINTS + 1] == [None] * (BASELINE_MIN_POINTS + 1)
    assert transitions[-4:] == ["fired", None, None, "resolved"]
    assert state.learned_baseline() == pytest.approx(105.5, rel=0.05)  # the 300s were not learned


def test_no_baseline_rule_fires_before_enough_history():
    rule = Rule("slow", Condition.parse("latency_p95_ms > 2.0 x baseline"))
    transitions, _ = run(rule, [100.0] * 3 + [1000.0])
    assert transitions == [None] * 4


def test_builtin_rules():
    perf, errors = builtin_rules()
    assert (perf.name, str(perf.condition), perf.severity, perf.cooldown_s) == (
        "performance_degradation", "latency_p95_ms > 2 x baseline", "high", 300.0)  # fmt: skip
    assert (errors.name, str(errors.condition), errors.severity, errors.cooldown_s) == (
        "error_rate_increase", "error_rate > 0.1", "critical", 600.0)  # fmt: skip
    assert all(r.cooldown_s == 60 for r in builtin_rules(cooldown_s=60))


@pytest.mark.parametrize(
    ("scope", "key", "applies"),
    [("workflow", "billing-sync", True), ("workflow", "crm-sync", False), ("service", "billing-sync", False)],
)
def test_rules_select_series_by_scope_and_glob(scope, key, applies):
    assert Rule("r", ERRORS, match="billing-*").applies_to(scope, key) is applies


def alert(alert_id, *, firing=True, cooldown_s=600.0, rule="error_rate_increase", group_by=("rule",), **labels):
    return Alert(alert_id, rule, "critical", labels, firing, cooldown_s, group_by)


def test_one_notification_per_cooldown_despite_continued_firing():
    state = NotifierState()
    sent = []
    for minute in range(25):  # the alert keeps firing for 25 minutes, evaluated every minute
        plan = plan_notifications([alert("a1", workflow="wf")], state, now=60.0 * minute)
        sent += [(minute, n.reason) for n in plan.notifications]
    assert sent == [(0, "firing"), (10, "repeat"), (20, "repeat")]


def test_resolution_is_told_once_and_a_quick_refire_waits_for_the_cooldown():
    state = NotifierState()
    steps = [(0, True), (60, False), (120, False), (180, True), (600, True)]
    told = []
    for now, firing in steps:
        plan = plan_notifications([alert("a1", firing=firing)], state, now=now)
        told.append([n.reason for n in plan.notifications] or plan.muted.get("a1"))
    assert told == [["firing"], ["resolved"], None, "cooldown", ["firing"]]


def test_grouping_tells_many_alerts_in_one_notification():
    state = NotifierState()
    alerts = [alert("a1", workflow="wf-1"), alert("a2", workflow="wf-2"),
              alert("b1", rule="performance_degradation", workflow="wf-1")]  # fmt: skip
    plan = plan_notifications(alerts, state, now=0)
    assert [(n.group, sorted(a.alert_id for a in n.alerts)) for n in plan.notifications] == [
        (("rule=error_rate_increase",), ["a1", "a2"]),
        (("rule=performance_degradation",), ["b1"]),
    ]
    # a new alert joining a told group is told with its group
    plan = plan_notifications([*alerts, alert("a3", workflow="wf-3")], state, now=30)
    assert [(n.reason, [a.alert_id for a in n.alerts]) for n in plan.notifications] == [("firing", ["a3"])]


@pytest.mark.parametrize(
    ("silence", "muted"),
    [
        (Silence("s1", {"workflow": "wf-1"}, starts_at=0, ends_at=300), {"a1": "silenced:s1"}),
        (Silence("s1", {"workflow": "wf-*", "rule": "error_*"}, starts_at=0, ends_at=300),
         {"a1": "silenced:s1", "a2": "silenced:s1"}),
        (Silence("s1", {"workflow": "wf-1"}, starts_at=0, ends_at=100), {}),  # expired
        (Silence("s1", {"workflow": "wf-1"}, starts_at=200, ends_at=400), {}),  # not yet
    ],
)  # fmt: skip
def test_silences_mute_matching_alerts_until_they_expire(silence, muted):
    plan = plan_notifications([alert("a1", workflow="wf-1"), alert("a2", workflow="wf-2")], NotifierState(), now=150,
                              silences=[silence])  # fmt: skip
    assert plan.muted == muted
    told = {a.alert_id for n in plan.notifications for a in n.alerts}
    assert told == {"a1", "a2"} - set(muted)


STEP_RULE = InhibitRule(source={"scope": "service"}, target={"scope": "step"}, equal=("service",))
WORKFLOW_RULE = InhibitRule(
    source={"scope": "service"}, target={"scope": "workflow"}, within=(("service", "services"),)
)


@pytest.mark.parametrize(
    ("target", "muted"),
    [
        (alert("t", scope="step", service="slack"), "inhibited:svc"),
        (alert("t", scope="step", service="asana"), None),  # another service
        (alert("t", scope="workflow", services="asana,slack"), "inhibited:svc"),  # the workflow calls slack
        (alert("t", scope="workflow", services="slack"), "inhibited:svc"),
        (alert("t", scope="workflow", services="asana"), None),
        (alert("t", scope="workflow", services="slackware"), None),  # a list of names, not a substring
        (alert("t", scope="workflow"), None),  # no step seen: nothing explains it
        (alert("t", scope="tenant", services="slack"), None),  # not a target of either rule
        (alert("t", scope="service", service="slack"), None),  # a service does not mute another of its alerts
    ],
)  # fmt: skip
def test_a_service_alert_inhibits_the_step_and_workflow_alerts_it_explains(target, muted):
    source = alert("svc", scope="service", service="slack")
    plan = plan_notifications([source, target], NotifierState(), now=0, inhibit=[STEP_RULE, WORKFLOW_RULE])
    assert plan.muted.get("t") == muted
    assert "svc" in {a.alert_id for n in plan.notifications for a in n.alerts}


def test_a_source_without_the_label_explains_nothing():
    raised = alert("svc", scope="service")  # raised from outside, naming no service
    plan = plan_notifications([raised, alert("t", scope="workflow")], NotifierState(), now=0, inhibit=[WORKFLOW_RULE])
    assert plan.muted == {}


def waiting(alert_id, fired_at, group_wait_s=30.0, **labels):
    return Alert(alert_id, "error_rate_increase", "critical", labels, True, 600.0, ("rule",), fired_at, group_wait_s)


@pytest.mark.parametrize(
    ("timeline", "told"),
    [
        # (now, alerts firing then) -> (now, alerts told then)
        ([(0, ["a"]), (29, ["a"]), (30, ["a"])], [(30, ["a"])]),  # the first waits group_wait_s
        ([(0, ["a"]), (10, ["a", "b"]), (30, ["a", "b"])], [(30, ["a", "b"])]),  # one joining is told with it
        ([(0, ["a"]), (30, ["a"]), (40, ["a", "b"])], [(30, ["a"]), (40, ["b"])]),  # a told group: at once
        ([(0, ["a"]), (10, [])], []),  # resolved while waiting: nothing to tell
        ([(45, ["a"])], [(45, ["a"])]),  # evaluated late: the wait counts from when it fired
    ],
)  # fmt: skip
def test_a_new_group_waits_before_its_first_notification(timeline, told):
    fired = {"a": 0.0, "b": 10.0}
    state, sent = NotifierState(), []
    for now, ids in timeline:
        alerts = [waiting(i, fired[i]) for i in ids]
        plan = plan_notifications(alerts, state, now=now)
        sent += [(now, sorted(a.alert_id for a in n.alerts)) for n in plan.notifications if n.reason != "resolved"]
        assert all(until == 30.0 for until in plan.waiting.values())  # the group's first alert fired at 0
    assert sent == told


def test_an_alert_inhibited_during_its_group_wait_is_never_told():
    """The workflow's alert fires first; the service's, which explains it, a few seconds later."""
    workflow = waiting("wf", 0.0, group_wait_s=10.0, scope="workflow", services="slack")
    service = waiting("svc", 4.0, group_wait_s=0.0, scope="service", service="slack")
    state = NotifierState()
    assert plan_notifications([workflow], state, now=0, inhibit=[WORKFLOW_RULE]).waiting == {"wf": 10.0}
    plan = plan_notifications([workflow, service], state, now=4, inhibit=[WORKFLOW_RULE])
    assert [a.alert_id for n in plan.notifications for a in n.alerts] == ["svc"]
    assert plan.muted == {"wf": "inhibited:svc"}
    plan = plan_notifications([workflow, service], state, now=12, inhibit=[WORKFLOW_RULE])
    assert plan.notifications == [] and plan.muted["wf"] == "inhibited:svc"
    # without the wait, the workflow's alert would have been told before its explanation fired
    eager = plan_notifications([waiting("wf", 0.0, group_wait_s=0.0, scope="workflow", services="slack")],
                               NotifierState(), now=0, inhibit=[WORKFLOW_RULE])  # fmt: skip
    assert [a.alert_id for n in eager.notifications for a in n.alerts] == ["wf"]


def test_once_the_service_alert_resolves_the_alert_it_muted_is_told():
    alerts = [alert("svc", scope="service", service="slack"), alert("wf", scope="workflow", services="slack")]
    state = NotifierState()
    assert plan_notifications(alerts, state, now=0, inhibit=[WORKFLOW_RULE]).muted == {"wf": "inhibited:svc"}
    alerts[0] = alert("svc", firing=False, scope="service", service="slack")
    plan = plan_notifications(alerts, state, now=60, inhibit=[WORKFLOW_RULE])
    assert [(n.reason, [a.alert_id for a in n.alerts]) for n in plan.notifications] == [
        ("firing", ["wf"]), ("resolved", ["svc"])]  # fmt: skip


def test_backtest_finds_what_the_live_evaluation_fires_and_counts_notifications_by_cooldown():
    from domain.alerting import backtest, rule_from_spec
    from schemas.monitoring import AlertRuleSpec

    rule = rule_from_spec(AlertRuleSpec(name="errors", condition="error_rate > 0.1", for_s=60, cooldown_s=300))
    bad = [0.0] * 5 + [0.5] * 12 + [0.0] * 3 + [0.3] * 4
    points = {"wf-1": [(60.0 * (i + 1), v) for i, v in enumerate(bad)], "wf-2": [(60.0, 0.0), (120.0, 0.05)]}
    found = backtest(rule, points)
    live, state = run(rule, bad)
    fired = [60.0 * (i + 1) for i, t in enumerate(live) if t == "fired"]
    resolved = [60.0 * (i + 1) for i, t in enumerate(live) if t == "resolved"]
    assert [(a.key, a.fired_at, a.resolved_at) for a in found] == [
        ("wf-1", fired[0], resolved[0]),
        ("wf-1", fired[1], None),  # still firing when the range ends
    ]
    assert found[0].notifications == 3  # 11 minutes firing, one notification per 5 minutes
    assert found[0].first_value == 0.5 and found[0].peak_value == 0.5


@pytest.mark.parametrize("condition", ["error_rate > ", "latency > 1"])
def test_a_bad_spec_is_refused_with_the_reason(condition):
    from domain.alerting import rule_from_spec
    from schemas.monitoring import AlertRuleSpec

    with pytest.raises(RuleError, match="condition"):
        rule_from_spec(AlertRuleSpec(name="r", condition=condition))


def test_only_learning_ticks_teach_the_baseline():
    rule = Rule("slow", Condition.parse("latency_p95_ms > 2 x baseline"))
    state = AlertState()
    for i in range(30):
        evaluate(rule, state, value=100.0 if i % 5 == 0 else 900.0, at=float(i), learn=i % 5 == 0)
    assert state.baseline == 100.0 and state.baseline_points == 6


def route(matchers, *channels, then=False):
    return AlertRoute(matchers=matchers, channels=tuple(ChannelRef(type="email", to=(c,)) for c in channels),
                      continue_matching=then)  # fmt: skip


ROUTES = [
    route({"severity": "critical"}, "pager", then=True),
    route({"workflow": "billing-*"}, "billing"),
    route({"rule": "error_rate_*"}, "errors"),
    route({}, "everyone-else"),
]


@pytest.mark.parametrize(
    ("labels", "told"),
    [
        ({"severity": "critical", "workflow": "billing-eu", "rule": "x"}, ["pager", "billing"]),  # continues
        ({"severity": "high", "workflow": "billing-eu", "rule": "error_rate_increase"}, ["billing"]),  # first wins
        ({"severity": "high", "workflow": "crm", "rule": "error_rate_increase"}, ["errors"]),
        ({"severity": "critical", "workflow": "crm", "rule": "slow"}, ["pager", "everyone-else"]),
        ({"severity": "low", "rule": "slow"}, ["everyone-else"]),  # no workflow label: '' does not match billing-*
    ],
)  # fmt: skip
def test_routes_send_alerts_by_their_labels(labels, told):
    assert [c.to[0] for c in routed(ROUTES, labels)] == told


def test_no_routes_route_nothing():
    assert routed([], {"severity": "critical"}) == []
