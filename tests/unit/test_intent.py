"""Service detection: table-driven over the keyword path and, when the labelled recipes are there, the learned one."""

import json

import pytest

from domain.catalog import load_catalog
from domain.expressions import compile_expression
from domain.intent import Detector, Example
from domain.intent_conditions import find_conditions
from domain.intent_eval import Expected, Predicted, k_folds, percentile, score
from domain.intent_model import LogisticModel
from domain.intent_text import MentionFinder, edit_distance, stem, tokenize
from domain.latency import PROJECT_DIR, find_shared_data

CATALOG = load_catalog()
SHARED = find_shared_data({}, PROJECT_DIR)
DEV_SET = SHARED / "detection" / "zapier_dev.jsonl" if SHARED else None

SEED = "When I get important emails, create asana tasks and notify slack"

# sentence, acceptable triggers, actions in order, condition expressions that must be among those found
CASES = [
    (SEED, {"gmail", "email"}, ["asana", "slack"], ['trigger.importance == "high"']),
    ("text me when someone tags me in photos of me on facebook", {"facebook"}, ["sms"], []),
    ("add new g cal events to my google sheets", {"google-calendar"}, ["google-sheets"], []),
    ("tweet my new instagram photos", {"instagram"}, ["twitter"], []),
    (
        "whenever a new row is added in Google Sheets, create a Trello card and then post its link to Slack",
        {"google-sheets"}, ["trello", "slack"], [],
    ),
    ("Save starred gmail attachments to dropbox", {"gmail"}, ["dropbox"], ["trigger.starred == True"]),
    ("post new youtube vids to my facebok page", {"youtube"}, ["facebook-pages"], []),
    ("when a stripe charge over $100 succeeds, add a row to airtable", {"stripe"}, ["airtable"],
     ["trigger.amount > 100"]),
    ("Send a WhatsApp message when a Typeform entry arrives", {"typeform"}, ["whats-app"], []),
    (
        "Create a Jira issue for every new Zendesk ticket labeled 'bug'",
        {"zendesk"}, ["jira"], ['contains(trigger.labels, "bug")'],
    ),
    ("Copy new Dropbx files to Google Drive", {"dropbox"}, ["google-drive"], []),
    ("Notify the team in Microsoft Teams when a PagerDuty incident is triggered", {"pagerduty"},
     ["microsoft-teams"], []),
    ("If it rains tomorrow, send me an SMS", {"weather"}, ["sms"], []),
    ("Email me when someone mentions me on twitter", {"twitter"}, ["email"], []),
    ("When a new Trellow card is created, add an Evernoet note", {"trello"}, ["evernote"], []),
]  # fmt: skip


def _detectors():
    yield pytest.param(Detector(CATALOG), id="keyword")
    if DEV_SET is not None and DEV_SET.is_file():
        rows = [json.loads(line) for line in DEV_SET.read_text().splitlines() if line.strip()]
        examples = [Example(r["text"], r["trigger_service"], r["action_service"]) for r in rows]
        yield pytest.param(Detector.train(CATALOG, examples), id="learned")
    else:
        yield pytest.param(None, id="learned", marks=pytest.mark.skip(reason="shared data directory not found"))


@pytest.fixture(scope="module", params=list(_detectors()))
def detector(request):
    return request.param


@pytest.mark.parametrize(("text", "triggers", "actions", "conditions"), CASES, ids=[c[0][:40] for c in CASES])
def test_detects_trigger_actions_in_order_and_conditions(detector, text, triggers, actions, conditions):
    found = detector.detect(text)
    assert found.trigger is not None and found.trigger.service in triggers
    assert [a.service for a in found.actions] == actions
    expressions = [c.expression for c in found.conditions]
    assert all(c in expressions for c in conditions), expressions
    assert 0 < found.confidence <= 1


def test_seed_actions_are_independent_and_have_functions(detector):
    found = detector.detect(SEED)
    assert [a.needs for a in found.actions] == [(), ()]
    assert found.actions[0].function in {f.name for f in CATALOG.get("asana").actions}
    assert found.to_json()["services"][1:] == ["asana", "slack"]


def test_then_makes_an_action_wait_for_the_one_before(detector):
    found = detector.detect(CASES[4][0])
    assert [a.needs for a in found.actions] == [(), (0,)]


def test_no_service_means_no_trigger_and_zero_confidence(detector):
    found = detector.detect("nothing to automate here")
    assert (found.trigger, found.actions, found.confidence) == (None, (), 0.0)


def test_unsure_readings_come_with_alternatives():
    found = Detector(CATALOG).detect("I want slack messages saved as asana tasks")
    assert found.confidence < 0.6
    assert [(a.trigger, a.actions) for a in found.alternatives] == [("asana", ("slack",))]


@pytest.mark.parametrize(
    ("text", "expression"),
    [
        ("important emails", 'trigger.importance == "high"'),
        ("urgent tickets", 'contains(lower(trigger.subject), "urgent")'),
        ("emails with attachments", "trigger.has_attachment == True"),
        ('emails labeled "clients"', 'contains(trigger.labels, "clients")'),
        ("tweets containing #launch", 'contains(lower(trigger.text), "#launch")'),
        ("mail from boss@acme.com", 'trigger.sender == "boss@acme.com"'),
        ("orders over $250.50", "trigger.amount > 250.5"),
    ],
)
def test_conditions_are_valid_trigger_filters(text, expression):
    found = [c.expression for c in find_conditions(text)]
    assert found == [expression]
    compile_expression(expression)


def test_a_pronoun_is_not_a_condition():
    assert find_conditions("email me when someone mentions me") == []


@pytest.mark.parametrize(
    ("words", "stems_equal"),
    [(["email", "emails", "emailed", "emailing"], True), (["create", "creates", "created", "creating"], True),
     (["tag", "tagged"], True), (["sms", "sm"], False), (["box", "boxes"], True)],
)  # fmt: skip
def test_stem_folds_inflections(words, stems_equal):
    assert (len({stem(w) for w in words}) == 1) == stems_equal


def test_tokenize_keeps_dotted_names_in_one_sentence():
    tokens = tokenize("Sync Box.net files. Then stop")
    assert [(t.text, t.sentence) for t in tokens] == [("sync", 0), ("box", 0), ("net", 0), ("files", 0), ("then", 1),
                                                      ("stop", 1)]  # fmt: skip


@pytest.mark.parametrize(
    ("a", "b", "distance"), [("trello", "trelo", 1), ("evernote", "evernoet", 1), ("asana", "slack", 3)]
)
def test_edit_distance(a, b, distance):
    assert edit_distance(a, b) == distance


def test_everyday_words_are_not_fuzzy_service_names():
    finder = MentionFinder(CATALOG)
    assert [m.service for m in finder.find(tokenize("a simple notice about sales"))] == []


def test_k_folds_are_disjoint_cover_everything_and_keep_groups_together():
    folds = k_folds(10, 3)
    assert sorted(i for f in folds for i in f) == list(range(10))
    grouped = k_folds(6, 2, groups=["a", "a", "b", "b", "c", "c"])
    assert all({i // 2 for i in fold} for fold in grouped)
    assert all(len({i // 2 for i in fold}) * 2 == len(fold) for fold in grouped)
    with pytest.raises(ValueError, match="at least 2"):
        k_folds(10, 1)


def test_scores_and_percentiles():
    scores = score([(Predicted("a", ("b",)), Expected("a", "b")), (Predicted(None, ()), Expected("a", "b"))])
    assert (scores.trigger_accuracy, scores.channel_accuracy, scores.set_f1) == (0.5, 0.5, 0.5)
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0
    assert percentile([], 95) == 0.0


def test_training_is_deterministic():
    rows = [({"x", f"n{i % 3}"}, "a" if i % 2 else "b") for i in range(30)]
    first = LogisticModel.train(rows, classes=("a", "b"))
    second = LogisticModel.train(rows, classes=("a", "b"))
    assert first.weights == second.weights
