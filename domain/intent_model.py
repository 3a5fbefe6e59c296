"""A small multinomial logistic regression over sparse string features, in pure Python.

Service detection uses it to score each service mention as the trigger, an
action, or neither (``domain/intent.py``). It is trained by stochastic
gradient descent with AdaGrad step sizes and L2 shrinkage, in a seeded
order, so the same examples always give the same model.

>>> model = LogisticModel.train([({"a"}, "x"), ({"b"}, "y")] * 20, classes=("x", "y"), epochs=5)
>>> max(model.probabilities({"a"}).items(), key=lambda kv: kv[1])[0]
'x'
"""

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass
class LogisticModel:
    classes: tuple[str, ...]
    weights: dict[str, list[float]] = field(default_factory=dict)
    """feature -> one weight per class."""
    bias: list[float] = field(default_factory=list)

    def scores(self, features: Iterable[str]) -> list[float]:
        totals = list(self.bias) if self.bias else [0.0] * len(self.classes)
        for feature in features:
            row = self.weights.get(feature)
            if row is not None:
                for k, w in enumerate(row):
                    totals[k] += w
        return totals

    def probabilities(self, features: Iterable[str]) -> dict[str, float]:
        return dict(zip(self.classes, _softmax(self.scores(features)), strict=True))

    @classmethod
    def train(
        cls,
        examples: Sequence[tuple[set[str], str]],
        *,
        classes: tuple[str, ...],
        epochs: int = 12,
        rate: float = 0.3,
        l2: float = 1e-4,
        seed: int = 7,
    ) -> "LogisticModel":
        """Fit on ``(features, class)`` pairs."""
        model = cls(classes, {}, [0.0] * len(classes))
        squared: dict[str, list[float]] = {}
        bias_squared = [1e-8] * len(classes)
        index = {c: k for k, c in enumerate(classes)}
        order = list(range(len(examples)))
        rng = random.Random(seed)
        for _ in range(epochs):
            rng.shuffle(order)
            for n in order:
                features, label = examples[n]
                probs = _softmax(model.scores(features))
                gradient = [p - (k == index[label]) for k, p in enumerate(probs)]
                for feature in features:
                    row = model.weights.setdefault(feature, [0.0] * len(classes))
                    acc = squared.setdefault(feature, [1e-8] * len(classes))
                    _step(row, acc, gradient, rate, l2)
                _step(model.bias, bias_squared, gradient, rate, 0.0)
        return model


def _step(row: list[float], acc: list[float], gradient: Sequence[float], rate: float, l2: float) -> None:
    for k, g in enumerate(gradient):
        g += l2 * row[k]
        acc[k] += g * g
        row[k] -= rate * g / math.sqrt(acc[k])


def _softmax(scores: Sequence[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def top_class(probabilities: Mapping[str, float]) -> str:
    return max(probabilities.items(), key=lambda kv: kv[1])[0]
