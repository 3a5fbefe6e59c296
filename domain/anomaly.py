"""Online anomaly scoring of one metric series, tuned on the NAB benchmark.

Each point is compared with two views of what the series usually does:

* level: the value against an exponentially weighted mean and variance of the
  values (memory of a few hundred points);
* season: the change from one day earlier (the day measured in points from the
  first sampling step) against the weighted mean and variance of those daily
  changes; it catches a broken daily pattern that stays inside the usual range.
  It scores once ``season_warmup`` daily changes have been learnt: a spread
  from a handful of them would make ordinary noise look surprising.

When the day-over-day change varies clearly less than the values themselves
(``periodic_ratio``), the series is periodic and the season view alone scores:
its surprise is the smallest one against any value within ``season_jitter``
points of one day earlier, so a daily peak that comes a few minutes early or
late is not news, while a missing or displaced peak still is. Otherwise the
point's surprise ``z`` is the larger of the level and the exact day-ago view.

Four adjustments make one threshold work across very different series:

* rarity: the surprise is divided by ``(1 + alike) ** rarity_power``, where
  ``alike`` counts the last ``damp_window`` surprises at least
  ``rarity_ratio`` times as large: a spike like many recent ones is no longer
  news, however large;
* a surprise below the largest one of the last ``damp_window`` points is damped
  by ``(z / max) ** damp_power``: series that are often spiky need a bigger
  spike to alert;
* habit: the surprise is multiplied by ``(1 - day_ago / z) ** habit_power``
  (0 when negative), where ``day_ago`` is the largest surprise within
  ``habit_seconds`` of one day earlier: a cron job, backup or batch load that
  spikes at about the same time every day is not news, a spike clearly larger
  than yesterday's, or at a new time of day, still is. A job that runs twice a
  day counts too: ``day_ago`` is the larger of the day-ago surprise and
  ``half_day_weight`` times the one around half a day earlier. Before a day has
  passed the largest recent surprise stands in for ``day_ago``;
* only the onset of an episode scores: a point no more surprising than one
  already scored in the last ``gate_window`` points scores 0, so an anomaly
  alerts once instead of at every point while it lasts.

``score = z / (z + z_half)``, so ``score >= 0.5`` means ``z >= z_half``;
``ALERT_THRESHOLD`` is the single threshold NAB's standard profile picks for
the defaults.

>>> detector = SeriesDetector()
>>> scores = [detector.score_one(60.0 * i, 10.0 + (i % 7) * 0.1).score for i in range(300)]
>>> max(scores) < ALERT_THRESHOLD, detector.score_one(18_000.0, 30.0).score > 0.9
(True, True)
"""

import bisect
import math
import pickle
from collections import deque
from dataclasses import dataclass

from river import stats

DAY_SECONDS = 86_400.0
ALERT_THRESHOLD = 0.5028  # NAB's swept standard-profile threshold for the default config
FLAT_MOVE_Z = 50.0  # surprise of any move off a series that has not moved yet


@dataclass(frozen=True)
class DetectorConfig:
    """Tunables; the defaults are the values tuned on NAB's standard profile."""

    warmup: int = 150  # points scored 0 while the statistics settle
    level_fading: float = 0.003  # fading factor of the level view's mean and variance
    season_fading: float = 0.003  # same for the day-over-day changes
    max_season_points: int = 5000  # no season view when a day holds more points than this
    season_jitter: int = 2  # the day-ago reference is the closest of this many points either side
    periodic_ratio: float = 0.7  # season spread below this share of the level spread: the season view alone
    damp_window: int = 1000  # points over which the largest recent surprise is kept
    damp_power: float = 0.25
    rarity_ratio: float = 0.6  # recent surprises at least this share of the current one count as alike
    rarity_power: float = 0.15  # the surprise is divided by (1 + alike) ** rarity_power
    gate_window: int = 100  # points during which an episode scores only when it grows
    z_half: float = 1.5  # surprise that scores 0.5: the alert level tuned on NAB
    band_z: float = 3.0  # half-width of the expected range, in standard deviations
    season_warmup: int = 30  # day-over-day changes learnt before the season view scores
    habit_seconds: float = 3600.0  # a surprise like one this close to a day earlier is a daily habit
    habit_power: float = 0.6  # the surprise is multiplied by (1 - day-ago surprise / surprise) ** habit_power
    half_day_weight: float = 0.9  # weight of the surprise around half a day earlier in the habit rule; 0: not used


@dataclass(frozen=True)
class Score:
    """``score`` in [0, 1]; the expected range is None until the detector has warmed up."""

    score: float
    expected_low: float | None
    expected_high: float | None


class _Moments:
    """Exponentially weighted mean and variance that start as plain running ones.

    The weight of a new point is ``max(fading, 1 / count)``: a fixed fading
    factor alone anchors the mean at the first point and underestimates the
    variance for the first ``1 / fading`` points, which would make every early
    point look surprising.
    """

    __slots__ = ("fading", "mean", "var", "count")

    def __init__(self, fading: float) -> None:
        self.fading = fading
        self.mean = 0.0
        self.var = 0.0
        self.count = 0

    def update(self, x: float) -> None:
        self.count += 1
        weight = max(self.fading, 1.0 / self.count)
        delta = x - self.mean
        self.mean += weight * delta
        self.var = (1.0 - weight) * (self.var + weight * delta * delta)


class _View:
    """Standardised deviation of a residual from its own weighted mean and variance."""

    __slots__ = ("moments",)

    def __init__(self, fading: float) -> None:
        self.moments = _Moments(fading)

    @property
    def count(self) -> int:
        return self.moments.count

    @property
    def mean(self) -> float:
        return self.moments.mean

    def spread(self) -> float:
        return math.sqrt(max(self.moments.var, 0.0))

    def surprise(self, residual: float) -> float:
        """``|residual - mean| / sd`` before learning ``residual``; then learn it."""
        mean, sd = self.moments.mean, self.spread()
        if self.moments.count < 2:
            z = 0.0
        elif sd > 0.0:
            z = abs(residual - mean) / sd
        else:
            z = 0.0 if residual == mean else FLAT_MOVE_Z  # any move off a flat line
        self.moments.update(residual)
        return z


class _DayAgoMax:
    """The largest of the values pushed ``day - jitter`` to ``day + jitter`` pushes before the current one.

    A delay line of ``day - jitter`` values (``0 <= jitter < day``) feeds a rolling maximum of
    ``2 * jitter + 1`` values, so memory is bounded by a day and each push costs a sorted insert.

    >>> around = _DayAgoMax(day=4, jitter=1)
    >>> [around.push(x) for x in [5.0, 1.0, 2.0, 3.0, 0.0, 0.0, 0.0]]
    [-1.0, -1.0, -1.0, -1.0, -1.0, 5.0, 3.0]
    """

    __slots__ = ("delay", "window", "size")

    def __init__(self, day: int, jitter: int) -> None:
        self.delay: deque[float] = deque(maxlen=day - jitter)
        self.size = 2 * jitter + 1
        self.window = stats.RollingMax(self.size)

    def push(self, x: float) -> float:
        """The maximum around one day before ``x`` (-1 until a day and the jitter have passed); then keep ``x``."""
        delay = self.delay
        if len(delay) == delay.maxlen:
            self.window.update(delay[0])
        delay.append(x)
        return (self.window.get() or 0.0) if len(self.window.window) == self.size else -1.0


class SeriesDetector:
    """Scores one series point by point (``score_one``), learning as it goes."""

    def __init__(self, config: DetectorConfig = DetectorConfig()) -> None:
        self.config = config
        self._level = _View(config.level_fading)
        self._season = _View(config.season_fading)  # change from exactly one day earlier
        self._day: deque[float] | None = None  # the last day of values, once the step is known
        self._day_points = 0
        self._first_t: float | None = None
        self._recent_max = stats.RollingMax(config.damp_window)
        self._recent: deque[float] = deque()  # the last damp_window surprises after warm-up
        self._recent_sorted: list[float] = []  # the same, sorted
        self._gate = stats.RollingMax(config.gate_window)
        self._count = 0
        self._habit: _DayAgoMax | None = None  # the largest surprise around one day earlier
        self._half_habit: _DayAgoMax | None = None  # the same around half a day earlier

    def score_one(self, t: float, value: float) -> Score:
        """Score ``value`` observed at ``t`` (epoch seconds, in time order), then learn it."""
        c = self.config
        band = self._band()
        z = self._level.surprise(value)
        exact, tolerant = self._season_surprise(t, value)
        if self._periodic():
            z = tolerant  # the level view would flag every daily peak
        else:
            z = max(z, exact)
        habit = self._day_ago_surprise(z)
        largest = (self._recent_max.get() if self._count > 0 else None) or 0.0
        self._recent_max.update(z)
        self._count += 1
        if self._count <= c.warmup:
            return Score(0.0, None, None)
        alike = self._remember(z)
        raw = z
        if 0.0 < z < largest:
            z *= (z / largest) ** c.damp_power
        if alike:
            z /= (1 + alike) ** c.rarity_power
        if habit < 0.0:
            habit = largest  # no day of history yet: the largest recent surprise stands in for the day-ago one
        if habit > 0.0 and z > 0.0:
            z *= max(1.0 - habit / raw, 0.0) ** c.habit_power
        score = z / (z + c.z_half) if z > 0.0 else 0.0
        earlier = (self._gate.get() if self._count > c.warmup + 1 else None) or 0.0
        self._gate.update(score)
        if score <= earlier:
            score = 0.0
        return Score(score, *band)

    def _day_ago_surprise(self, z: float) -> float:
        """The largest surprise within ``habit_seconds`` of one day earlier; then keep ``z``.

        Around half a day earlier counts too, weighted by ``half_day_weight``. -1 while less than
        a day has passed; 0 when the series has no daily cycle to compare with.
        """
        c = self.config
        if self._day_points <= 0 or c.habit_seconds <= 0.0:
            return 0.0
        if self._habit is None:
            jitter = min(round(c.habit_seconds * self._day_points / DAY_SECONDS), self._day_points // 2)
            self._habit = _DayAgoMax(self._day_points, jitter)
            half = max(self._day_points // 2, 1)
            if c.half_day_weight > 0.0:
                self._half_habit = _DayAgoMax(half, min(jitter, half // 2))
        day_ago = self._habit.push(z)
        if self._half_habit is not None:
            half_day_ago = self._half_habit.push(z)
            if day_ago >= 0.0:  # a half day has passed too
                day_ago = max(day_ago, c.half_day_weight * half_day_ago)
        return day_ago

    def _periodic(self) -> bool:
        """Whether the day-over-day change varies clearly less than the value itself."""
        daily = self._season
        return daily.count > 2 and daily.spread() < self.config.periodic_ratio * self._level.spread()

    def _remember(self, z: float) -> int:
        """How many of the recent surprises are at least ``rarity_ratio * z``; then keep ``z``."""
        ordered = self._recent_sorted
        alike = len(ordered) - bisect.bisect_left(ordered, z * self.config.rarity_ratio) if z > 0.0 else 0
        bisect.insort(ordered, z)
        self._recent.append(z)
        if len(self._recent) > self.config.damp_window:
            del ordered[bisect.bisect_left(ordered, self._recent.popleft())]
        return alike

    def _season_surprise(self, t: float, value: float) -> tuple[float, float]:
        """Surprise of the change from one day earlier: exactly, and from the closest value around then."""
        if self._first_t is None:
            self._first_t = t
            return 0.0, 0.0
        if self._day is None and self._day_points == 0:
            step = t - self._first_t
            points = round(DAY_SECONDS / step) if step > 0 else 0
            self._day_points = points if 2 <= points <= self.config.max_season_points else -1
            if self._day_points > 0:
                # one day plus the jitter of values; the first point is lost: fine
                self._day = deque([value], maxlen=self._day_points + self.config.season_jitter)
            return 0.0, 0.0
        day = self._day
        if day is None:
            return 0.0, 0.0
        exact = tolerant = 0.0
        if len(day) == day.maxlen:
            season = self._season
            usual, sd, enough = season.mean, season.spread(), season.count >= max(2, self.config.season_warmup)
            reference = day[self.config.season_jitter]  # exactly one day earlier
            closest = min(abs(value - day[k] - usual) for k in range(2 * self.config.season_jitter + 1))
            exact = season.surprise(value - reference)  # learns the exact change
            if not enough:
                exact = 0.0
            if enough:
                tolerant = closest / sd if sd > 0.0 else (0.0 if closest == 0.0 else FLAT_MOVE_Z)
        day.append(value)
        return exact, tolerant

    def _band(self) -> tuple[float | None, float | None]:
        """Expected range of the next value from whichever view is tighter."""
        if self._count < self.config.warmup:
            return None, None
        half = self.config.band_z
        center, sd = self._level.mean, self._level.spread()
        day = self._day
        if day is not None and len(day) == day.maxlen and self._season.count >= 2:
            daily_sd = self._season.spread()
            if daily_sd < sd:
                center, sd = day[self.config.season_jitter] + self._season.mean, daily_sd
        return center - half * sd, center + half * sd

    def to_state(self) -> bytes:
        """A snapshot; ``from_state`` of it scores exactly like this detector from now on."""
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_state(cls, data: bytes) -> "SeriesDetector":
        detector = pickle.loads(data)  # noqa: S301 - only snapshots written by to_state are restored
        if not isinstance(detector, cls):
            raise TypeError(f"not a {cls.__name__} snapshot")
        return detector


def _fmt(x: float) -> str:
    """Three significant digits, no exponent for everyday magnitudes."""
    if x != 0 and (abs(x) >= 1e7 or abs(x) < 1e-3):
        return f"{x:.3g}"
    digits = max(0, 2 - int(math.floor(math.log10(abs(x))))) if x != 0 else 0
    return f"{round(x, digits):,.{digits}f}".replace(",", "")


def explain(metric: str, value: float, score: Score, unit: str = "") -> str:
    """Plain text such as ``p95 latency 2800 ms, expected 400-900 ms (anomaly score 0.97)``."""
    suffix = f" {unit}" if unit else ""
    text = f"{metric} {_fmt(value)}{suffix}"
    if score.expected_low is not None and score.expected_high is not None:
        text += f", expected {_fmt(score.expected_low)}-{_fmt(score.expected_high)}{suffix}"
    return f"{text} (anomaly score {score.score:.2f})"
