import random

import pytest

from domain.catalog import load_catalog
from domain.dag import plan_definition
from domain.optimization import analyze, data_dependencies, is_read, removable_edges, synthetic_runs
from domain.whatif import RecordedRun, RecordedStep, Resample, StepTimes, record
from schemas.workflows import WorkflowDefinition

CATALOG = load_catalog()


def definition(*steps):
    return WorkflowDefinition.model_validate(
        {"name": "w", "trigger": {"service": "webhook", "event": "call"}, "steps": list(steps)}
    )


def s(step_id, service, action, *, needs=(), params=None, **extra):
    return {"id": step_id, "service": service, "action": action, "needs": list(needs), "params": params or {},
            **extra}  # fmt: skip


LEADS = definition(  # four writes in a chain, none reading another
    s("contact", "hubspot", "create_contact", params={"email": "{{ trigger.email }}"}),
    s("announce", "slack", "post_message", needs=["contact"], params={"text": "{{ trigger.email }}"}),
    s("row", "google-sheets", "append_row", needs=["announce"], params={"values": "{{ trigger.email }}"}),
    s("mail", "mailchimp", "add_subscriber", needs=["row"], params={"email": "{{ trigger.email }}"}),
)
TRIAGE = definition(  # every edge carries data: nothing to gain
    s("fetch", "gmail", "get_message", params={"id": "{{ trigger.id }}"}),
    s("task", "asana", "create_task", params={"name": "{{ steps.fetch.output.subject }}"}),
    s("notify", "slack", "post_message", params={"text": "{{ steps.task.output.url }}"}),
)


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        # no data from the step waited for: the edge may go
        ([s("a", "gmail", "get_message"), s("b", "slack", "post_message", needs=["a"])], {"b": ("a",)}),
        # data flows through a template: kept
        ([s("a", "gmail", "get_message"),
          s("b", "slack", "post_message", needs=["a"], params={"t": "{{ steps.a.output.id }}"})], {}),
        # data flows through the condition: kept
        ([s("a", "gmail", "get_message"), s("b", "slack", "post_message", needs=["a"], when="steps.a.output.ok")],
         {}),
        # two writes to one service (create, then update): order kept
        ([s("a", "asana", "create_task"), s("b", "asana", "update_task", needs=["a"])], {}),
        # a read after a write of the same service may go
        ([s("a", "asana", "create_task"), s("b", "asana", "get_task", needs=["a"])], {"b": ("a",)}),
    ],
)  # fmt: skip
def test_removable_edges_follow_the_data(steps, expected):
    assert removable_edges(definition(*steps)) == expected


def test_data_dependencies_ignore_explicit_needs():
    assert data_dependencies(TRIAGE) == {"fetch": frozenset(), "task": {"fetch"}, "notify": {"task"}}
    assert all(not deps for deps in data_dependencies(LEADS).values())


@pytest.mark.parametrize(("action", "read"), [("get_message", True), ("find-contact", True), ("enrich", True),
                                               ("create_task", False), ("post_message", False)])  # fmt: skip
def test_reads_are_told_by_their_verb(action, read):
    assert is_read(action) is read


def recorded(defn, n=40, *, seed=1, spans=None, statuses=None, digests=None, lag=8.0, **step_extra):
    """Runs recorded under ``defn``: each step's call drawn from ``spans`` (ms range) after ``lag``."""
    rng = random.Random(seed)
    deps = plan_definition(defn).dependencies
    runs = []
    for i in range(n):
        ends: dict[str, float] = {}
        times = []
        status = "succeeded"
        for step_id in plan_definition(defn).order:
            st = next(x for x in defn.steps if x.id == step_id)
            ready = max((ends[d] for d in deps[step_id]), default=0.0)
            low, high = (spans or {}).get(step_id, (80, 120))
            first = ready + lag
            ends[step_id] = first + rng.uniform(low, high)
            state = (statuses or {}).get(step_id, lambda i: "succeeded")(i)
            times.append(StepTimes(step_id, st.service, st.action, state, first, ends[step_id],
                                   params_digest=(digests or {}).get(step_id, lambda i: None)(i),
                                   **step_extra.get(step_id, {})))  # fmt: skip
            if state == "failed":
                status = "failed"
                break
        runs.append(record(f"r{i}", i * 10.0, status, max(ends.values()) + 2, times, deps))
    return runs


def resample_of(runs):
    spans: dict[str, list[float]] = {}
    for r in runs:
        for st in r.steps.values():
            spans.setdefault(st.service, []).append(st.span_ms)
    return Resample(spans_ms=spans)


def kinds(analysis):
    return [(r.kind, r.step_ids, r.applied) for r in analysis.recommendations]


def test_a_chain_of_independent_writes_is_parallelized_with_its_replayed_gain():
    runs = recorded(LEADS)
    a = analyze(LEADS, runs, resample_of(runs), CATALOG)
    assert kinds(a) == [("parallelize", ("announce", "contact", "mail", "row"), True)]
    assert all(not step.get("needs") for step in a.optimized_definition["steps"])
    plan_definition(WorkflowDefinition.model_validate(a.optimized_definition))  # valid for the executor
    assert a.prediction["before"]["p50_ms"] == pytest.approx(a.prediction["recorded_p50_ms"], abs=0.5)
    assert a.prediction["cost_source"] == "catalog"  # no step reported what it cost
    assert 0.65 < a.prediction["gain_p50"] < 0.8  # four ~108 ms hops -> one
    low, high = a.prediction["gain_p50_interval"]
    assert low <= a.prediction["gain_p50"] <= high


def test_an_optimal_workflow_gets_no_recommendation():
    runs = recorded(TRIAGE)
    for strategy in ("performance", "cost", "reliability", "hybrid"):
        a = analyze(TRIAGE, runs, resample_of(runs), CATALOG, strategy=strategy)
        assert a.recommendations == () and a.optimized_definition is None
        assert a.prediction["gain_p50"] == 0


def test_an_unused_read_that_never_fails_is_dropped_and_one_that_fails_is_kept():
    d = definition(
        s("lookup", "hubspot", "find_contact", params={"email": "{{ trigger.email }}"}),
        s("notify", "slack", "post_message", needs=["lookup"], params={"text": "{{ trigger.email }}"}),
    )
    runs = recorded(d)
    assert ("drop_redundant", ("lookup",), True) in kinds(analyze(d, runs, resample_of(runs), CATALOG))
    guarded = recorded(d, statuses={"lookup": lambda i: "failed" if i % 10 == 0 else "succeeded"})
    assert not [k for k in kinds(analyze(d, guarded, resample_of(guarded), CATALOG)) if k[0] == "drop_redundant"]


def test_a_repeated_read_is_cached_when_its_calls_repeat():
    d = definition(
        s("company", "clearbit", "enrich", params={"domain": "{{ trigger.domain }}"}),
        s("task", "asana", "create_task", params={"name": "{{ steps.company.output.name }}"}),
    )
    repeating = recorded(d, spans={"company": (400, 500)}, digests={"company": lambda i: f"d{i % 4}"})
    a = analyze(d, repeating, resample_of(repeating), CATALOG)
    assert kinds(a) == [("cache", ("company",), True)]
    assert a.optimized_definition["steps"][0]["cache"] is True
    # runs 10 s apart over four parameter sets: each set misses once, then again once its entry is 300 s old
    assert a.recommendations[0].evidence["repeat_calls"] == 32
    unique = recorded(d, spans={"company": (400, 500)}, digests={"company": lambda i: f"d{i}"})
    assert analyze(d, unique, resample_of(unique), CATALOG).recommendations == ()


def test_transient_give_ups_get_a_retry_policy_under_reliability_not_cost():
    mail = s("mail", "gmail", "send_email", params={"to": "{{ steps.charge.output.email }}"})
    d = definition(s("charge", "stripe", "get_charge"), mail)
    fails = {"charge": lambda i: "failed" if i % 5 == 0 else "succeeded"}
    runs = recorded(d, statuses=fails)
    runs = [r if r.status == "succeeded" else _gave_up(r) for r in runs]
    a = analyze(d, runs, resample_of(runs), CATALOG, strategy="reliability")
    assert [k[0] for k in kinds(a)] == ["retry"]
    policy = a.optimized_definition["steps"][0]["retry"]
    assert policy["maximum_attempts"] > 3
    assert a.prediction["success_change"] > 0.1
    assert analyze(d, runs, resample_of(runs), CATALOG, strategy="cost").recommendations == ()


def _gave_up(r: RecordedRun) -> RecordedRun:
    charge = r.steps["charge"]
    steps = {
        "charge": RecordedStep(
            **{**charge.__dict__, "attempts": 3, "transient_failures": 3, "error_class": "upstream_5xx"}
        )
    }
    return RecordedRun(r.run_id, r.started_s, r.status, r.duration_ms, steps, r.tail_ms)


def test_batches_and_substitutions_are_advice_not_applied():
    d = definition(
        s("row1", "google-sheets", "append_row", params={"v": "{{ trigger.a }}"}),
        s("row2", "google-sheets", "append_row", params={"v": "{{ trigger.b }}"}),
    )
    runs = recorded(d, spans={"row1": (100, 110), "row2": (300, 310)})
    a = analyze(d, runs, resample_of(runs), CATALOG)
    assert ("batch", ("row1", "row2"), False) in kinds(a)
    assert a.optimized_definition is None


def test_without_history_the_catalog_latencies_are_used_and_marked():
    resample = Resample(default_span_ms={svc.id: svc.latency_ms for svc in CATALOG})
    runs = synthetic_runs(LEADS, resample)
    a = analyze(LEADS, runs, resample, CATALOG, history="catalog")
    assert a.history == "catalog" and a.recommendations[0].estimated_effect["history"] == "catalog"
    assert a.recommendations[0].kind == "parallelize"


def test_outages_get_a_fallback_the_tenant_already_uses_else_advice():
    d = definition(s("send", "sendgrid", "send_email", params={"to": "{{ trigger.email }}"}))
    down = {"send": lambda i: "failed" if i % 4 == 0 else "succeeded"}
    runs = [r if r.status == "succeeded" else _outage(r) for r in recorded(d, statuses=down)]
    used = Resample(spans_ms={"postmark": [90.0]}, success_rate={"postmark": 1.0, "sendgrid": 0.75})
    a = analyze(d, runs, used, CATALOG, strategy="reliability")
    # More attempts, a fallback, and (advice) moving to the service that answers better.
    assert sorted(kinds(a)) == [("fallback", ("send",), True), ("retry", ("send",), True),
                                ("substitute", ("send",), False)]  # fmt: skip
    assert a.optimized_definition["steps"][0]["fallback"] == {"service": "postmark"}
    assert a.prediction["success_change"] == 0.25  # every run that gave up succeeds one way or the other
    plan_definition(WorkflowDefinition.model_validate(a.optimized_definition))
    unknown = analyze(d, runs, Resample(spans_ms={"sendgrid": [90.0]}), CATALOG, strategy="reliability")
    assert ("fallback", ("send",), False) in kinds(unknown)


def _outage(r: RecordedRun) -> RecordedRun:
    send = r.steps["send"]
    steps = {"send": RecordedStep(**{**send.__dict__, "error_class": "upstream_5xx", "attempts": 3,
                                     "transient_failures": 3})}  # fmt: skip
    return RecordedRun(r.run_id, r.started_s, r.status, r.duration_ms, steps, r.tail_ms)


def test_a_change_made_moot_by_a_better_one_is_not_listed():
    d = definition(  # the read repeats its call (constant params) and nobody uses it: dropping beats caching
        s("sheet", "google-sheets", "get_values", params={"range": "A1:D20"}),
        s("post", "slack", "post_message", needs=["sheet"], params={"text": "{{ trigger.email }}"}),
    )
    runs = recorded(d)
    a = analyze(d, runs, resample_of(runs), CATALOG)
    assert kinds(a) == [("drop_redundant", ("sheet",), True)]
    assert [step["id"] for step in a.optimized_definition["steps"]] == ["post"]
