"""Prometheus metrics about Flowledger itself, served at ``/metrics``.

Two kinds of source:

* counted in this process as things happen: events posted to ``/api/events``
  (``Telemetry.events``) and, when the projector is hosted here, its batches;
* read at scrape time and kept for ``REFRESH_S`` seconds (a ``Snapshot``):
  consumer lag from the broker, worker heartbeats, firing alerts and open
  troubleshooting sessions from ClickHouse. A source that cannot be read
  leaves its metrics out and sets ``flowledger_metrics_source_up`` to 0.

Labels have bounded values only: topics, consumer groups, worker roles,
record types of the contract, severities. Tenants, runs and workflows are
never labels, so the exposition holds no tenant data.
"""

import asyncio
import contextlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from domain.distribution import Distribution
from flowledger.lag import consumer_lag
from flowledger.settings import WORKER_APP_IDS, Settings
from projections import queries
from projections.alert_queries import firing_by_severity
from projections.live import LiveHub
from projections.projector import ProjectorStats
from projections.troubleshooting_queries import count_open_sessions
from projections.warehouse import Warehouse
from schemas import topics
from schemas.registry import RECORD_TYPES

REFRESH_S = 5.0
"""How long what a scrape read from the broker and ClickHouse is served again."""
LAG_TIMEOUT_S = 5.0
LIVE_HEARTBEAT_S = 30.0
"""A worker whose last heartbeat is older than this counts as gone: it leaves the gauges (its counts stay in the
counters, which never go down)."""

WORKER_COUNTERS: dict[str, tuple[str, dict[str, str]]] = {
    "executor_records_handled": ("flowledger_worker_records_processed", {"agent": "executor"}),
    "ingested_records": ("flowledger_worker_records_processed", {"agent": "metrics"}),
    "executor_steps_finished": ("flowledger_worker_steps_executed", {}),
    "skipped_bad_items": ("flowledger_worker_invalid_records", {}),
    "metrics_windows": ("flowledger_worker_metric_windows_closed", {}),
    "metrics_anomalies": ("flowledger_worker_anomalies_detected", {}),
}
"""Heartbeat count -> counter it is summed into (per worker role), with its extra labels."""
WORKER_GAUGES: dict[str, tuple[str, dict[str, str]]] = {
    "executor_attempts_in_flight": ("flowledger_worker_step_attempts_in_flight", {}),
    "executor_runs_running": ("flowledger_worker_runs_running", {}),
}

HELP = {
    "flowledger_worker_records_processed": "Records the stream workers' agents processed (executor: commands and "
    "step results; metrics: workflow events), summed over the workers of a role.",
    "flowledger_worker_steps_executed": "Step attempts the executors finished, summed over the workers of a role.",
    "flowledger_worker_invalid_records": "Workflow events the metric agents could not validate.",
    "flowledger_worker_metric_windows_closed": "Metric windows the metric agents closed.",
    "flowledger_worker_anomalies_detected": "Anomalies the metric agents detected.",
    "flowledger_worker_step_attempts_in_flight": "Step attempts running now in live executors of a role.",
    "flowledger_worker_runs_running": "Runs in progress in live executors of a role.",
}


@dataclass(frozen=True)
class Snapshot:
    """What the last refresh read; ``None``: the source could not be read."""

    lag: dict[tuple[str, str], int] | None = None
    heartbeats: list[dict[str, Any]] | None = None
    firing: dict[str, int] | None = None
    open_sessions: int | None = None
    taken_at: float = 0.0


@dataclass
class Telemetry:
    """The registry ``/metrics`` exposes, the counters fed by requests, and the last ``Snapshot``."""

    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=False))
    snapshot: Snapshot = field(default_factory=Snapshot)
    projector_stats: ProjectorStats | None = None
    """Set when the projector runs in this process."""
    live: LiveHub | None = None
    """The live stream's hub, with the projector."""
    worker_totals: "WorkerTotals" = field(default_factory=lambda: WorkerTotals())

    def __post_init__(self) -> None:
        self.events = Counter(
            "flowledger_ingest_events", "Events posted to /api/events, by record type and outcome.",
            ["type", "outcome"], registry=self.registry,
        )  # fmt: skip
        self.registry.register(_SnapshotCollector(self))
        self._refreshing = asyncio.Lock()

    def count_events(self, items: Iterable[Any], outcome: str) -> None:
        by_type: dict[str, int] = {}
        for item in items:
            name = event_type(item)
            by_type[name] = by_type.get(name, 0) + 1
        for name, n in by_type.items():
            self.events.labels(name, outcome).inc(n)

    async def refresh(self, settings: Settings, warehouse: Warehouse) -> None:
        """Read the scrape-time sources again, unless the snapshot is younger than ``REFRESH_S``."""
        async with self._refreshing:
            if time.monotonic() - self.snapshot.taken_at < REFRESH_S and self.snapshot.taken_at:
                return
            lag, tables = await asyncio.gather(_lag(settings), asyncio.to_thread(_tables, warehouse))
            self.snapshot = Snapshot(lag=lag, **tables, taken_at=time.monotonic())

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def event_type(item: Any) -> str:
    """The record type an ingested item claims, if it is one of the contract's; ``unknown`` otherwise."""
    claimed = item.get("type") if isinstance(item, dict) else getattr(item, "type", None)
    return claimed if isinstance(claimed, str) and claimed in RECORD_TYPES else "unknown"


def lag_groups(settings: Settings) -> list[str]:
    """The projector's consumer group and every worker role's (a role not deployed has committed nothing)."""
    return [settings.flowledger_projector_group, *WORKER_APP_IDS.values()]


async def _lag(settings: Settings) -> dict[tuple[str, str], int] | None:
    try:
        return await asyncio.wait_for(
            consumer_lag(settings.bootstrap, lag_groups(settings), list(topics.PARTITIONS), timeout_s=LAG_TIMEOUT_S),
            LAG_TIMEOUT_S * 2,
        )
    except Exception:  # an unreachable broker is reported as a source down, not as a failed scrape
        return None


def _tables(warehouse: Warehouse) -> dict[str, Any]:
    read: dict[str, Any] = {}
    with contextlib.suppress(Exception):  # ClickHouse down: the source is reported down
        read["heartbeats"] = queries.last_heartbeats(warehouse)
        read["firing"] = firing_by_severity(warehouse)
        read["open_sessions"] = count_open_sessions(warehouse)
    return read


@dataclass
class WorkerTotals:
    """Worker counts that only go up: a worker that stops, or restarts under the same id, keeps what it counted.

    A heartbeat carries its worker's counts since that process started. Summed
    over live workers only, a counter would fall whenever a worker stops or
    restarts, and Prometheus would read the fall as a reset of the whole sum.
    Here a stopped worker's last counts stay in the sum, and a worker whose
    count went down (a restart) has the count it had reached carried over.

    >>> totals = WorkerTotals()
    >>> totals.update([{"worker": "executor-a", "agent_counts": {"executor_steps_finished": 5}}])
    >>> totals.update([{"worker": "executor-a", "agent_counts": {"executor_steps_finished": 2}}])  # restarted
    >>> totals.sums()
    {('executor', 'executor_steps_finished'): 7.0}
    """

    last: dict[tuple[str, str], float] = field(default_factory=dict)
    """(worker, count) -> its latest value."""
    carried: dict[tuple[str, str], float] = field(default_factory=dict)
    """(worker, count) -> what earlier processes under that id had counted."""

    def update(self, beats: Iterable[dict[str, Any]]) -> None:
        for beat in beats:
            worker = str(beat.get("worker", ""))
            for key, value in beat.get("agent_counts", {}).items():
                if key not in WORKER_COUNTERS:
                    continue
                previous = self.last.get((worker, key), 0.0)
                if value < previous:
                    self.carried[(worker, key)] = self.carried.get((worker, key), 0.0) + previous
                self.last[(worker, key)] = float(value)

    def sums(self) -> dict[tuple[str, str], float]:
        """(role, count) -> total over every worker seen."""
        out: dict[tuple[str, str], float] = {}
        for (worker, key), value in self.last.items():
            role_key = (worker_role({"worker": worker}), key)
            out[role_key] = out.get(role_key, 0.0) + value + self.carried.get((worker, key), 0.0)
        return out


class _SnapshotCollector(Collector):
    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    def collect(self) -> Iterator[Metric]:
        snapshot, stats = self.telemetry.snapshot, self.telemetry.projector_stats
        yield source_up(snapshot)
        yield from lag_families(snapshot.lag or {})
        every = [b for b in snapshot.heartbeats or [] if b.get("role") != "projector"]
        self.telemetry.worker_totals.update(every)
        beats = live_heartbeats(snapshot.heartbeats or [], now=datetime.now(UTC))
        yield from worker_families([b for b in beats if b.get("role") != "projector"], self.telemetry.worker_totals)
        yield from projector_families(stats, [b for b in beats if b.get("role") == "projector"])
        yield from warehouse_families(snapshot.firing, snapshot.open_sessions)
        if self.telemetry.live is not None:
            yield from stream_families(self.telemetry.live)


def stream_families(hub: LiveHub) -> Iterator[Metric]:
    yield GaugeMetricFamily("flowledger_stream_subscribers", "Open /api/stream connections.", value=len(hub))
    yield CounterMetricFamily(
        "flowledger_stream_summaries_published", "Summaries the projector handed to the live stream.",
        value=hub.published,
    )  # fmt: skip
    yield CounterMetricFamily(
        "flowledger_stream_summaries_dropped", "Summaries slow stream clients lost (each was told: `lagged`).",
        value=hub.dropped,
    )  # fmt: skip


def source_up(snapshot: Snapshot) -> GaugeMetricFamily:
    up = GaugeMetricFamily(
        "flowledger_metrics_source_up", "1 when the last scrape-time read of the source succeeded.", labels=["source"]
    )
    up.add_metric(["broker"], float(snapshot.lag is not None))
    up.add_metric(["clickhouse"], float(snapshot.open_sessions is not None))
    return up


def lag_families(lag: dict[tuple[str, str], int]) -> Iterator[Metric]:
    family = GaugeMetricFamily(
        "flowledger_consumer_lag_records",
        "Records between a consumer group's committed offsets and the end of the topic (fetch high watermarks).",
        labels=["group", "topic"],
    )
    for (group, topic), records in sorted(lag.items()):
        family.add_metric([group, topic], records)
    yield family


def live_heartbeats(beats: list[dict[str, Any]], *, now: datetime) -> list[dict[str, Any]]:
    return [b for b in beats if (now - b["last_seen"]).total_seconds() <= LIVE_HEARTBEAT_S]


def worker_role(beat: dict[str, Any]) -> str:
    """``executor`` or ``monitor`` for a worker running one role (it says so in its id), else ``all``."""
    prefix = str(beat.get("worker", "")).split("-", 1)[0]
    return prefix if prefix in WORKER_APP_IDS else "all"


def worker_families(beats: list[dict[str, Any]], totals: WorkerTotals) -> Iterator[Metric]:
    """Live stream workers and their gauges, summed per role; counters from ``totals`` (every worker seen)."""
    alive = GaugeMetricFamily("flowledger_workers_alive", "Stream workers with a recent heartbeat.", labels=["role"])
    last = GaugeMetricFamily(
        "flowledger_worker_last_heartbeat_timestamp_seconds", "Newest heartbeat of a role.", labels=["role"]
    )
    families: dict[str, Metric] = {}
    for name, extra in WORKER_COUNTERS.values():
        families.setdefault(name, CounterMetricFamily(name, HELP[name], labels=["role", *extra]))
    for name, extra in WORKER_GAUGES.values():
        families[name] = GaugeMetricFamily(name, HELP[name], labels=["role", *extra])
    sums: dict[tuple[str, tuple[str, ...]], float] = {}
    by_role: dict[str, list[dict[str, Any]]] = {}
    for beat in beats:
        by_role.setdefault(worker_role(beat), []).append(beat)
    for role, members in sorted(by_role.items()):
        alive.add_metric([role], len(members))
        last.add_metric([role], max(b["last_seen"] for b in members).timestamp())
        for key, value in (item for beat in members for item in beat.get("agent_counts", {}).items()):
            if (target := WORKER_GAUGES.get(key)) is not None:
                series = (target[0], (role, *target[1].values()))
                sums[series] = sums.get(series, 0) + value
    for (role, key), value in totals.sums().items():
        target = WORKER_COUNTERS[key]
        series = (target[0], (role, *target[1].values()))
        sums[series] = sums.get(series, 0) + value
    for (name, labels), value in sorted(sums.items()):
        families[name].add_metric(list(labels), value)  # type: ignore[attr-defined]
    yield alive
    yield last
    yield from families.values()


def projector_families(stats: ProjectorStats | None, beats: list[dict[str, Any]]) -> Iterator[Metric]:
    """The projector hosted here (counts and histograms), else the counts of live remote projectors' heartbeats."""
    if stats is not None:
        counts = {"records": stats.records, "batches": stats.batches, "dead_letters": stats.dead_letters}
    else:
        counts = {}
        for beat in beats:
            for key, value in beat.get("agent_counts", {}).items():
                counts[key] = counts.get(key, 0) + value
    for key, help_text in (
        ("records", "Records the projector wrote to ClickHouse."),
        ("batches", "Slices the projector committed."),
        ("dead_letters", "Records the projector refused and dead-lettered."),
    ):
        name = "flowledger_projector_records_projected" if key == "records" else f"flowledger_projector_{key}"
        family = CounterMetricFamily(name, help_text)
        if key in counts:
            family.add_metric([], counts[key])
        yield family
    if stats is not None:
        yield histogram("flowledger_projector_batch_records", "Records per committed slice.", stats.batch_records)
        yield histogram(
            "flowledger_projector_batch_duration_seconds",
            "From a slice's fetch to its commit: decoding, dead letters, insert and commit.",
            stats.batch_seconds,
        )


def histogram(name: str, help_text: str, distribution: Distribution) -> HistogramMetricFamily:
    buckets = [("+Inf" if bound == float("inf") else repr(bound), n) for bound, n in distribution.cumulative()]
    return HistogramMetricFamily(name, help_text, buckets=buckets, sum_value=distribution.total)


def warehouse_families(firing: dict[str, int] | None, open_sessions: int | None) -> Iterator[Metric]:
    alerts = GaugeMetricFamily(
        "flowledger_alerts_firing", "Alerts of all tenants whose latest state is firing.", labels=["severity"]
    )
    for severity, n in sorted((firing or {}).items()):
        alerts.add_metric([severity], n)
    yield alerts
    sessions = GaugeMetricFamily(
        "flowledger_troubleshooting_sessions_open", "Troubleshooting sessions of all tenants not closed yet."
    )
    if open_sessions is not None:
        sessions.add_metric([], open_sessions)
    yield sessions
