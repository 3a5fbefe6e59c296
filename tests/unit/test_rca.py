import pytest

from domain.rca import Attempt, rank

T0 = 1_800_000_000.0


def attempt(service, ok=True, *, wf="w1", run=None, step=None, at=0.0, cls=None, code=None, **extra):
    run = run or f"r-{wf}-{service}-{at}"
    return Attempt("t1", wf, run, step or service, service, T0 + at, ok, cls, code, extra.pop("message", ""), **extra)


def outage():
    """hubspot answers 503 to every call of three workflows; slack works."""
    items = []
    for i in range(30):
        wf = f"w{i % 3}"
        items.append(attempt("hubspot", False, wf=wf, at=i * 4, cls="upstream_5xx", code=503, message="503"))
        items.append(attempt("slack", True, wf=wf, at=i * 4 + 1))
    return items


def rate_limit():
    """slack is called more and more; the more calls a minute, the more 429s."""
    items = []
    for minute, (calls, limited) in enumerate([(5, 0), (10, 1), (20, 6), (40, 20)]):
        for i in range(calls):
            bad = i < limited
            items.append(attempt("slack", not bad, at=minute * 60 + i, cls="rate_limited" if bad else None,
                                 code=429 if bad else None))  # fmt: skip
    return items


def credentials():
    """gmail with credential c1 is refused every time; c2 works."""
    return [
        *(attempt("gmail", False, at=i, cls="credentials", code=401, credential_id="c1") for i in range(8)),
        *(attempt("gmail", True, at=i + 0.5, credential_id="c2") for i in range(8)),
    ]


def change():
    """Version 1 always succeeded; version 2's new step fails validation."""
    v1 = [attempt("asana", True, run=f"a{i}", at=i, version=1, inputs={"n": i}) for i in range(10)]
    v2 = [attempt("asana", False, run=f"b{i}", at=100 + i, version=2, cls="bad_input", code=400,
                  inputs={"n": i}) for i in range(10)]  # fmt: skip
    return v1 + v2


def bad_data():
    """Runs for customer 'acme' fail validation, the others pass."""
    items = []
    for i in range(20):
        customer = "acme" if i % 4 == 0 else f"c{i}"
        bad = customer == "acme"
        items.append(attempt("stripe", not bad, run=f"r{i}", at=i, cls="bad_input" if bad else None,
                             code=400 if bad else None, inputs={"customer": customer, "n": i}))  # fmt: skip
    return items


def step_bug():
    return [
        *(attempt("transform", False, at=i, cls="step_bug", message="ZeroDivisionError: division by zero")
          for i in range(5)),
        *(attempt("slack", True, at=i) for i in range(5)),
    ]  # fmt: skip


def downstream():
    """fetch fails in one workflow; notify, which needs it, is skipped each time."""
    items = []
    for i in range(5):
        items.append(attempt("gmail", False, run=f"r{i}", step="fetch", at=i, cls="timeout"))
        items.append(attempt("slack", False, run=f"r{i}", step="notify", at=i + 0.1, upstream_failed="fetch"))
    return items


def transient():
    """One 503 among many successes."""
    return [attempt("asana", True, at=i) for i in range(40)] + [attempt("asana", False, at=50, cls="upstream_5xx")]


@pytest.mark.parametrize(
    ("attempts", "cause", "subject"),
    [
        (outage(), "service_outage", {"service": "hubspot"}),
        (rate_limit(), "rate_limit", {"service": "slack"}),
        (credentials(), "credentials", {"service": "gmail", "credential_id": "c1"}),
        (change(), "change", {"workflow_id": "w1", "tenant_id": "t1", "version": 2}),
        (bad_data(), "bad_data", {"workflow_id": "w1", "tenant_id": "t1", "inputs": {"customer": "acme"}}),
        (step_bug(), "step_bug", {"workflow_id": "w1", "tenant_id": "t1", "step_id": "transform"}),
        (downstream(), "service_outage", {"service": "gmail"}),
        (transient(), "transient", {}),
    ],
    ids=["outage", "rate_limit", "credentials", "change", "bad_data", "step_bug", "downstream", "transient"],
)
def test_the_top_candidate_is_the_injected_cause(attempts, cause, subject):
    top = rank(attempts)[0]
    assert (top.cause, top.subject, top.role) == (cause, subject, "cause"), [c.to_json() for c in rank(attempts)]


def test_an_outage_across_three_workflows_is_surer_than_in_one():
    wide = rank(outage())[0].confidence
    narrow = rank([a for a in outage() if a.workflow_id == "w0"])[0].confidence
    assert wide == 0.875 and narrow == pytest.approx(0.5, abs=0.002)


def test_evidence_counts_times_and_examples():
    top = rank(outage())[0]
    evidence = top.evidence
    assert (evidence["failures"], evidence["calls"], evidence["workflows"], evidence["tenants"]) == (30, 30, 3, 1)
    assert (evidence["first_failure_at"], evidence["last_failure_at"]) == (T0, T0 + 116)
    assert evidence["examples"] == [{"run_id": "r-w0-hubspot-0", "step_id": "hubspot", "status_code": 503,
                                     "message": "503"}]  # fmt: skip


def test_the_skipped_dependents_are_a_symptom_of_the_failing_step():
    ranked = rank(downstream())
    roles = {(c.cause, c.subject.get("step_id")): c.role for c in ranked}
    assert roles[("downstream", "fetch")] == "symptom"


def test_saturation_raises_the_rate_limit_confidence():
    flat = [attempt("slack", i % 4 != 0, at=m * 60 + i, cls=None if i % 4 else "rate_limited")
            for m in range(4) for i in range(20)]  # fmt: skip
    assert rank(rate_limit())[0].evidence["load_correlation"] > 0.9
    assert rank(flat)[0].evidence["load_correlation"] == 0.0


@pytest.mark.parametrize("attempts", [[], [attempt("slack", True)]])
def test_nothing_failed_nothing_ranked(attempts):
    assert rank(attempts) == []
