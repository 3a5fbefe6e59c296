"""``flowledger detect`` and ``flowledger eval detection``: service detection over JSON Lines.

Input lines are JSON objects. ``detect`` reads ``{"id", "text"}`` and writes
one JSON line per input line; ``eval detection`` reads labelled recipes
(``text``, ``trigger_service``, ``action_service`` and optionally
``trigger_function``, ``action_function``). A line that is not such an object
is reported on stderr with its line number and skipped.

The learned detector is trained at start-up from a labelled file: ``--train
FILE``, else ``<shared data>/detection/zapier_dev.jsonl`` when the shared
data directory is found (``FLOWLEDGER_SHARED_DATA`` or ``../shared/data``
beside the project). Without one, or with ``--keyword``, the keyword path
runs alone.
"""

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from domain.catalog import load_catalog
from domain.intent import Detector, Example
from domain.intent_eval import Expected, Predicted, k_folds, percentile, score
from domain.latency import PROJECT_DIR, find_shared_data

DEV_SET = Path("detection") / "zapier_dev.jsonl"


def add_parsers(
    sub: "argparse._SubParsersAction[argparse.ArgumentParser]",
    evaluations: "argparse._SubParsersAction[argparse.ArgumentParser]",
) -> None:
    """``flowledger detect`` and the ``detection`` verb of ``flowledger eval``."""
    detect = sub.add_parser("detect", help="detect trigger and action services in sentences (JSON Lines)")
    detect.add_argument("file", nargs="?", type=Path, help='JSON Lines of {"id", "text"}; standard input when absent')
    _add_detector_options(detect)
    detection = evaluations.add_parser("detection", help="service detection against labelled recipes (JSON Lines)")
    detection.add_argument("file", type=Path)
    detection.add_argument("--folds", type=int, default=5, help="k for k-fold evaluation of the learned path")
    detection.add_argument(
        "--group-by-title", action="store_true",
        help="keep recipes with the same title (first sentence) in one fold: scores on unseen titles only",
    )  # fmt: skip
    detection.add_argument("--keyword", action="store_true", help="the keyword path alone (no learning)")
    detection.add_argument("--errors", type=int, default=0, help="also print this many misdetected recipes")
    detection.set_defaults(run_eval=dispatch_eval)


def _add_detector_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keyword", action="store_true", help="the keyword path alone (no learning)")
    parser.add_argument("--train", type=Path, default=None, help="labelled JSON Lines to learn from")


def read_json_lines(stream: IO[str], source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each good line; bad lines are reported on stderr and skipped."""
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            _bad(source, number, f"not JSON ({exc.msg})")
            continue
        if not isinstance(value, dict):
            _bad(source, number, "not a JSON object")
            continue
        yield number, value


def _bad(source: str, number: int, reason: str) -> None:
    print(f"{source}:{number}: {reason}; line skipped", file=sys.stderr)


def read_examples(path: Path) -> list[Example]:
    examples = []
    with path.open(encoding="utf-8") as stream:
        for number, row in read_json_lines(stream, str(path)):
            fields = ("text", "trigger_service", "action_service")
            missing = [f for f in fields if not isinstance(row.get(f), str) or not row[f]]
            if missing:
                _bad(str(path), number, f"missing {', '.join(missing)}")
                continue
            examples.append(
                Example(
                    row["text"], row["trigger_service"], row["action_service"],
                    row.get("trigger_function"), row.get("action_function"),
                )
            )  # fmt: skip
    return examples


def default_training_file() -> Path | None:
    shared = find_shared_data(os.environ, PROJECT_DIR)
    path = shared / DEV_SET if shared else None
    return path if path and path.is_file() else None


def build_detector(keyword: bool, train: Path | None) -> Detector:
    catalog = load_catalog()
    if keyword:
        return Detector(catalog)
    path = train or default_training_file()
    if path is None:
        print("no labelled recipes found (use --train FILE): keyword path only", file=sys.stderr)
        return Detector(catalog)
    examples = read_examples(path)
    print(f"learned from {len(examples)} recipes in {path}", file=sys.stderr)
    return Detector.train(catalog, examples)


def cmd_detect(args: argparse.Namespace) -> int:
    detector = build_detector(args.keyword, args.train)
    source = str(args.file) if args.file else "<stdin>"
    stream = args.file.open(encoding="utf-8") if args.file else sys.stdin
    with stream:
        for number, row in read_json_lines(stream, source):
            text = row.get("text")
            if not isinstance(text, str):
                _bad(source, number, 'missing "text" (a string)')
                continue
            found = detector.detect(text)
            print(json.dumps({"id": row.get("id"), **found.to_json()}, ensure_ascii=False), flush=False)
    sys.stdout.flush()
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    examples = read_examples(args.file)
    if not examples:
        print(f"{args.file}: no labelled recipes", file=sys.stderr)
        return 1
    catalog = load_catalog()
    if args.keyword:
        plans = [(Detector(catalog), list(range(len(examples))))]
        mode = "keyword path (no learning)"
    else:
        groups = [e.text.split(". ")[0].strip().lower() for e in examples] if args.group_by_title else None
        folds = k_folds(len(examples), args.folds, groups=groups)
        plans = []
        for held_out in folds:
            held = set(held_out)
            training = [e for i, e in enumerate(examples) if i not in held]
            plans.append((Detector.train(catalog, training), held_out))
        mode = f"learned path, {args.folds}-fold" + (" grouped by title" if args.group_by_title else "")
    pairs, latencies_ms, misses = [], [], []
    function_hits = [0, 0]
    for detector, indices in plans:
        for i in indices:
            example = examples[i]
            started = time.perf_counter()
            found = detector.detect(example.text)
            latencies_ms.append((time.perf_counter() - started) * 1000)
            predicted = Predicted(
                found.trigger.service if found.trigger else None, tuple(a.service for a in found.actions)
            )
            expected = Expected(catalog.canonical(example.trigger), catalog.canonical(example.action))
            pairs.append((predicted, expected))
            if predicted.trigger != expected.trigger or predicted.actions[:1] != (expected.action,):
                misses.append((example, predicted))
            elif found.trigger and found.actions:
                function_hits[0] += found.trigger.function == example.trigger_function
                function_hits[1] += found.actions[0].function == example.action_function
    scores = score(pairs)
    _report(args.file, mode, scores, latencies_ms, function_hits)
    for example, predicted in misses[: args.errors]:
        print(f"  expected {example.trigger} -> {example.action}, got {predicted.trigger} -> "
              f"{', '.join(predicted.actions) or '-'}: {example.text[:100]!r}")  # fmt: skip
    return 0


def _report(path: Path, mode: str, scores: Any, latencies_ms: list[float], function_hits: list[int]) -> None:
    channel_right = round(scores.channel_accuracy * scores.examples)
    summary = {
        "examples": scores.examples,
        "trigger_accuracy": round(scores.trigger_accuracy, 4),
        "action_accuracy": round(scores.action_accuracy, 4),
        "channel_accuracy": round(scores.channel_accuracy, 4),
        "set_f1": round(scores.set_f1, 4),
        "trigger_function_accuracy_when_channel_right": round(function_hits[0] / max(1, channel_right), 4),
        "action_function_accuracy_when_channel_right": round(function_hits[1] / max(1, channel_right), 4),
        "latency_p50_ms": round(percentile(latencies_ms, 50), 3),
        "latency_p95_ms": round(percentile(latencies_ms, 95), 3),
    }
    print(f"service detection on {path} ({scores.examples} recipes), {mode}")
    for key in ("trigger_accuracy", "action_accuracy", "channel_accuracy", "set_f1"):
        print(f"  {key:<17} {summary[key]:.1%}")
    print(f"  latency           p50 {summary['latency_p50_ms']:.3f} ms, p95 {summary['latency_p95_ms']:.3f} ms")
    print(json.dumps(summary))


def dispatch_eval(args: argparse.Namespace) -> int:
    if not args.keyword and args.folds < 2:
        print("flowledger eval detection: --folds must be at least 2 for the learned path", file=sys.stderr)
        return 2
    return cmd_eval(args)
