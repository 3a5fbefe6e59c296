"""Service latency models for the sandbox: fitted to real task durations, fixed, or zero.

The ``trace`` model is a lognormal fitted (maximum likelihood: mean and
standard deviation of log durations) to the Alibaba cluster-trace-v2017
``batch_task`` table: tasks with status ``Terminated`` and a positive
``task_end_time - task_create_time``. One trace second becomes one
millisecond of service latency, which keeps the trace's shape (a short
median, a long tail) at the scale of API calls. Samples are capped at the
longest duration observed.

The trace is read at run time from ``<shared data>/traces/batch_task.csv``,
where the shared data directory is ``FLOWLEDGER_SHARED_DATA`` or the first
``shared/data`` found beside the project directory or one of its ancestors.
Without it the model falls back to ``FALLBACK``: a lognormal with mu 3.58
and sigma 1.82 (median 36 ms, p99 2.5 s, capped at 29.6 s), the fit of that
trace rounded.

>>> import random
>>> parse_latency("fixed:25").sample_ms(random.Random(0)), parse_latency("zero").p99_ms
(25.0, 0.0)
"""

import csv
import math
import random
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

MS_PER_TRACE_SECOND = 1.0
TRACE_FILE = Path("traces") / "batch_task.csv"
SHARED_DATA_ENV = "FLOWLEDGER_SHARED_DATA"
PROJECT_DIR = Path(__file__).resolve().parents[1]
_Z99 = statistics.NormalDist().inv_cdf(0.99)


@dataclass(frozen=True)
class LatencyModel:
    kind: Literal["lognormal", "fixed"]
    source: str
    mu: float = 0.0
    sigma: float = 0.0
    cap_ms: float = math.inf
    fixed_ms: float = 0.0

    def sample_ms(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            return self.fixed_ms
        return min(rng.lognormvariate(self.mu, self.sigma), self.cap_ms)

    def quantile_ms(self, q: float) -> float:
        if self.kind == "fixed":
            return self.fixed_ms
        return min(math.exp(self.mu + self.sigma * statistics.NormalDist().inv_cdf(q)), self.cap_ms)

    @property
    def median_ms(self) -> float:
        return self.quantile_ms(0.5)

    @property
    def p99_ms(self) -> float:
        return self.quantile_ms(0.99)


FALLBACK = LatencyModel("lognormal", "fallback lognormal (mu 3.58, sigma 1.82)", mu=3.58, sigma=1.82, cap_ms=29_585.0)


def fixed(ms: float) -> LatencyModel:
    if not math.isfinite(ms) or ms < 0:
        raise ValueError(f"fixed latency must be a finite number of ms >= 0, got {ms}")
    return LatencyModel("fixed", f"fixed {ms:g} ms", fixed_ms=ms)


def trace_durations_ms(path: Path) -> list[float]:
    """Durations of terminated tasks with positive duration, in sandbox milliseconds."""
    durations: list[float] = []
    with path.open(newline="") as rows:
        for row in csv.reader(rows):
            if len(row) < 6 or row[5].strip() != "Terminated":
                continue  # the header row, unfinished and failed tasks
            try:
                seconds = float(row[1]) - float(row[0])
            except ValueError:
                continue
            if seconds > 0:
                durations.append(seconds * MS_PER_TRACE_SECOND)
    return durations


def fit_lognormal(durations_ms: Iterable[float], source: str) -> LatencyModel:
    """Maximum-likelihood lognormal of positive durations, capped at the longest."""
    values = [d for d in durations_ms if d > 0]
    if len(values) < 2:
        raise ValueError(f"{source}: need at least two positive durations to fit, got {len(values)}")
    logs = [math.log(d) for d in values]
    return LatencyModel(
        "lognormal", source, mu=statistics.fmean(logs), sigma=statistics.pstdev(logs), cap_ms=max(values)
    )


def find_shared_data(environ: Mapping[str, str], start: Path) -> Path | None:
    """``FLOWLEDGER_SHARED_DATA``, else the nearest ``shared/data`` beside ``start`` or an ancestor."""
    if environ.get(SHARED_DATA_ENV):
        return Path(environ[SHARED_DATA_ENV])
    for directory in (start, *start.parents):
        candidate = directory / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None


def trace_model(environ: Mapping[str, str], start: Path) -> LatencyModel:
    """The lognormal fitted to the trace, or ``FALLBACK`` when the trace is not there."""
    shared = find_shared_data(environ, start)
    path = shared / TRACE_FILE if shared else None
    if path is None or not path.is_file():
        return FALLBACK
    return fit_lognormal(trace_durations_ms(path), f"lognormal fitted to {path}")


def parse_latency(spec: str, *, environ: Mapping[str, str] | None = None, start: Path | None = None) -> LatencyModel:
    """``trace`` | ``zero`` | ``fixed:MS``; ``environ`` and ``start`` (default: the project) locate the trace."""
    if spec == "zero":
        return fixed(0.0)
    if spec.startswith("fixed:"):
        try:
            return fixed(float(spec.removeprefix("fixed:")))
        except ValueError as exc:
            raise ValueError(f"latency {spec!r}: {exc}") from None
    if spec == "trace":
        return trace_model(environ or {}, start or PROJECT_DIR)
    raise ValueError(f"latency must be trace, zero or fixed:MS, got {spec!r}")
