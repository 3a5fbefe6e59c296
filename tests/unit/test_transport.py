"""The aiohttp-backed httpx transport and direct client, against real sockets on loopback."""

import asyncio

import httpx
import pytest

from connectors.base import PermanentError, RetryableError, StepCall
from connectors.http import HttpConnector, ServiceProfile
from connectors.transport import AiohttpClient, AiohttpTransport
from flowledger.broker import free_port

CLIENTS = {
    "httpx-over-aiohttp": lambda: httpx.AsyncClient(transport=AiohttpTransport()),
    "direct": AiohttpClient,
}


async def serve(answer: bytes | None, seen: list[bytes] | None = None):
    async def handle(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        if seen is not None:
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
            seen.append(head + (await reader.readexactly(length) if length else b""))
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


def http_answer(status: str, body: bytes, *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return (f"HTTP/1.1 {status}\r\n{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


@pytest.mark.parametrize("client", CLIENTS)
async def test_connector_calls_are_the_same_request_and_answer_through_either_client(client):
    seen: list[bytes] = []
    server = await serve(http_answer("200 OK", b'{"id": "x-1"}', "Content-Type: application/json"), seen)
    port = server.sockets[0].getsockname()[1]
    profile = ServiceProfile("svc", f"http://127.0.0.1:{port}", auth="none", credential_required=False)
    async with CLIENTS[client]() as http:
        call = StepCall("t", "w", "r", "s", 2, "svc", "act", {"text": "héllo", "n": [1, 2]}, None, timeout_s=5)
        output = await HttpConnector(profile, None, http).call(call)  # type: ignore[arg-type]
    server.close()
    head, _, body = seen[0].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    assert output == {"id": "x-1"} and lines[0] == "POST /svc/act HTTP/1.1"
    assert headers["idempotency-key"] == "t:r:s:2" and headers["content-type"] == "application/json"
    assert headers["accept"] == "application/json"
    assert body == '{"text":"héllo","n":[1,2]}'.encode()


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(
    ("answer", "error", "error_type", "retry_after"),
    [
        (http_answer("429 Too Many Requests", b'{"error": {"message": "slow down"}}', "Retry-After: 3"),
         RetryableError, "RateLimited", 3.0),
        (http_answer("404 Not Found", b"no such thing", "Content-Type: text/plain"), PermanentError, "NotFound", None),
        (http_answer("503 Service Unavailable", b""), RetryableError, "UpstreamError", None),
    ],
)  # fmt: skip
async def test_error_answers_map_alike_through_either_client(client, answer, error, error_type, retry_after):
    server = await serve(answer)
    port = server.sockets[0].getsockname()[1]
    profile = ServiceProfile("svc", f"http://127.0.0.1:{port}", auth="none", credential_required=False)
    async with CLIENTS[client]() as http:
        call = StepCall("t", "w", "r", "s", 1, "svc", "act", {}, None, timeout_s=5)
        with pytest.raises(error) as info:
            await HttpConnector(profile, None, http).call(call)  # type: ignore[arg-type]
    server.close()
    assert info.value.error_type == error_type and info.value.retry_after_s == retry_after
    assert "slow down" in info.value.message if error_type == "RateLimited" else True


@pytest.mark.parametrize("client", CLIENTS)
async def test_a_url_that_is_not_http_is_a_permanent_error(client):
    profile = ServiceProfile("svc", "ftp://127.0.0.1:1", auth="none", credential_required=False)
    async with CLIENTS[client]() as http:
        call = StepCall("t", "w", "r", "s", 1, "svc", "act", {}, None, timeout_s=5)
        with pytest.raises(PermanentError) as info:
            await HttpConnector(profile, None, http).call(call)  # type: ignore[arg-type]
    assert info.value.error_type == "InvalidURL"


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("case", ["refused", "silent"])
async def test_network_failures_become_retryable_connector_errors(tmp_path, case, client):
    server = None
    if case == "refused":
        port = free_port()
    else:
        server = await serve(None)
        port = server.sockets[0].getsockname()[1]
    profile = ServiceProfile("svc", f"http://127.0.0.1:{port}", auth="none", credential_required=False)
    async with CLIENTS[client]() as http:
        connector = HttpConnector(profile, None, http)  # type: ignore[arg-type]
        call = StepCall("t", "w", "r", "s", 1, "svc", "act", {}, None, timeout_s=0.3)
        with pytest.raises(RetryableError) as info:
            await connector.call(call)
    if server:
        server.close()
    assert info.value.error_type == ("ConnectError" if case == "refused" else "Timeout")
