"""``GET /metrics``: Prometheus metrics about Flowledger itself (``api.telemetry``).

Needs no API key, as scrapers expect, and exposes no tenant data. Off with
``FLOWLEDGER_METRICS_ENABLED=false`` (404); with ``FLOWLEDGER_METRICS_TOKEN``
set it answers only ``Authorization: Bearer <token>``.
"""

import secrets
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Response, status
from prometheus_client import CONTENT_TYPE_LATEST

from api import examples
from api.deps import State

router = APIRouter(tags=["health"])


EXPOSITION = """# HELP flowledger_ingest_events_total Events posted to /api/events, by record type and outcome.
# TYPE flowledger_ingest_events_total counter
flowledger_ingest_events_total{outcome="accepted",type="StepSucceeded"} 48213.0
# HELP flowledger_workers_alive Stream workers with a recent heartbeat.
# TYPE flowledger_workers_alive gauge
flowledger_workers_alive{role="executor"} 1.0
flowledger_workers_alive{role="monitor"} 1.0
# HELP flowledger_alerts_firing Alerts of all tenants whose latest state is firing.
# TYPE flowledger_alerts_firing gauge
flowledger_alerts_firing{severity="high"} 1.0
"""


@router.get(
    "/metrics", response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"example": EXPOSITION}}},
               401: examples.error("a metrics token is set and was not sent",
                                   "send `Authorization: Bearer <FLOWLEDGER_METRICS_TOKEN>`"),
               404: examples.error("metrics are turned off", "metrics are turned off (FLOWLEDGER_METRICS_ENABLED)")},
)  # fmt: skip
async def metrics(state: State, authorization: Annotated[str | None, Header()] = None) -> Response:
    """Ingest, consumer lag, projector, stream workers, firing alerts and open sessions, in the text format."""
    settings = state.settings
    if not settings.flowledger_metrics_enabled:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "metrics are turned off (FLOWLEDGER_METRICS_ENABLED)")
    token = settings.flowledger_metrics_token
    if token and not secrets.compare_digest(f"Bearer {token}".encode(), (authorization or "").encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "send `Authorization: Bearer <FLOWLEDGER_METRICS_TOKEN>`",
            headers={"WWW-Authenticate": "Bearer"},
        )  # fmt: skip
    await state.telemetry.refresh(settings, state.warehouse)
    return Response(state.telemetry.exposition(), media_type=CONTENT_TYPE_LATEST)
