"""What the API process holds for its lifetime: settings, warehouse, producer, projector."""

from dataclasses import dataclass

from flowledger.client import Producer
from flowledger.settings import Settings
from projections.projector import Projector
from projections.warehouse import Warehouse


@dataclass
class AppState:
    settings: Settings
    warehouse: Warehouse
    producer: Producer
    projector: Projector | None = None
