"""Alert rules and the alert lifecycle (pure), with Prometheus and Alertmanager semantics.

Evaluation (Prometheus's half), at every tick of each series a rule watches
(event time; the live agent ticks once per pane over a rolling window, see
``domain.rolling``)::

    inactive --condition--> pending --held for `for_s`--> firing
    pending  --not condition--> inactive          (never fired: nothing is sent)
    firing   --not condition for `keep_firing_for_s`--> inactive (resolved)

A rule with ``for_s == 0`` fires on the first tick where its condition
holds. A condition may compare with the series' **baseline**, an
exponentially weighted mean of the metric learned from the windows in which
the alert was not firing (an incident does not become the new normal), and
only once ``BASELINE_MIN_POINTS`` windows have been seen.

Notification (Alertmanager's half), see ``plan_notifications``: alerts are
routed by their labels (``routed``) to channels besides their rule's, and
grouped by their rule's ``group_by`` labels and a group is told once about
everything new in it; a firing alert is repeated at most once per its rule's
cooldown; silences (label matchers with an expiry) and inhibition rules (a
firing source alert mutes the target alerts that share its ``equal`` labels)
keep alerts from being notified and say why.

>>> rule = Rule("errors", Condition.parse("error_rate > 0.1"), for_s=60)
>>> state = AlertState()
>>> [evaluate(rule, state, value=v, at=t) for t, v in [(60, 0.5), (120, 0.4), (180, 0.0)]]
['pending', 'fired', 'resolved']
"""

import fnmatch
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from domain.rolling import aligned
from schemas.monitoring import AlertRoute, AlertRuleSpec, ChannelRef

Severity = Literal["low", "medium", "high", "critical"]
Scope = Literal["tenant", "workflow", "step", "service"]
Status = Literal["inactive", "pending", "firing"]
Transition = Literal["pending", "fired", "resolved", "cleared"]
"""What an evaluation changed: ``cleared`` is a pending alert whose condition stopped holding."""

BASELINE_ALPHA = 0.1
BASELINE_MIN_POINTS = 10


def _eq(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": _eq,
    "!=": lambda a, b: not _eq(a, b),
}
_CONDITION = re.compile(
    r"^\s*(?P<metric>[a-z_][a-z0-9_]*)\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>-?\d+(?:\.\d+)?)"
    r"(?:\s*[x*]\s*baseline)?\s*$"
)
METRICS = frozenset({"latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "error_rate", "throughput_per_s", "count",
                     "failures", "cost_sum", "anomaly_score"})  # fmt: skip


class RuleError(ValueError):
    """A rule that cannot be evaluated; the message says what is wrong."""


@dataclass(frozen=True)
class Condition:
    metric: str
    op: str
    threshold: float
    relative: bool = False
    """``threshold`` is a factor of the series' baseline (``latency_p95_ms > 2.0 x baseline``)."""

    @classmethod
    def parse(cls, text: str) -> "Condition":
        """``metric op number [x baseline]``, e.g. ``error_rate > 0.1``; raises RuleError."""
        match = _CONDITION.match(text)
        if not match:
            raise RuleError(f"condition {text!r}: expected 'metric op number', optionally followed by 'x baseline'")
        if match["metric"] not in METRICS:
            raise RuleError(f"condition {text!r}: unknown metric; one of {', '.join(sorted(METRICS))}")
        return cls(match["metric"], match["op"], float(match["value"]), relative="baseline" in text)

    def holds(self, value: float, baseline: float | None) -> bool:
        if self.relative:
            if baseline is None:
                return False  # no history yet: a relative rule cannot judge
            return _OPS[self.op](value, self.threshold * baseline)
        return _OPS[self.op](value, self.threshold)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.threshold:g}" + (" x baseline" if self.relative else "")


@dataclass(frozen=True)
class Rule:
    name: str
    condition: Condition
    scope: Scope = "workflow"
    match: str = "*"
    """Glob over the series key (a workflow id, ``workflow/step``, a service)."""
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    severity: Severity = "medium"
    cooldown_s: float = 600.0
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    group_by: tuple[str, ...] = ("rule",)
    range_s: float | None = None
    """The rolling window the metric is computed over (Prometheus's ``[1m]``); None: the metric window."""
    group_wait_s: float = 0.0
    """How long a new group's first notification waits (Alertmanager's ``group_wait``)."""

    def applies_to(self, scope: str, key: str) -> bool:
        return scope == self.scope and fnmatch.fnmatchcase(key, self.match)


def builtin_rules(*, cooldown_s: float | None = None) -> list[Rule]:
    """``performance_degradation`` and ``error_rate_increase`` for every workflow."""
    return [
        Rule("performance_degradation", Condition.parse("latency_p95_ms > 2.0 x baseline"), severity="high",
             cooldown_s=300.0 if cooldown_s is None else cooldown_s,
             annotations=(("summary", 'p95 latency {{ $value | printf "%.0f" }} ms, above twice its baseline of '
                                      '{{ $baseline | printf "%.0f" }} ms'),)),
        Rule("error_rate_increase", Condition.parse("error_rate > 0.1"), severity="critical",
             cooldown_s=600.0 if cooldown_s is None else cooldown_s,
             annotations=(("summary", "{{ $value | humanizePercentage }} of runs fail (more than 10%)"),)),
    ]  # fmt: skip


@dataclass
class AlertState:
    """One rule over one series."""

    status: Status = "inactive"
    active_since: float | None = None
    fired_at: float | None = None
    last_true: float | None = None
    value: float | None = None
    baseline: float | None = None
    baseline_points: int = 0

    def learned_baseline(self) -> float | None:
        return self.baseline if self.baseline_points >= BASELINE_MIN_POINTS else None


def evaluate(rule: Rule, state: AlertState, *, value: float, at: float, learn: bool = True) -> Transition | None:
    """Advance ``state`` by one observation at time ``at``; returns what changed, if anything.

    ``learn``: the value also teaches the baseline (rolling evaluation learns
    only at ticks that end a tumbling window, so overlapping values do not
    count many times).
    """
    holds = rule.condition.holds(value, state.learned_baseline())
    state.value = value
    transition = _step(rule, state, holds, at)
    if learn and state.status != "firing":
        _learn(state, value)
    return transition


def _step(rule: Rule, state: AlertState, holds: bool, at: float) -> Transition | None:
    if holds:
        state.last_true = at
        if state.status == "inactive":
            state.status, state.active_since = "pending", at
            if rule.for_s <= 0:
                return _fire(state, at)
            return "pending"
        if state.status == "pending" and at - (state.active_since or at) >= rule.for_s:
            return _fire(state, at)
        return None
    if state.status == "pending":
        state.status, state.active_since = "inactive", None
        return "cleared"
    if state.status == "firing" and at - (state.last_true or at) >= rule.keep_firing_for_s:
        state.status, state.active_since, state.fired_at = "inactive", None, None
        return "resolved"
    return None


def _fire(state: AlertState, at: float) -> Transition:
    state.status, state.fired_at = "firing", at
    return "fired"


def _learn(state: AlertState, value: float) -> None:
    if state.baseline is None:
        state.baseline = value
    else:
        weight = max(BASELINE_ALPHA, 1.0 / (state.baseline_points + 1))
        state.baseline += weight * (value - state.baseline)
    state.baseline_points += 1


# ---------------------------------------------------------------- notification


@dataclass(frozen=True)
class Alert:
    alert_id: str
    rule: str
    severity: Severity
    labels: Mapping[str, str]
    firing: bool
    cooldown_s: float
    group_by: tuple[str, ...] = ("rule",)
    fired_at: float = 0.0
    group_wait_s: float = 0.0

    @property
    def group(self) -> tuple[str, ...]:
        labels = {**self.labels, "rule": self.rule}
        return tuple(f"{name}={labels.get(name, '')}" for name in self.group_by)


def _matches(matchers: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(fnmatch.fnmatchcase(labels.get(name, ""), pattern) for name, pattern in matchers.items())


@dataclass(frozen=True)
class Silence:
    silence_id: str
    matchers: Mapping[str, str]
    starts_at: float
    ends_at: float
    comment: str = ""

    def mutes(self, alert: Alert, now: float) -> bool:
        return self.starts_at <= now < self.ends_at and _matches(self.matchers, {**alert.labels, "rule": alert.rule})


@dataclass(frozen=True)
class InhibitRule:
    """While an alert matching ``source`` fires, alerts matching ``target`` with the same ``equal`` labels are muted."""

    source: Mapping[str, str]
    target: Mapping[str, str]
    equal: tuple[str, ...] = ()
    within: tuple[tuple[str, str], ...] = ()
    """``(source label, target label)`` pairs: the source's value is one of the target's comma-separated values
    (a service's alert explains the alert of a workflow whose ``services`` include that service)."""

    def mutes(self, source: Mapping[str, str], target: Mapping[str, str]) -> bool:
        """Whether a firing alert labelled ``source`` mutes one labelled ``target`` (both with their ``rule``)."""
        return (_matches(self.source, source) and _matches(self.target, target)
                and all(source.get(n) == target.get(n) for n in self.equal)
                and all(source.get(s) and source[s] in target.get(t, "").split(",")
                        for s, t in self.within))  # fmt: skip


def routed(routes: Iterable[AlertRoute], labels: Mapping[str, str]) -> list[ChannelRef]:
    """The channels of the routes an alert labelled ``labels`` (with its ``rule`` and ``severity``) takes: the
    first matching route, and the ones after it while a match says ``continue_matching``."""
    channels: list[ChannelRef] = []
    for route in routes:
        if _matches(route.matchers, labels):
            channels += route.channels
            if not route.continue_matching:
                break
    return channels


@dataclass(frozen=True)
class Notification:
    group: tuple[str, ...]
    alerts: tuple[Alert, ...]
    reason: Literal["firing", "repeat", "resolved"]


@dataclass
class NotifierState:
    notified_at: dict[str, float] = field(default_factory=dict)
    """alert id -> when it was last part of a firing notification (kept after it resolves)."""
    open: set[str] = field(default_factory=set)
    """Alerts told as firing and not yet told as resolved."""


@dataclass(frozen=True)
class Plan:
    notifications: list[Notification]
    muted: dict[str, str]
    """alert id -> why it was not notified: ``silenced:<silence id>``, ``inhibited:<alert id>`` or ``cooldown``."""
    waiting: dict[str, float] = field(default_factory=dict)
    """alert id -> when its new group's wait ends and it is told, unless muted by then."""


def plan_notifications(
    alerts: Iterable[Alert],
    state: NotifierState,
    *,
    now: float,
    silences: Iterable[Silence] = (),
    inhibit: Iterable[InhibitRule] = (),
) -> Plan:
    """Decide who is told what now, about the firing alerts and the ones that just resolved.

    The first notification of a new group (none of its alerts told and still open) waits until its first alert
    has fired ``group_wait_s`` ago, as in Alertmanager: alerts of the group firing meanwhile are told with it,
    and an alert that an alert firing meanwhile inhibits is not told at all. A group already told hears of a
    new alert at once."""
    alerts = list(alerts)
    muted = _muted(alerts, list(silences), list(inhibit), now)
    told_groups = {a.group for a in alerts if a.alert_id in state.open}
    fresh: dict[tuple[str, ...], list[Alert]] = {}
    repeat: dict[tuple[str, ...], list[Alert]] = {}
    resolved: dict[tuple[str, ...], list[Alert]] = {}
    for alert in alerts:
        last = state.notified_at.get(alert.alert_id)
        if not alert.firing:
            if alert.alert_id in state.open:
                resolved.setdefault(alert.group, []).append(alert)
                state.open.discard(alert.alert_id)
            continue
        if alert.alert_id in muted:
            continue
        if last is not None and now - last < alert.cooldown_s:
            muted[alert.alert_id] = "cooldown"  # repeated, or firing again soon after it resolved
        elif alert.alert_id in state.open:
            repeat.setdefault(alert.group, []).append(alert)
        else:
            fresh.setdefault(alert.group, []).append(alert)
    waiting: dict[str, float] = {}
    for group, new in list(fresh.items()):
        until = min(a.fired_at for a in new) + max(a.group_wait_s for a in new)
        if group not in told_groups and now < until:
            waiting |= {a.alert_id: until for a in fresh.pop(group)}
    notifications = []
    for group in sorted({*fresh, *repeat}):
        told = fresh.get(group, []) + repeat.get(group, [])
        notifications.append(Notification(group, tuple(told), "firing" if group in fresh else "repeat"))
        for alert in told:
            state.notified_at[alert.alert_id] = now
            state.open.add(alert.alert_id)
    notifications += [Notification(g, tuple(a), "resolved") for g, a in sorted(resolved.items())]
    return Plan(notifications, muted, waiting)


def _muted(alerts: list[Alert], silences: list[Silence], inhibit: list[InhibitRule], now: float) -> dict[str, str]:
    muted: dict[str, str] = {}
    sources = [a for a in alerts if a.firing]
    for alert in alerts:
        silence = next((s for s in silences if s.mutes(alert, now)), None)
        if silence is not None:
            muted[alert.alert_id] = f"silenced:{silence.silence_id}"
            continue
        labels = {**alert.labels, "rule": alert.rule}
        source = next((source for rule in inhibit for source in sources
                       if source.alert_id != alert.alert_id and rule.mutes({**source.labels, "rule": source.rule},
                                                                           labels)), None)  # fmt: skip
        if source is not None:
            muted[alert.alert_id] = f"inhibited:{source.alert_id}"
    return muted


# ---------------------------------------------------------------- rules as written, and backtests


DEFAULT_COOLDOWN_S = 600.0


def rule_from_spec(spec: AlertRuleSpec, *, default_cooldown_s: float = DEFAULT_COOLDOWN_S) -> Rule:
    """The evaluable rule of an operator's spec; raises RuleError on a bad condition."""
    return Rule(
        name=spec.name,
        condition=Condition.parse(spec.condition),
        scope=spec.scope,
        match=spec.match,
        for_s=spec.for_s,
        keep_firing_for_s=spec.keep_firing_for_s,
        severity=spec.severity,
        cooldown_s=default_cooldown_s if spec.cooldown_s is None else spec.cooldown_s,
        labels=tuple(sorted(spec.labels.items())),
        annotations=tuple(sorted(spec.annotations.items())),
        group_by=spec.group_by,
        range_s=spec.range_s,
        group_wait_s=spec.group_wait_s,
    )


def builtin_specs(*, cooldown_s: float | None = None) -> list[AlertRuleSpec]:
    return [
        AlertRuleSpec(
            name=r.name, condition=str(r.condition), scope=r.scope, match=r.match, severity=r.severity,
            cooldown_s=r.cooldown_s, annotations=dict(r.annotations), range_s=r.range_s,
        )
        for r in builtin_rules(cooldown_s=cooldown_s)
    ]  # fmt: skip


@dataclass(frozen=True)
class BacktestAlert:
    key: str
    fired_at: float
    resolved_at: float | None
    """None: still firing at the end of the range."""
    first_value: float
    peak_value: float
    notifications: int
    """Firing notifications the rule's cooldown would have let through (the first one and repeats)."""


def backtest(
    rule: Rule, series: Mapping[str, Iterable[tuple[float, float]]], *, learn_every_s: float | None = None
) -> list[BacktestAlert]:
    """Run ``rule`` over stored points, ``key -> [(tick, value)]`` in time order, with the live code.

    ``learn_every_s``: baselines learn only at ticks that end a window of that
    length (rolling evaluation); None: at every point (closed windows).
    """
    found: list[BacktestAlert] = []
    for key in sorted(series):
        state, notifier = AlertState(), NotifierState()
        current: dict[str, float] | None = None
        for at, value in series[key]:
            learn = learn_every_s is None or aligned(at, learn_every_s)
            transition = evaluate(rule, state, value=value, at=at, learn=learn)
            if transition == "fired":
                current = {"fired_at": at, "first": value, "peak": value, "told": 0.0}
            if current is None:
                continue
            current["peak"] = max(current["peak"], value) if rule.condition.op in (">", ">=") else current["peak"]
            alert = Alert(key, rule.name, rule.severity, {}, state.status == "firing", rule.cooldown_s)
            plan = plan_notifications([alert], notifier, now=at)
            current["told"] += sum(n.reason in ("firing", "repeat") for n in plan.notifications)
            if transition == "resolved":
                found.append(_backtest_alert(key, current, at))
                current = None
        if current is not None:
            found.append(_backtest_alert(key, current, None))
    return sorted(found, key=lambda a: (a.fired_at, a.key))


def _backtest_alert(key: str, current: dict[str, float], resolved_at: float | None) -> BacktestAlert:
    return BacktestAlert(key, current["fired_at"], resolved_at, current["first"], current["peak"], int(current["told"]))
