"""Runtime configuration, from the environment (one pydantic-settings object)."""

import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

WORKER_APP_IDS = {"all": "flowledger", "executor": "flowledger-executor", "monitor": "flowledger-monitor"}
"""Faust app id (and so consumer group) of each worker role."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    kafka_bootstrap_servers: str | None = Field(
        default=None, description="Kafka to use; unset: `flowledger up` starts an embedded broker."
    )
    clickhouse_url: str | None = Field(
        default=None,
        description="http(s)://... for a server; default chdb:///<data dir>/clickhouse.",
    )
    flowledger_data_dir: Path = Path(".flowledger")
    python_api_port: int = 5058
    flowledger_api_host: str = "127.0.0.1"
    flowledger_api_keys: str | None = Field(
        default=None, description="key1=tenant-a,key2=tenant-b; tenant '*' is an operator key."
    )
    flowledger_projector: bool = Field(default=True, description="Host the projector inside the API process.")
    flowledger_projector_group: str = "flowledger-projector"
    flowledger_projector_workers: int = Field(
        default_factory=lambda: min(4, max(1, (os.cpu_count() or 2) - 1)),
        ge=0,
        description="Processes that decode slices for the projector; 0 decodes in a thread.",
    )
    flowledger_projector_max_records: int = Field(default=1000, ge=1, description="Kafka messages per projected slice.")
    flowledger_worker_heartbeat_s: float = 5.0
    flowledger_worker_session_timeout_s: float = Field(
        default=45.0,
        ge=6,
        le=300,
        description="A worker silent this long leaves its consumer group and its partitions move to the others; "
        "lower fails over faster after a crash, higher rides out longer stalls.",
    )
    flowledger_worker_role: Literal["all", "executor", "monitor"] = Field(
        default="all", description="What a `flowledger worker` runs: the executor, the metric agents, or both."
    )
    flowledger_step_cache_entries: int = Field(
        default=10_000, ge=0, description="Outputs of `cache: true` steps an executor worker keeps (0: none)."
    )
    flowledger_metrics_window_s: float = Field(default=60.0, gt=0, description="Tumbling metric window length.")
    flowledger_metrics_grace_s: float = Field(
        default=5.0, ge=0, description="How late (event time) an event may be and still update its window."
    )
    flowledger_metrics_idle_s: float = Field(
        default=5.0, gt=0, description="A partition quiet this long (wall time) moves its watermark to wall time."
    )
    flowledger_metrics_empty_windows: int = Field(
        default=60, ge=0, description="Empty windows a series reports after its last event before it goes dormant."
    )
    monitoring_alert_cooldown: float = Field(
        default=600.0, ge=0, description="Seconds between repeated notifications of a rule that sets none."
    )
    flowledger_alert_pane_s: float = Field(
        default=0.5, gt=0, description="Alert rules are evaluated once per pane over a rolling metric window."
    )
    workflow_monitoring_enabled: bool = Field(default=True, description="false: alert rules are not evaluated.")
    workflow_auto_recovery_enabled: bool = Field(
        default=False,
        description="true: troubleshooting sessions apply their automatic actions (pause, probe, resume, retry).",
    )
    flowledger_recovery_probe_s: float = Field(
        default=5.0, gt=0, le=3600, description="First wait before a failing service is probed again (it doubles)."
    )
    workflow_intelligent_optimization_enabled: bool = Field(
        default=False, description="true: the API analyses every workflow that ran lately, once per interval."
    )
    workflow_optimization_interval: float = Field(
        default=300.0, ge=5, description="Seconds between two rounds of automatic optimization analyses."
    )
    flowledger_metrics_enabled: bool = Field(
        default=True, description="Serve Prometheus metrics about Flowledger itself at /metrics."
    )
    flowledger_metrics_token: str | None = Field(
        default=None, description="When set, /metrics answers only `Authorization: Bearer <token>`."
    )
    flowledger_anomaly_threshold: float | None = Field(
        default=None, ge=0, le=1, description="Score from which a point is an anomaly; unset: the detector's own."
    )

    @property
    def bootstrap(self) -> str:
        if not self.kafka_bootstrap_servers:
            raise RuntimeError("KAFKA_BOOTSTRAP_SERVERS is not set")
        return self.kafka_bootstrap_servers

    @cached_property
    def warehouse_url(self) -> str:
        if self.clickhouse_url:
            return self.clickhouse_url
        return f"chdb://{(self.flowledger_data_dir / 'clickhouse').resolve()}"

    @cached_property
    def api_keys(self) -> dict[str, str]:
        """API key -> tenant id."""
        return parse_api_keys(self.flowledger_api_keys or "")


def parse_api_keys(spec: str) -> dict[str, str]:
    """Parse ``key1=tenant-a,key2=tenant-b``; raises ValueError on a malformed entry."""
    keys: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        key, sep, tenant = entry.partition("=")
        if not sep or not key.strip() or not tenant.strip():
            raise ValueError(f"FLOWLEDGER_API_KEYS entry {entry.split('=')[0][:4]}... is not key=tenant")
        keys[key.strip()] = tenant.strip()
    return keys
