import pytest

from domain.catalog import load_catalog
from domain.dag import plan_definition
from domain.generation import GenerationError, History, generate
from domain.intent import Alternative, Condition, DetectedStep, Detection, Detector
from domain.patterns import Workflow, mine
from schemas.workflows import WorkflowDefinition

CATALOG = load_catalog()
DETECTOR = Detector(CATALOG)


def made(text, history=None):
    return generate(text, DETECTOR.detect(text), CATALOG, history=history)


def detection(trigger, *actions, conditions=()):
    steps = tuple(DetectedStep(s, f, 0.9, needs) for s, f, needs in actions)
    return Detection(DetectedStep(trigger[0], trigger[1], 0.9) if trigger else None, steps, conditions, 0.8)


@pytest.mark.parametrize(
    ("text", "trigger", "steps", "filter_"),
    [
        ("When I get important emails, create asana tasks and notify slack", "email",
         [("asana", []), ("slack", [])], 'trigger.importance == "high"'),
        ('When a new row is added to google sheets, create a trello card and then post "New lead" to #sales on slack',
         "google-sheets", [("trello", []), ("slack", ["trello"])], None),
        ("email bob@example.com when a stripe payment over $100 arrives", "stripe", [("email", [])],
         "trigger.amount > 100"),
        ("Save new Dropbox files to Google Drive", "dropbox", [("google-drive", [])], None),
    ],
)  # fmt: skip
def test_sentences_become_runnable_definitions(text, trigger, steps, filter_):
    out = made(text)
    definition = out.definition
    assert definition["trigger"]["service"] == trigger
    assert definition["trigger"].get("filter") == filter_
    assert [(s["service"], s["needs"]) for s in definition["steps"]] == steps
    plan_definition(WorkflowDefinition.model_validate(definition))  # the executor's own check


@pytest.mark.parametrize(
    ("text", "step", "params"),
    [
        ('When a new row is added to google sheets, create a trello card and then post "New lead" to #sales on slack',
         "slack",
         {"channel": "#sales", "text": "New lead {{ steps.trello.output.id }}"}),
        ("When a typeform is submitted, post to the marketing channel on slack", "slack", {"channel": "#marketing"}),
        ("When I get an email, send an sms to +1 555 010 9999", "sms", {"to": "+1 555 010 9999"}),
        ("email bob@example.com when a stripe payment over $100 arrives", "email", {"to": "bob@example.com"}),
        ("When I get important emails, create asana tasks", "asana", {"name": "{{ trigger.subject }}"}),
    ],
)  # fmt: skip
def test_params_come_from_the_actions_own_words_or_the_trigger(text, step, params):
    steps = {s["id"]: s for s in made(text).definition["steps"]}
    assert params.items() <= steps[step]["params"].items(), steps[step]["params"]


def test_a_quote_goes_to_the_action_whose_clause_holds_it():
    text = 'When a new row is added to google sheets, create a trello card and then post "New lead" to #sales on slack'
    steps = made(text).definition["steps"]
    assert "New lead" not in str(steps[0]["params"])


def test_required_params_the_text_leaves_open_are_listed_not_invented():
    out = generate("x", detection(("webhook", "call"), ("trello", "card", ())), CATALOG)
    assert set(out.missing_params["trello"]) == {"board", "list"}
    assert "board" not in out.definition["steps"][0]["params"]


def test_history_resolves_a_generic_service_and_says_so():
    text = "When I get an email, add a row to google sheets"
    assert made(text).definition["trigger"]["service"] == "email"
    out = made(text, History({"gmail": 12, "microsoft-outlook": 3, "slack": 50}))
    assert out.definition["trigger"]["service"] == "gmail"
    assert out.services[0]["replaces"] == "email"
    assert "12 times" in out.explanation[0]


@pytest.mark.parametrize(
    ("history", "service"),
    [
        ({}, "email"),
        ({"email": 1, "gmail": 30}, "email"),  # the user already uses the generic one
        ({"slack": 9}, "email"),  # nothing of the same category
        ({"gmail": 2, "microsoft-outlook": 5}, "microsoft-outlook"),
    ],
)
def test_history_only_replaces_what_the_user_never_used(history, service):
    text = "When I get an email, add a row to google sheets"
    assert made(text, History(history)).definition["trigger"]["service"] == service


def test_history_never_replaces_a_named_product():
    out = made("When I get an Outlook email, add a row to google sheets", History({"gmail": 40}))
    assert out.definition["trigger"]["service"] == "microsoft-outlook"


def test_no_trigger_means_a_webhook_and_duplicate_services_get_distinct_ids():
    found = detection(None, ("slack", "send_message", ()), ("slack", "send_message", ()))
    out = generate("post to slack twice", found, CATALOG)
    assert out.definition["trigger"] == {"service": "webhook", "event": "call"}
    assert [s["id"] for s in out.definition["steps"]] == ["slack", "slack-2"]


def test_conditions_join_into_the_trigger_filter():
    conditions = (Condition("important", 'trigger.importance == "high"'), Condition("over $5", "trigger.amount > 5"))
    out = generate("x", detection(("gmail", None), ("slack", None, ()), conditions=conditions), CATALOG)
    assert out.definition["trigger"]["filter"] == 'trigger.importance == "high" and trigger.amount > 5'
    assert out.definition["trigger"]["event"]  # a function is always named


@pytest.mark.parametrize(
    ("found", "says"),
    [(detection(None), "no service"), (detection(("twitter", "new_mention")), "only a trigger (twitter)")],
)
def test_nothing_to_do_is_refused_with_what_was_found(found, says):
    with pytest.raises(GenerationError, match=r"say what should happen") as info:
        generate("when a new tweet mentions me", found, CATALOG)
    assert says in str(info.value)


def test_patterns_rank_other_readings_and_suggest_the_tenants_templates():
    found = Detection(
        DetectedStep("gmail", None, 0.6), (DetectedStep("trello", None, 0.6),), (), 0.55,
        (Alternative("trello", ("gmail",), 0.4), Alternative("gmail", ("asana",), 0.3)),
    )  # fmt: skip
    mined = mine([Workflow(f"w{i}", {"trigger": {"service": "gmail"},
                                     "steps": [{"id": "a", "service": "asana"}, {"id": "s", "service": "slack"}]})
                  for i in range(3)], [], min_support=2)  # fmt: skip
    out = generate("x", found, CATALOG, patterns=mined)
    assert [(a["trigger"], a["your_workflows"]) for a in out.alternatives] == [("gmail", 3), ("trello", 0)]
    assert "matches 3 of your workflows" in out.explanation[-1]
    assert out.templates == [
        {"trigger": "gmail", "actions": ["asana", "slack"], "workflows": 3, "runs": 0, "example_workflow_id": "w0"}
    ]
    assert generate("x", found, CATALOG).templates == []
