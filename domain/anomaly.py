"""Online anomaly scoring of one metric series."""

import math
import pickle
from dataclasses import dataclass

from river import stats


@dataclass(frozen=True)
class DetectorConfig:
    alpha: float = 0.01
    warmup: int = 50


@dataclass(frozen=True)
class Score:
    score: float
    expected_low: float | None
    expected_high: float | None


class SeriesDetector:
    def __init__(self, config: DetectorConfig = DetectorConfig()) -> None:
        self.config = config
        self._mean = stats.EWMean(config.alpha)
        self._var = stats.EWVar(config.alpha)
        self._n = 0

    def score_one(self, t: float, value: float) -> Score:
        mean, sd = self._mean.get(), math.sqrt(max(self._var.get(), 0.0))
        score = 0.0
        low = high = None
        if self._n >= self.config.warmup:
            z = abs(value - mean) / sd if sd > 0 else (0.0 if value == mean else 10.0)
            score = math.erf(z / math.sqrt(2))
            low, high = mean - 3 * sd, mean + 3 * sd
        self._mean.update(value)
        self._var.update(value)
        self._n += 1
        return Score(score, low, high)

    def to_state(self) -> bytes:
        return pickle.dumps(self)

    @classmethod
    def from_state(cls, data: bytes) -> "SeriesDetector":
        detector = pickle.loads(data)  # noqa: S301 - states are written by to_state
        if not isinstance(detector, cls):
            raise TypeError("not a SeriesDetector state")
        return detector


def explain(metric: str, value: float, score: Score, unit: str = "") -> str:
    suffix = f" {unit}" if unit else ""
    text = f"{metric} {value:g}{suffix}"
    if score.expected_low is not None and score.expected_high is not None:
        text += f", expected {score.expected_low:g}-{score.expected_high:g}{suffix}"
    return text
