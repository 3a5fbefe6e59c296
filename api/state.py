"""What the API process holds for its lifetime: settings, warehouse, producer, projector, telemetry."""

from dataclasses import dataclass, field
from typing import Any

from api.detectors import Detectors
from api.telemetry import Telemetry
from connectors.credentials import CredentialStore
from flowledger.client import Producer
from flowledger.settings import Settings
from projections.live import LiveHub
from projections.projector import Projector
from projections.warehouse import Warehouse
from schemas.monitoring import SilencePayload


@dataclass
class AppState:
    settings: Settings
    warehouse: Warehouse
    producer: Producer
    credentials: CredentialStore
    detectors: Detectors
    projector: Projector | None = None
    telemetry: Telemetry = field(default_factory=Telemetry)
    live: LiveHub | None = None
    """Summaries of what the hosted projector commits, for ``/api/stream``; None without a projector here."""
    assigned_versions: dict[tuple[str, ...], int] = field(default_factory=dict)
    """(tenant, workflow) -> last definition version this process published."""
    rule_writes: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """(tenant, rule name) -> the rule as this process last defined or deleted it, until that is projected."""
    created_silences: dict[tuple[str, str], SilencePayload] = field(default_factory=dict)
    """(tenant, silence id) -> the silences this process created, so one can be ended before it is projected."""
