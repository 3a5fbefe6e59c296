"""The classifier against the project's labelled set, and the ``flowledger eval errors`` command."""

from collections import Counter

import pytest

from domain.error_rules import CLASSES
from domain.redaction import redact
from flowledger.cli import main
from flowledger.eval_errors import DEFAULT_SET, load_labelled, predict, score

ROWS = load_labelled(DEFAULT_SET)

# Measured: dev 1.000 (237/237), holdout 0.968 (92/95), every class >= 0.95 precision and recall on the whole set.
ACCURACY_FLOOR = {"dev": 0.97, "holdout": 0.9}
CLASS_FLOOR = 0.9


def test_labelled_set_is_large_cited_and_split():
    assert len(ROWS) >= 200
    assert {row.label for row in ROWS} == set(CLASSES)
    assert {row.split for row in ROWS} == {"dev", "holdout"}
    assert all(row.ref.startswith("https://") for row in ROWS)
    assert len({(row.status, row.error_type, row.message) for row in ROWS}) == len(ROWS)
    assert len(Counter(row.source for row in ROWS)) >= 15


def test_labelled_set_carries_no_token_formats():
    # Prose such as AWS's "the security token included in the request" is left alone.
    assert [row.message for row in ROWS if redact(row.message) != row.message] == []


@pytest.mark.parametrize("split", ["dev", "holdout"])
def test_accuracy_per_split(split):
    rows = [row for row in ROWS if row.split == split]
    report = score((row.label, predict(row)) for row in rows)
    assert report.accuracy >= ACCURACY_FLOOR[split], report.confusion


@pytest.mark.parametrize("error_class", CLASSES)
def test_precision_and_recall_per_class(error_class):
    report = score((row.label, predict(row)) for row in ROWS)
    scores = {c.error_class: c for c in report.per_class}
    assert scores[error_class].precision >= CLASS_FLOOR
    assert scores[error_class].recall >= CLASS_FLOOR


def test_score_counts_wrong_answers():
    report = score([("timeout", "timeout"), ("network", "timeout"), ("network", "timeout"), ("unknown", "unknown")])
    assert report.confusion == ((("network", "timeout"), 2),)
    assert (report.correct, report.total) == (2, 4)


def test_eval_errors_command(capsys):
    assert main(["eval", "errors", "--split", "holdout", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "holdout (" in out and "dev (" not in out
    assert "accuracy" in out and "p50" in out and "p95" in out


def test_eval_errors_reports_a_bad_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"source": "x", "message": "no label"}\n')
    assert main(["eval", "errors", str(bad)]) == 1
    assert "bad.jsonl:1" in capsys.readouterr().err
