"""Every Kafka topic Flowledger uses, in one place.

Record values are UTF-8 JSON: either one envelope object, or a JSON array of
envelopes whose keys all hash to the record's partition (a batch; order
within it is kept). Keys are the envelope's ``partition_key`` (run id, else
workflow id; a batch's key is its first record's), so the records of one run
stay in order in one partition.
"""

from typing import Final

WORKFLOW_EVENTS: Final = "workflow-events"
"""Run lifecycle events from the executor and outside producers."""
WORKFLOW_COMMANDS: Final = "workflow-commands"
"""Definitions and commands: WorkflowDefined, StartRun, CancelRun, RetryRun ..."""
METRIC_WINDOWS: Final = "metric-windows"
METRIC_PARTIALS: Final = "metric-partials"
"""Internal: per-partition partial windows and watermarks on their way to being merged (not projected)."""
METRIC_PANES: Final = "metric-panes"
"""Internal: per-partition one-second panes and watermarks for the alert rules' rolling windows (not projected)."""
ANOMALIES: Final = "anomalies"
ALERTS: Final = "alerts"
ALERT_CONTROL: Final = "alert-control"
"""Alert rules, routes, silences and alerts raised from outside.

AlertRuleDefined, AlertRuleDeleted, AlertRoutesDefined, SilenceCreated, SilenceExpired, AlertRaised,
AlertAcknowledged."""
TROUBLESHOOTING_SESSIONS: Final = "troubleshooting-sessions"
OPTIMIZATIONS: Final = "optimizations"
WORKER_HEARTBEATS: Final = "worker-heartbeats"
DEAD_LETTERS: Final = "dead-letters"
"""Records that could not be decoded or validated, with reason and source offset."""

PARTITIONS: Final[dict[str, int]] = {
    WORKFLOW_EVENTS: 4,
    WORKFLOW_COMMANDS: 4,
    METRIC_WINDOWS: 1,
    METRIC_PARTIALS: 1,
    METRIC_PANES: 1,
    ANOMALIES: 1,
    ALERTS: 1,
    ALERT_CONTROL: 1,
    TROUBLESHOOTING_SESSIONS: 1,
    OPTIMIZATIONS: 1,
    WORKER_HEARTBEATS: 1,
    DEAD_LETTERS: 1,
}

INTERNAL_TOPICS: Final = (DEAD_LETTERS, METRIC_PARTIALS, METRIC_PANES)
PROJECTED_TOPICS: Final = tuple(t for t in PARTITIONS if t not in INTERNAL_TOPICS)
"""Topics whose records the projector archives and projects."""
