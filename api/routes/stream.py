"""The live stream: summaries of what the projector commits, as server-sent events.

``GET /api/stream`` answers ``text/event-stream``. Each event's name is a
summary kind (``run.started``, ``step.failed``, ``alert.fired`` ...; see
``projections.summaries``) and its data one JSON object. The first event is
``ready``; a client that falls behind gets ``lagged`` with how many summaries
it lost (reload what it shows); a comment line keeps idle connections open.
The stream ends when the server stops (``api.server``); clients reconnect.
The key goes in the ``Authorization`` header as on every route, so browsers
read the stream with ``fetch``, not ``EventSource`` (which cannot send headers).
"""

from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import StreamingResponse

from api.deps import State, Tenant
from projections.live import LiveHub

router = APIRouter(tags=["stream"])

HEARTBEAT_S = 15.0
MEDIA_TYPE = "text/event-stream"


def sse(event: str, data: object) -> bytes:
    """One server-sent event (JSON data on one line)."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def _events(request: Request, hub: LiveHub, tenant: str) -> AsyncIterator[bytes]:
    """Until the client goes; the subscription ends with the generator (disconnect or cancellation)."""
    with hub.subscribe(tenant) as subscription:
        yield sse("ready", {"tenant": tenant, "heartbeat_s": HEARTBEAT_S})
        while not hub.closed and not await request.is_disconnected():
            batch = await subscription.next(HEARTBEAT_S)
            if batch.dropped:
                yield sse("lagged", {"dropped": batch.dropped})
            if batch.items:
                yield b"".join(sse(item["kind"], item) for item in batch.items)
            elif not batch.dropped:
                yield b": heartbeat\n\n"


@router.get(
    "/api/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {MEDIA_TYPE: {}}, "description": "server-sent events: `ready`, summaries, `lagged`"},
        503: {"description": "this API process hosts no projector, so it has nothing to stream"},
    },
)
async def stream(request: Request, state: State, tenant: Tenant) -> StreamingResponse:
    """Live summaries of the tenant's runs, steps, alerts, anomalies, sessions, optimizations and metric windows
    (an operator key sees every tenant), as they are committed to ClickHouse."""
    if state.live is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "no projector in this API process: the live stream is not available"
        )
    return StreamingResponse(
        _events(request, state.live, tenant),
        media_type=MEDIA_TYPE,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
