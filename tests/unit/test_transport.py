"""The aiohttp-backed httpx transport, against real sockets on loopback."""

import asyncio

import httpx
import pytest

from connectors.base import RetryableError, StepCall
from connectors.http import HttpConnector, ServiceProfile
from connectors.transport import AiohttpTransport
from flowledger.broker import free_port


async def serve(answer: bytes | None):
    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        if answer is None:
            await asyncio.sleep(5)
        else:
            writer.write(answer)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def test_answers_headers_and_bodies_come_through():
    body = b'{"ok": true}'
    server = await serve(
        b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    port = server.sockets[0].getsockname()[1]
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        answer = await client.post(f"http://127.0.0.1:{port}/x", json={"a": 1})
    server.close()
    assert answer.status_code == 429 and answer.headers["retry-after"] == "3" and answer.json() == {"ok": True}


@pytest.mark.parametrize("case", ["refused", "silent"])
async def test_network_failures_become_retryable_connector_errors(tmp_path, case):
    server = None
    if case == "refused":
        port = free_port()
    else:
        server = await serve(None)
        port = server.sockets[0].getsockname()[1]
    profile = ServiceProfile("svc", f"http://127.0.0.1:{port}", auth="none", credential_required=False)
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        connector = HttpConnector(profile, None, client)  # type: ignore[arg-type]
        call = StepCall("t", "w", "r", "s", 1, "svc", "act", {}, None, timeout_s=0.3)
        with pytest.raises(RetryableError) as info:
            await connector.call(call)
    if server:
        server.close()
    assert info.value.error_type == ("ConnectError" if case == "refused" else "Timeout")
