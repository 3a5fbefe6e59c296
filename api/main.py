"""The FastAPI application and its lifespan.

In embedded mode (ClickHouse through chdb) this process owns the ClickHouse
data path, so it also hosts the projector: every insert and query goes
through its one warehouse handle.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api.detectors import Detectors
from api.routes import (
    alerts,
    credentials,
    dashboard,
    events,
    generate,
    health,
    metrics,
    monitoring,
    optimization,
    patterns,
    prometheus,
    runs,
    services,
    stream,
    troubleshooting,
    workflows,
)  # fmt: skip
from api.state import AppState
from connectors.credentials import CredentialStore
from flowledger import __version__
from flowledger.client import Producer
from flowledger.settings import Settings
from projections.live import LiveHub
from projections.migrations import migrate
from projections.projector import Projector
from projections.warehouse import Warehouse
from schemas.registry import json_schemas

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warehouse = Warehouse(settings.warehouse_url)
        migrate(warehouse)
        producer = Producer(settings.bootstrap)
        await producer.start()
        state = AppState(
            settings=settings,
            warehouse=warehouse,
            producer=producer,
            credentials=CredentialStore(settings.flowledger_data_dir),
            detectors=Detectors(),
        )
        stopping = asyncio.Event()
        task = None
        if settings.flowledger_projector:
            state.live = LiveHub()
            state.projector = Projector(
                settings.bootstrap,
                warehouse,
                group_id=settings.flowledger_projector_group,
                workers=settings.flowledger_projector_workers,
                max_records=settings.flowledger_projector_max_records,
                hub=state.live,
            )
            state.telemetry.projector_stats = state.projector.stats
            state.telemetry.live = state.live
            task = asyncio.create_task(state.projector.run(stopping), name="projector")
            task.add_done_callback(_log_crash)
        app.state.flowledger = state
        optimizing = None
        if settings.workflow_intelligent_optimization_enabled:
            optimizing = asyncio.create_task(optimization.analyse_active_workflows(state, stopping), name="optimize")
            optimizing.add_done_callback(_log_crash)
        try:
            yield
        finally:
            stopping.set()
            if optimizing:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(optimizing, 15)
            if task:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, 15)
            await producer.stop()
            warehouse.close()

    app = FastAPI(
        title="Flowledger",
        version=__version__,
        description="Run, watch and repair automation workflows. Every `/api` route needs "
        "`Authorization: Bearer <key>`; a key sees and writes only its tenant.",
        lifespan=lifespan,
    )
    routers = (
        events,
        runs,
        generate,
        patterns,
        troubleshooting,
        optimization,
        workflows,
        credentials,
        monitoring,
        metrics,
        alerts,
        health,
        services,
        prometheus,
        stream,
        dashboard,
    )
    for router in (module.router for module in routers):
        app.include_router(router)
    dashboard.mount_static(app)
    _publish_record_schemas(app)
    return app


def _log_crash(task: "asyncio.Task[None]") -> None:
    if not task.cancelled() and task.exception():
        log.error("projector stopped", exc_info=task.exception())


def _publish_record_schemas(app: FastAPI) -> None:
    """Put the event contract (the `Record` union) into the OpenAPI components."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = original()
        record = json_schemas()["Record"]
        defs = record.pop("$defs", {})
        components = spec.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in defs.items():
            components.setdefault(name, schema)
        components["Record"] = record
        app.openapi_schema = _rewrite_refs(spec)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (v.replace("#/$defs/", "#/components/schemas/") if k == "$ref" else _rewrite_refs(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node
