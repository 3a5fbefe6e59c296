"""``flowledger eval errors``: score the error classifier against a labelled set of real error formats.

The labelled set is JSON Lines, one message a line::

    {"source": "slack", "status": 200, "error_type": null, "message": "{\\"ok\\": false, ...}",
     "label": "credentials", "ref": "https://api.slack.com/...", "split": "dev"}

``split`` is ``dev`` (what the rules were tuned on) or ``holdout`` (kept out
of tuning); each split is scored on its own. The report gives precision,
recall and F1 per class, accuracy, every wrong answer grouped by
(label, predicted), and the classification time per message (p50/p95).
"""

import argparse
import json
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.error_classifier import classify
from domain.error_rules import CLASSES

DEFAULT_SET = Path(__file__).resolve().parents[1] / "tests" / "data" / "error_messages.jsonl"
SPLITS = ("dev", "holdout")


@dataclass(frozen=True)
class Labelled:
    source: str
    status: int | None
    error_type: str | None
    message: str
    label: str
    ref: str
    split: str


@dataclass(frozen=True)
class ClassScore:
    error_class: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Report:
    per_class: tuple[ClassScore, ...]
    correct: int
    total: int
    confusion: tuple[tuple[tuple[str, str], int], ...]
    """(label, predicted) -> count, wrong answers only, most frequent first."""

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


def load_labelled(path: Path) -> list[Labelled]:
    """Every line of a labelled set; a line missing a field is an error naming the line."""
    rows: list[Labelled] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item: dict[str, Any] = json.loads(line)
            rows.append(
                Labelled(
                    source=item["source"],
                    status=item.get("status"),
                    error_type=item.get("error_type"),
                    message=item["message"],
                    label=item["label"],
                    ref=item.get("ref", ""),
                    split=item.get("split", "dev"),
                )
            )
        except (ValueError, KeyError) as exc:
            raise ValueError(f"{path}:{number}: not a labelled error message ({exc})") from exc
    return rows


def predict(row: Labelled) -> str:
    return classify(row.message, status_code=row.status, error_type=row.error_type).error_class


def score(pairs: Iterable[tuple[str, str]], classes: Sequence[str] = CLASSES) -> Report:
    """Precision, recall and F1 per class from (label, predicted) pairs.

    >>> r = score([("timeout", "timeout"), ("network", "timeout"), ("network", "network")])
    >>> r.accuracy, [(c.error_class, c.precision, c.recall) for c in r.per_class if c.support]
    (0.6666666666666666, [('timeout', 0.5, 1.0), ('network', 1.0, 0.5)])
    """
    pairs = list(pairs)
    labelled = Counter(label for label, _ in pairs)
    predicted = Counter(guess for _, guess in pairs)
    right = Counter(label for label, guess in pairs if label == guess)
    per_class = []
    for name in classes:
        precision = right[name] / predicted[name] if predicted[name] else 0.0
        recall = right[name] / labelled[name] if labelled[name] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append(ClassScore(name, precision, recall, f1, labelled[name]))
    wrong = Counter((label, guess) for label, guess in pairs if label != guess)
    return Report(tuple(per_class), sum(right.values()), len(pairs), tuple(wrong.most_common()))


def time_per_message(rows: Sequence[Labelled], rounds: int) -> tuple[float, float]:
    """p50 and p95 of one classification, in microseconds, over ``rounds`` passes (after one warm-up pass)."""
    for row in rows:
        predict(row)
    samples: list[int] = []
    for _ in range(rounds):
        for row in rows:
            start = time.perf_counter_ns()
            predict(row)
            samples.append(time.perf_counter_ns() - start)
    samples.sort()
    return samples[len(samples) // 2] / 1000, samples[int(len(samples) * 0.95)] / 1000


def format_report(title: str, report: Report, wrong: Sequence[tuple[Labelled, str]]) -> str:
    lines = [title, f"{'class':<17}{'precision':>10}{'recall':>8}{'f1':>7}{'support':>9}"]
    for c in report.per_class:
        if c.support or c.precision:
            lines.append(f"{c.error_class:<17}{c.precision:>10.2f}{c.recall:>8.2f}{c.f1:>7.2f}{c.support:>9}")
    lines.append(f"accuracy {report.accuracy:.3f} ({report.correct}/{report.total})")
    if report.confusion:
        lines.append("wrong (label -> predicted):")
        for (label, guess), count in report.confusion:
            lines.append(f"  {label} -> {guess}: {count}")
            for row, _ in (w for w in wrong if w[0].label == label and w[1] == guess):
                text = " ".join(row.message.split())
                lines.append(f"      [{row.source}] {text[:100]}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    path: Path = args.file or DEFAULT_SET
    if not path.is_file():
        raise ValueError(f"no labelled set at {path}")
    rows = load_labelled(path)
    splits = SPLITS if args.split == "all" else (args.split,)
    counts = Counter(row.split for row in rows)
    print(f"labelled set: {path.name}, {len(rows)} messages ({', '.join(f'{counts[s]} {s}' for s in SPLITS)})\n")
    for split in splits:
        chosen = [row for row in rows if row.split == split]
        guesses = [(row, predict(row)) for row in chosen]
        report = score((row.label, guess) for row, guess in guesses)
        wrong = [(row, guess) for row, guess in guesses if guess != row.label]
        print(format_report(f"{split} ({len(chosen)} messages)", report, wrong) + "\n")
    p50, p95 = time_per_message(rows, args.rounds)
    print(f"classification time per message: p50 {p50:.1f} us, p95 {p95:.1f} us ({len(rows)} messages x {args.rounds})")
    return 0


def add_parser(evaluations: Any) -> None:
    """The ``errors`` verb of ``flowledger eval``."""
    errors = evaluations.add_parser("errors", help="the error classifier against a labelled set of error messages")
    errors.add_argument("file", type=Path, nargs="?", default=None, help="JSON Lines; default: the project's set")
    errors.add_argument("--split", choices=("all", *SPLITS), default="all", help="which split to score")
    errors.add_argument("--rounds", type=int, default=20, help="timing passes over the set")
    errors.set_defaults(run_eval=run)
