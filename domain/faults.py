"""Fault schedules for the sandbox service: which failure a call meets, and when.

A schedule is a JSON list of windows::

    [{"service": "slack", "from_s": 10, "to_s": 40, "fault": "429", "rate": 0.5}]

``service`` is a catalog id or ``"*"``; the window covers ``from_s <= t <
to_s`` seconds since the schedule took effect (``to_s`` null or absent: no
end); ``rate`` (default 1) is the share of matching calls that fail. The
first window that matches and fires wins. Rates 0 and 1 draw no random
number, so they are deterministic whatever the generator.

Two faults are about credentials. ``token_expired``: access tokens issued
before the window began are expired, and a call presenting one (or a token
the sandbox did not issue, or none) is refused until the caller refreshes;
a token issued since the window began passes it. ``401``: the credentials
are invalid whatever the token, and while the window covers a service its
refresh tokens are revoked (``revoked``), so refreshing does not help.

>>> import random
>>> schedule = parse_schedule('[{"service": "*", "from_s": 0, "to_s": 5, "fault": "503", "rate": 1}]')
>>> fault_for(schedule, "asana", 2.0, random.Random(0)), fault_for(schedule, "asana", 6.0, random.Random(0))
('503', None)
>>> expiry = parse_schedule([{"service": "asana", "from_s": 10, "fault": "token_expired"}])
>>> [fault_for(expiry, "asana", 12.0, random.Random(0), token_issued_s=issued) for issued in (3.0, 11.0, None)]
['token_expired', None, 'token_expired']
"""

import json
import math
import random
from dataclasses import dataclass
from typing import Any

FAULTS: tuple[str, ...] = ("429", "500", "503", "timeout", "401", "token_expired", "400", "404")
_FIELDS = frozenset({"service", "from_s", "to_s", "fault", "rate"})


@dataclass(frozen=True)
class FaultWindow:
    service: str
    from_s: float
    to_s: float
    fault: str
    rate: float = 1.0

    def covers(self, service: str, elapsed_s: float) -> bool:
        return self.service in ("*", service) and self.from_s <= elapsed_s < self.to_s


Schedule = tuple[FaultWindow, ...]


def parse_schedule(source: str | bytes | list[Any]) -> Schedule:
    """Validate a schedule (JSON text or parsed list); ValueError names the entry index and field."""
    data = json.loads(source) if isinstance(source, str | bytes) else source
    if not isinstance(data, list):
        raise ValueError("fault schedule must be a JSON list of windows")
    return tuple(_window(index, entry) for index, entry in enumerate(data))


def _number(index: int, entry: dict[str, Any], name: str, default: float) -> float:
    value = entry.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"fault entry {index}: {name} must be a number, got {value!r}")
    return float(value)


def _window(index: int, entry: Any) -> FaultWindow:
    if not isinstance(entry, dict):
        raise ValueError(f"fault entry {index}: must be an object, got {type(entry).__name__}")
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        raise ValueError(f"fault entry {index}: unknown field {unknown[0]!r} (allowed: {', '.join(sorted(_FIELDS))})")
    service = entry.get("service")
    if not isinstance(service, str) or not service:
        raise ValueError(f"fault entry {index}: service must be a service id or '*'")
    fault = str(entry.get("fault"))
    if fault not in FAULTS:
        raise ValueError(f"fault entry {index}: fault must be one of {', '.join(FAULTS)}, got {entry.get('fault')!r}")
    from_s = _number(index, entry, "from_s", 0.0)
    to_s = _number(index, entry, "to_s", math.inf)
    rate = _number(index, entry, "rate", 1.0)
    if from_s < 0:
        raise ValueError(f"fault entry {index}: from_s must be >= 0")
    if to_s <= from_s:
        raise ValueError(f"fault entry {index}: to_s must be greater than from_s")
    if not 0 <= rate <= 1:
        raise ValueError(f"fault entry {index}: rate must be within [0, 1], got {rate:g}")
    return FaultWindow(service, from_s, to_s, fault, rate)


def fault_for(
    schedule: Schedule, service: str, elapsed_s: float, rng: random.Random, *, token_issued_s: float | None = None
) -> str | None:
    """The fault a call to ``service`` meets ``elapsed_s`` after the schedule began, or None.

    ``token_issued_s``: when (on the same clock) the sandbox issued the access
    token the call presents; None for a token it did not issue, or none.
    """
    for window in schedule:
        if not window.covers(service, elapsed_s) or window.rate <= 0:
            continue
        if window.fault == "token_expired" and token_issued_s is not None and token_issued_s >= window.from_s:
            continue  # issued since the window began: not expired by it
        if window.rate >= 1 or rng.random() < window.rate:
            return window.fault
    return None


def revoked(schedule: Schedule, service: str, elapsed_s: float) -> bool:
    """Whether a ``401`` window covers ``service`` now: its refresh tokens are refused."""
    return any(w.fault == "401" and w.rate > 0 and w.covers(service, elapsed_s) for w in schedule)
