"""The Numenta Anomaly Benchmark (NAB) scoring rule, as a pure function of scores and labels.

A detector gives every record of a data file an anomaly score; a threshold turns
scores into detections (``score >= threshold``). Each labelled anomaly window
rewards its earliest detection by where it falls in the window and each missed
window costs ``fn_weight``. A detection outside every window is a false
positive: before the file's first window it costs ``fp_weight``; after a window
it costs ``fp_weight`` times a sigmoid of its distance past that window's end
(in window lengths), so alerts trailing just behind an anomaly are nearly free.
Records in the probationary period (the first 15% of a file, at most 750) are
ignored.

Weights of a record, with ``sig(x) = 2 / (1 + exp(5x)) - 1``:

* inside a window ``[a, b]`` (width ``w = b - a + 1``), at index ``i``:
  ``tp_weight * sig(-(b - i + 1) / w) / sig(-1)``: exactly ``tp_weight`` at the
  window start, close to 0 at its end;
* after the window, at index ``i > b``: ``fp_weight * sig((i - b) / (w - 1))``,
  and ``-fp_weight`` when ``(i - b) / (w - 1) >= 3``.

One threshold serves the whole corpus for a profile: the one whose summed raw
score is highest, found by sweeping every distinct score value. Scores are
normalised to 100 for a perfect detector (every window detected at its start,
no false positive) and 0 for the null detector (never detects):
``100 * (raw - null) / (perfect - null)`` with ``perfect = windows * tp_weight``
and ``null = -windows * fn_weight``.

>>> round(scaled_sigmoid(-1.0), 5), scaled_sigmoid(0.0), scaled_sigmoid(3.0)
(0.98661, 0.0, -1.0)
>>> probation_length(1000), probation_length(10_000)
(150, 750)
"""

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PROBATION_PERCENT = 0.15
PROBATION_CAP_ROWS = 5000  # the probation period never exceeds 15% of 5000 rows


@dataclass(frozen=True)
class Profile:
    """A cost matrix: how much a detected window, a false positive and a missed window weigh."""

    name: str
    tp_weight: float = 1.0
    fp_weight: float = 0.11
    fn_weight: float = 1.0


PROFILES: dict[str, Profile] = {
    "standard": Profile("standard", 1.0, 0.11, 1.0),
    "reward_low_FP_rate": Profile("reward_low_FP_rate", 1.0, 0.22, 1.0),
    "reward_low_FN_rate": Profile("reward_low_FN_rate", 1.0, 0.11, 2.0),
}


def profiles_from_json(document: Mapping[str, Any]) -> dict[str, Profile]:
    """Profiles from NAB's ``profiles.json`` layout: ``{name: {"CostMatrix": {"tpWeight": ..}}}``."""
    profiles: dict[str, Profile] = {}
    for name, body in document.items():
        costs = body["CostMatrix"]
        profiles[name] = Profile(name, float(costs["tpWeight"]), float(costs["fpWeight"]), float(costs["fnWeight"]))
    return profiles


def probation_length(rows: int, percent: float = PROBATION_PERCENT) -> int:
    """Number of leading records whose detections are ignored."""
    return int(min(math.floor(percent * rows), percent * PROBATION_CAP_ROWS))


def scaled_sigmoid(position: float) -> float:
    """``2 * sigmoid(-5 * position) - 1``, pinned to -1 from ``position >= 3`` on."""
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


_MAX_TP = scaled_sigmoid(-1.0)


def window_spans(timestamps: Sequence[datetime], windows: Iterable[tuple[datetime, datetime]]) -> list[tuple[int, int]]:
    """Index spans ``(first, last)`` of the records inside each labelled window, in time order.

    ``timestamps`` must be sorted. Windows holding no record are dropped (they cannot be scored).
    """
    spans: list[tuple[int, int]] = []
    for start, end in sorted(windows):
        first = bisect.bisect_left(timestamps, start)
        last = bisect.bisect_right(timestamps, end) - 1
        if first <= last:
            spans.append((first, last))
    return spans


def record_weights(rows: int, spans: Sequence[tuple[int, int]], profile: Profile) -> list[tuple[int, float] | None]:
    """For each record: ``None`` in probation, else ``(window, weight)``.

    ``window`` is the index in ``spans`` of the window holding the record, or -1
    outside every window; ``weight`` is what a detection there adds to the raw
    score (positive in a window, negative outside).
    """
    probation = probation_length(rows)
    out: list[tuple[int, float] | None] = []
    ordered = sorted(spans)
    k = 0  # next window not yet started
    previous: tuple[int, int] | None = None  # last window ended before i
    for i in range(rows):
        while k < len(ordered) and ordered[k][1] < i:
            previous = ordered[k]
            k += 1
        if i < probation:
            out.append(None)
        elif k < len(ordered) and ordered[k][0] <= i:
            first, last = ordered[k]
            width = last - first + 1
            out.append((k, profile.tp_weight * scaled_sigmoid(-(last - i + 1) / width) / _MAX_TP))
        elif previous is None:
            out.append((-1, -profile.fp_weight))
        else:
            width = previous[1] - previous[0] + 1
            # a one-record window has no length to measure distance in: count as far past it
            position = (i - previous[1]) / (width - 1) if width > 1 else 3.0
            out.append((-1, profile.fp_weight * scaled_sigmoid(position)))
    return out


@dataclass(frozen=True)
class Labelled:
    """One data file's anomaly scores (one per record) and its windows as index spans."""

    name: str
    scores: Sequence[float]
    spans: Sequence[tuple[int, int]]


@dataclass(frozen=True)
class FileResult:
    name: str
    raw: float
    detected: int  # windows with a detection
    missed: int
    false_positives: int  # detections outside every window, after probation
    windows: int


def score_file(item: Labelled, profile: Profile, threshold: float) -> FileResult:
    """Raw NAB score of one file when every record scoring ``>= threshold`` is a detection."""
    best: dict[int, float] = {}
    fp_total = 0.0
    fp_count = 0
    for score, slot in zip(item.scores, record_weights(len(item.scores), item.spans, profile), strict=True):
        if slot is None or score < threshold:
            continue
        window, weight = slot
        if window < 0:
            fp_total += weight
            fp_count += 1
        elif weight > best.get(window, -math.inf):
            best[window] = weight  # the earliest detection in a window weighs most
    windows = len(item.spans)
    raw = sum(best.values()) + fp_total - (windows - len(best)) * profile.fn_weight
    return FileResult(item.name, raw, len(best), windows - len(best), fp_count, windows)


@dataclass(frozen=True)
class CorpusResult:
    profile: Profile
    threshold: float
    raw: float
    windows: int
    files: list[FileResult] = field(default_factory=list)

    @property
    def null(self) -> float:
        return -self.windows * self.profile.fn_weight

    @property
    def perfect(self) -> float:
        return self.windows * self.profile.tp_weight

    @property
    def normalised(self) -> float:
        return normalise(self.raw, self.windows, self.profile)


def normalise(raw: float, windows: int, profile: Profile) -> float:
    """0 for the null detector, 100 for the perfect one; NaN when there are no windows."""
    null = -windows * profile.fn_weight
    perfect = windows * profile.tp_weight
    if perfect == null:
        return math.nan
    return 100.0 * (raw - null) / (perfect - null)


def sweep_threshold(items: Sequence[Labelled], profile: Profile) -> tuple[float, float]:
    """The corpus-wide threshold with the highest summed raw score, and that score.

    Every distinct score value is tried, from the highest down; a threshold above
    every score (no detection) is the starting point. Ties keep the higher threshold.
    """
    points: list[tuple[float, int, float]] = []  # (score, global window id or -1, weight)
    offset = 0
    for item in items:
        for score, slot in zip(item.scores, record_weights(len(item.scores), item.spans, profile), strict=True):
            if slot is not None:
                window, weight = slot
                points.append((score, offset + window if window >= 0 else -1, weight))
        offset += len(item.spans)
    raw = -offset * profile.fn_weight
    best_raw, best_threshold = raw, math.inf
    credited: dict[int, float] = {}
    points.sort(key=lambda p: p[0], reverse=True)
    i = 0
    while i < len(points):
        threshold = points[i][0]
        while i < len(points) and points[i][0] == threshold:
            _, window, weight = points[i]
            if window < 0:
                raw += weight
            else:
                before = credited.get(window)
                if before is None:
                    credited[window] = weight
                    raw += weight + profile.fn_weight
                elif weight > before:
                    credited[window] = weight
                    raw += weight - before
            i += 1
        if raw > best_raw:
            best_raw, best_threshold = raw, threshold
    return best_threshold, best_raw


def score_corpus(items: Sequence[Labelled], profile: Profile, threshold: float | None = None) -> CorpusResult:
    """Score every file with one threshold: ``threshold`` if given, else the swept best."""
    if threshold is None:
        threshold, _ = sweep_threshold(items, profile)
    files = [score_file(item, profile, threshold) for item in items]
    return CorpusResult(profile, threshold, sum(f.raw for f in files), sum(f.windows for f in files), files)
