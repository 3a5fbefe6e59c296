"""Ingest: producers post run events (one, or a batch of up to 10,000)."""

from typing import Any

import orjson
from aiokafka.errors import KafkaError
from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict

from api import examples
from api.deps import State, Tenant
from api.state import AppState
from projections import queries
from schemas.envelope import Envelope
from schemas.registry import validate_item

router = APIRouter(prefix="/api/events", tags=["events"])

MAX_BATCH = 10_000


class AcceptedPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"accepted": 3}]})

    accepted: int


class EventCountPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"tenant_id": examples.TENANT, "events": 48213}]})

    tenant_id: str
    events: int


_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/Record"},
                        {
                            "type": "object",
                            "required": ["events"],
                            "properties": {
                                "events": {
                                    "type": "array",
                                    "maxItems": MAX_BATCH,
                                    "items": {"$ref": "#/components/schemas/Record"},
                                }
                            },
                        },
                    ]
                },
                "examples": {
                    "one": {"summary": "one event", "value": examples.STEP_SUCCEEDED},
                    "batch": {"summary": "a batch (all published or none)", "value": {"events": examples.RUN_EVENTS}},
                },
            }
        },
    }
}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AcceptedPublic,
    openapi_extra=_BODY_DOC,
    responses={
        403: examples.error("an event names another tenant",
                            {"message": "this key writes only tenant 'acme'; none was accepted", "indexes": [2]}),
        413: examples.error("more than 10,000 events", "12000 events; at most 10000 per request"),
        422: examples.error("invalid items, each with its index and reason; none published", {
            "message": "1 of 3 events are invalid; none was accepted",
            "errors": [{"index": 1, "reason": "payload.duration_ms: Input should be greater than or equal to 0"}],
        }),
        503: examples.error("the broker did not acknowledge; nothing may be assumed accepted",
                            "broker unavailable: KafkaConnectionError"),
    },
)
async def ingest(request: Request, state: State, tenant: Tenant) -> AcceptedPublic:
    """Validate every item, then publish all of them or none.

    Answers 202 only after the broker acknowledged every record.
    """
    items = _items(await request.body())
    try:
        accepted = await _publish(state, tenant, items)
    except HTTPException:
        state.telemetry.count_events(items, "rejected")
        raise
    state.telemetry.count_events(accepted, "accepted")
    return AcceptedPublic(accepted=len(accepted))


async def _publish(state: AppState, tenant: str, items: list[Any]) -> list[Envelope]:
    records, errors = [], []
    for index, item in enumerate(items):
        outcome = validate_item(item)
        if isinstance(outcome, Envelope):
            records.append(outcome)
        else:
            errors.append({"index": index, "reason": outcome})
    if errors:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            {"message": f"{len(errors)} of {len(items)} events are invalid; none was accepted",
             "errors": errors},
        )  # fmt: skip
    foreign = [i for i, r in enumerate(records) if r.tenant_id != tenant]
    if foreign:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            {"message": f"this key writes only tenant '{tenant}'; none was accepted",
             "indexes": foreign[:100]},
        )  # fmt: skip
    try:
        await state.producer.send(records)
    except KafkaError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"broker unavailable: {type(exc).__name__}") from exc
    return records


def _items(body: bytes) -> list[Any]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"body is not JSON: {exc}") from exc
    if isinstance(parsed, dict) and "events" in parsed and "type" not in parsed:
        items = parsed["events"]
        if not isinstance(items, list):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "`events` must be an array")
    elif isinstance(parsed, dict):
        items = [parsed]
    else:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            'body must be an event object or {"events": [...]}',
        )
    if not items:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "`events` is empty")
    if len(items) > MAX_BATCH:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"{len(items)} events; at most {MAX_BATCH} per request",
        )
    return items


@router.get("/stats", response_model=EventCountPublic)
async def event_stats(state: State, tenant: Tenant) -> EventCountPublic:
    """How many distinct events of this tenant are queryable now."""
    from starlette.concurrency import run_in_threadpool

    count = await run_in_threadpool(queries.count_events, state.warehouse, tenant)
    return EventCountPublic(tenant_id=tenant, events=count)
