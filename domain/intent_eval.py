"""Scoring service detection against labelled recipes, and k-fold splits that never test on training data.

>>> scores = score([(Predicted("gmail", ("trello",)), Expected("gmail", "trello")),
...                 (Predicted("rss", ("slack", "gmail")), Expected("rss", "gmail"))])
>>> scores.trigger_accuracy, scores.action_accuracy, scores.channel_accuracy, round(scores.set_f1, 3)
(1.0, 0.5, 0.5, 0.9)
"""

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Expected:
    trigger: str
    action: str


@dataclass(frozen=True)
class Predicted:
    trigger: str | None
    actions: tuple[str, ...]


@dataclass(frozen=True)
class Scores:
    examples: int
    trigger_accuracy: float
    """The trigger service is right."""
    action_accuracy: float
    """The first action service is right."""
    channel_accuracy: float
    """Both are right."""
    set_f1: float
    """Mean F1 of the predicted set of services against {trigger, action}."""


def score(pairs: Iterable[tuple[Predicted, Expected]]) -> Scores:
    n = trigger = action = channel = 0
    f1_total = 0.0
    for predicted, expected in pairs:
        n += 1
        trigger_ok = predicted.trigger == expected.trigger
        action_ok = bool(predicted.actions) and predicted.actions[0] == expected.action
        trigger += trigger_ok
        action += action_ok
        channel += trigger_ok and action_ok
        f1_total += set_f1(predicted, expected)
    if n == 0:
        return Scores(0, 0.0, 0.0, 0.0, 0.0)
    return Scores(n, trigger / n, action / n, channel / n, f1_total / n)


def set_f1(predicted: Predicted, expected: Expected) -> float:
    got = {s for s in (predicted.trigger, *predicted.actions) if s}
    want = {expected.trigger, expected.action}
    hits = len(got & want)
    if hits == 0:
        return 0.0
    precision, recall = hits / len(got), hits / len(want)
    return 2 * precision * recall / (precision + recall)


def k_folds(n: int, k: int, *, seed: int = 13, groups: Sequence[str] | None = None) -> list[list[int]]:
    """``k`` disjoint test folds over ``range(n)`` in a seeded order; with ``groups``, items of one group
    share a fold (so a recipe's near-copies are never on both sides)."""
    if k < 2:
        raise ValueError(f"k-fold needs at least 2 folds, got {k}")
    keys = list(groups) if groups is not None else [str(i) for i in range(n)]
    distinct = sorted(set(keys))
    random.Random(seed).shuffle(distinct)
    fold_of = {key: i % k for i, key in enumerate(distinct)}
    folds: list[list[int]] = [[] for _ in range(k)]
    for i, key in enumerate(keys):
        folds[fold_of[key]].append(i)
    return folds


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0-100)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]
