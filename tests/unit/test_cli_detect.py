"""`flowledger detect` and `flowledger eval detection` on small files, including bad lines."""

import io
import json

import pytest

from flowledger.cli import main

RECIPES = [
    ("Gmail New Email to Trello Create Card", "gmail", "trello"),
    ("Create Asana Task from New Gmail Email", "gmail", "asana"),
    ("Dropbox New File to Slack Send Message", "dropbox", "slack"),
    ("Send Email for New Dropbox File", "dropbox", "email"),
    ("Twitter New Follower to Twitter Create Tweet", "twitter", "twitter"),
    ("RSS New Item to Twitter Create Tweet", "rss", "twitter"),
    ("Wufoo New Entry to Trello Create Card", "wufoo", "trello"),
    ("Add New Google Calendar Events to Evernote", "google-calendar", "evernote"),
]


@pytest.fixture
def labelled(tmp_path):
    path = tmp_path / "recipes.jsonl"
    lines = [
        json.dumps({"id": f"r{i}", "text": text, "trigger_service": t, "action_service": a})
        for i, (text, t, a) in enumerate(RECIPES)
    ]
    lines.insert(3, "{not json")
    lines.insert(5, json.dumps({"id": "no-labels", "text": "Gmail to Slack"}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_detect_writes_one_line_per_good_input_and_reports_bad_lines(tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"id": 1, "text": "When I get important emails, create asana tasks and notify slack"}\n'
        "oops\n"
        "[1, 2]\n"
        '{"id": 4}\n'
        "\n"
        '{"id": "x", "text": "nothing here"}\n'
    )
    assert main(["detect", str(source), "--keyword"]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in rows] == [1, "x"]
    assert rows[0]["trigger"] == "email" and rows[0]["actions"] == ["asana", "slack"]
    assert rows[0]["services"] == ["email", "asana", "slack"] and 0 < rows[0]["confidence"] <= 1
    assert rows[0]["conditions"][0]["expression"] == 'trigger.importance == "high"'
    assert (rows[1]["trigger"], rows[1]["actions"], rows[1]["confidence"]) == (None, [], 0)
    assert f"{source}:2: not JSON" in err
    assert f"{source}:3: not a JSON object" in err
    assert f'{source}:4: missing "text"' in err


def test_detect_reads_standard_input(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO('{"id": "a", "text": "tweet my new instagram photos"}\n'))
    assert main(["detect", "--keyword"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert (row["id"], row["trigger"], row["actions"]) == ("a", "instagram", ["twitter"])


def test_detect_learns_from_a_training_file(labelled, tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": 1, "text": "Gmail New Email to Slack Send Message"}\n')
    assert main(["detect", str(source), "--train", str(labelled)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["trigger"] == "gmail"
    assert "learned from 8 recipes" in err


@pytest.mark.parametrize("mode", [["--keyword"], ["--folds", "2"], ["--folds", "2", "--group-by-title"]])
def test_eval_prints_accuracies_latency_and_a_json_summary(labelled, capsys, mode):
    assert main(["eval", "detection", str(labelled), *mode]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["examples"] == 8
    for key in (
        "trigger_accuracy",
        "action_accuracy",
        "channel_accuracy",
        "set_f1",
        "latency_p50_ms",
        "latency_p95_ms",
    ):
        assert 0 <= summary[key] <= (1 if "accuracy" in key or key == "set_f1" else 1000)
    assert "channel_accuracy" in out and "p95" in out
    assert f"{labelled}:4: not JSON" in err
    assert f"{labelled}:6: missing trigger_service, action_service" in err


def test_eval_keyword_path_scores_the_recipes(labelled, capsys):
    main(["eval", "detection", str(labelled), "--keyword"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["channel_accuracy"] >= 0.75


def test_eval_refuses_one_fold_for_the_learned_path(labelled, capsys):
    assert main(["eval", "detection", str(labelled), "--folds", "1"]) == 2
    assert "--folds must be at least 2" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["eval", "detection", "{missing}"], ["detect", "{missing}", "--keyword"]])
def test_a_missing_file_is_a_clear_error_not_a_traceback(tmp_path, capsys, argv):
    missing = str(tmp_path / "nope.jsonl")
    assert main([a.format(missing=missing) for a in argv]) == 1
    assert "nope.jsonl" in capsys.readouterr().err
