from datetime import UTC, datetime

from domain.rca import Attempt
from domain.troubleshooting import Request, analyze

AT = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
T = AT.timestamp()


def request(*logs, workflow="w1"):
    return Request("ts-1", "t1", workflow, AT, logs, user_id="ana")


def attempt(workflow, service, ok, at, cls=None, code=None, run=None):
    return Attempt("t1", workflow, run or f"{workflow}-{at}", service, service, T - 600 + at, ok, cls, code, "503")


def outage():
    return [attempt(w, "zoho-crm", False, i, "upstream_5xx", 503) for i in range(10) for w in ("w1", "w2")] + [
        attempt("w1", "slack", True, i) for i in range(10)
    ]


def test_an_outage_seen_in_other_workflows_ranks_first_and_pauses_them_all():
    result = analyze(request(), outage())
    top = result.candidates[0]
    assert (top.cause, top.subject, top.evidence["workflows"]) == ("service_outage", {"service": "zoho-crm"}, 2)
    assert result.proposals[0].action == "pause_workflows"
    assert result.proposals[0].params["workflow_ids"] == ["w1", "w2"]
    assert result.failures_seen == 20


def test_attempts_of_unrelated_services_are_left_out():
    unrelated = [attempt("w9", "asana", False, i, "credentials", 401) for i in range(50)]
    result = analyze(request(), outage() + unrelated)
    assert {c.cause for c in result.candidates} == {"service_outage", "transient"}


def test_log_lines_alone_are_classified_and_ranked():
    result = analyze(request('{"ok": false, "error": "ratelimited"}', "slack answered 429 Too Many Requests"), [])
    assert [c["error_class"] for c in result.classifications] == ["rate_limited", "rate_limited"]
    assert (result.candidates[0].cause, result.candidates[0].subject) == ("rate_limit", {"service": "slack"})


def test_the_session_is_recorded_as_events_with_stable_ids_and_no_secret():
    line = "401 invalid_auth for token xoxb-123456789012-abcdefABCDEF"
    first = analyze(request(line), outage())
    again = analyze(request(line), outage())
    types = [e.type for e in first.events]
    assert types[:3] == ["SessionOpened", "EvidenceAdded", "EvidenceAdded"]
    assert types[3] == "RootCauseRanked" and set(types[4:]) == {"ResolutionProposed"}
    assert [e.event_id for e in first.events] == [e.event_id for e in again.events]
    assert all(e.payload.session_id == "ts-1" for e in first.events)
    assert "abcdefABCDEF" not in "".join(e.model_dump_json() for e in first.events)


def test_nothing_to_explain_still_opens_a_session():
    result = analyze(request(), [])
    assert result.candidates == [] and result.proposals == []
    assert [e.type for e in result.events] == ["SessionOpened", "EvidenceAdded"]
    assert "no failures" in result.summary
