"""Run the anomaly detector over a NAB-layout corpus and score its output.

``DATA_DIR/<category>/<file>.csv`` holds ``timestamp,value`` rows; the results
mirror that layout with an ``anomaly_score`` column added. Scoring reads the
results, the labelled windows (``combined_windows.json``) and the cost
profiles, sweeps one threshold per profile and prints normalised scores.
"""

import argparse
import csv
import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from domain.anomaly import DetectorConfig, SeriesDetector
from domain.latency import PROJECT_DIR, find_shared_data
from domain.nab import PROFILES, CorpusResult, Labelled, Profile, profiles_from_json, score_corpus, window_spans
from flowledger import progress

NAB_DIR = Path("nab")  # under the shared data directory: data/, labels/, profiles.json
LABELS_FILE = Path("labels") / "combined_windows.json"
PROFILES_FILE = Path("profiles.json")


@dataclass(frozen=True)
class Series:
    name: str  # path relative to the corpus root, with "/" separators
    timestamps: list[datetime]
    values: list[float]
    scores: list[float] | None = None

    @property
    def category(self) -> str:
        return self.name.split("/", 1)[0]


def default_nab_dir(environ: dict[str, str] | None = None) -> Path | None:
    """``<shared data>/nab`` when the shared data directory exists."""
    import os

    shared = find_shared_data(dict(os.environ) if environ is None else environ, PROJECT_DIR)
    return shared / NAB_DIR if shared else None


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.strip())


def epoch_seconds(stamp: datetime) -> float:
    return stamp.replace(tzinfo=UTC).timestamp() if stamp.tzinfo is None else stamp.timestamp()


def csv_files(root: Path) -> list[str]:
    """The CSVs under ``root``, relative to it; a missing or empty directory is an error, not an empty corpus."""
    if not root.is_dir():
        raise ValueError(f"{root}: not a directory")
    names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.csv"))
    if not names:
        raise ValueError(f"{root}: no CSV files under it (NAB layout: <category>/<name>.csv with timestamp,value)")
    return names


def read_series(root: Path, name: str) -> Series:
    """One CSV with ``timestamp``, ``value`` and optionally ``anomaly_score`` columns."""
    stamps: list[datetime] = []
    values: list[float] = []
    scores: list[float] = []
    with (root / name).open(newline="") as rows:
        for line, row in enumerate(csv.DictReader(rows), start=2):
            try:
                stamps.append(parse_time(row["timestamp"]))
                values.append(float(row["value"]))
                if "anomaly_score" in row:
                    scores.append(float(row["anomaly_score"]))
            except KeyError as exc:
                raise ValueError(f"{name}: no {exc} column (expected timestamp,value)") from None
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name}:{line}: {exc}") from None
    return Series(name, stamps, values, scores if scores else None)


def read_corpus(root: Path) -> list[Series]:
    return [read_series(root, name) for name in csv_files(root)]


def read_windows(path: Path) -> dict[str, list[tuple[datetime, datetime]]]:
    document = json.loads(path.read_text())
    return {name: [(parse_time(a), parse_time(b)) for a, b in spans] for name, spans in document.items()}


def read_profiles(path: Path | None) -> dict[str, Profile]:
    return profiles_from_json(json.loads(path.read_text())) if path else dict(PROFILES)


def detect(series: Series, config: DetectorConfig) -> list[float]:
    """Anomaly scores of one series from a fresh detector, fed in time order."""
    detector = SeriesDetector(config)
    return [
        detector.score_one(epoch_seconds(t), v).score for t, v in zip(series.timestamps, series.values, strict=True)
    ]


def run_detector(data_dir: Path, out_dir: Path, config: DetectorConfig | None = None) -> tuple[int, float]:
    """Write scored copies of every series; return (points, seconds spent in the detector)."""
    config = config or DetectorConfig()
    points, spent = 0, 0.0
    names = csv_files(data_dir)
    with progress.bar("score series", len(names), "file") as shown:
        for name in names:
            series = read_series(data_dir, name)
            started = time.perf_counter()
            scores = detect(series, config)
            spent += time.perf_counter() - started
            points += len(scores)
            write_scores(out_dir / series.name, series, scores)
            shown.update()
    return points, spent


def write_scores(target: Path, series: Series, scores: list[float]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["timestamp", "value", "anomaly_score"])
        for stamp, value, score in zip(series.timestamps, series.values, scores, strict=True):
            writer.writerow([stamp.isoformat(sep=" "), repr(value), repr(score)])


def labelled(series: Iterable[Series], windows: dict[str, list[tuple[datetime, datetime]]]) -> list[Labelled]:
    """Pair scored series with their windows; a series missing from the labels is an error."""
    items = []
    for s in series:
        if s.scores is None:
            raise ValueError(f"{s.name}: no anomaly_score column")
        if s.name not in windows:
            raise ValueError(f"{s.name}: not in the labels file")
        items.append(Labelled(s.name, s.scores, window_spans(s.timestamps, windows[s.name])))
    return items


def category_scores(result: CorpusResult) -> dict[str, dict[str, float]]:
    """Per category at the corpus threshold: raw score, windows, and normalised score (NaN without windows)."""
    from domain.nab import normalise

    out: dict[str, dict[str, float]] = {}
    for f in result.files:
        entry = out.setdefault(f.name.split("/", 1)[0], {"raw": 0.0, "windows": 0, "false_positives": 0})
        entry["raw"] += f.raw
        entry["windows"] += f.windows
        entry["false_positives"] += f.false_positives
    for entry in out.values():
        entry["normalised"] = normalise(entry["raw"], int(entry["windows"]), result.profile)
    return out


def score_all(items: list[Labelled], profiles: dict[str, Profile]) -> dict[str, CorpusResult]:
    return {name: score_corpus(items, profile) for name, profile in profiles.items()}


def report(results: dict[str, CorpusResult]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name, result in results.items():
        detected = sum(f.detected for f in result.files)
        summary[name] = {
            "score": round(result.normalised, 2),
            "threshold": result.threshold,
            "raw": round(result.raw, 4),
            "windows_detected": detected,
            "windows": result.windows,
            "false_positives": sum(f.false_positives for f in result.files),
        }
    if "standard" in results:
        summary["standard_by_category"] = {
            cat: {k: (None if isinstance(v, float) and math.isnan(v) else round(v, 2)) for k, v in entry.items()}
            for cat, entry in category_scores(results["standard"]).items()
        }
    return summary


def cmd_nab(data_dir: Path, out_dir: Path) -> int:
    points, spent = run_detector(data_dir, out_dir)
    print(f"scored {points} points in {spent:.2f} s: {1e6 * spent / max(points, 1):.1f} us per point")
    return 0


def cmd_score(out_dir: Path, labels: Path, profiles_path: Path | None) -> int:
    results = score_all(labelled(read_corpus(out_dir), read_windows(labels)), read_profiles(profiles_path))
    summary = report(results)
    for name, entry in summary.items():
        if name == "standard_by_category":
            continue
        print(
            f"{name:20s} {entry['score']:7.2f}  (threshold {entry['threshold']:.6g}, "
            f"{entry['windows_detected']}/{entry['windows']} windows, {entry['false_positives']} false positives)"
        )
    for cat, entry in summary.get("standard_by_category", {}).items():
        shown = "   n/a" if entry["normalised"] is None else f"{entry['normalised']:7.2f}"
        print(f"  standard {cat:24s} {shown}  (raw {entry['raw']:.2f}, {entry['false_positives']:.0f} fp)")
    print(json.dumps(summary, sort_keys=True))
    return 0


def add_parser(sub: Any) -> None:
    """The ``anomaly`` subcommand and its ``nab`` and ``score`` verbs."""
    anomaly = sub.add_parser("anomaly", help="the online anomaly detector against the NAB benchmark")
    verbs = anomaly.add_subparsers(dest="anomaly_command", required=True)
    run = verbs.add_parser("nab", help="score every CSV under DATA_DIR into OUT_DIR")
    run.add_argument("data_dir", type=Path)
    run.add_argument("out_dir", type=Path)
    score = verbs.add_parser("score", help="NAB scores of OUT_DIR against the labelled windows")
    score.add_argument("out_dir", type=Path)
    score.add_argument("labels", type=Path, nargs="?", default=None, help="default: the shared NAB labels")
    score.add_argument("--profiles", type=Path, default=None, help="default: the shared NAB profiles, else built in")


def dispatch(args: argparse.Namespace) -> int:
    if args.anomaly_command == "nab":
        return cmd_nab(args.data_dir, args.out_dir)
    shared = default_nab_dir()
    labels = args.labels or (shared / LABELS_FILE if shared else None)
    if labels is None or not labels.is_file():
        raise ValueError("no labels file given and none in the shared data directory")
    profiles = args.profiles
    if profiles is None and shared and (shared / PROFILES_FILE).is_file():
        profiles = shared / PROFILES_FILE
    return cmd_score(args.out_dir, labels, profiles)
