"""An httpx transport that sends through aiohttp.

httpx gives the connectors one clean request/response API (and
``MockTransport`` for tests); its default transport, httpcore, costs about
1 ms of CPU per request in our measurements, against 0.12 ms for aiohttp on
the same calls. This transport keeps the httpx API and moves the wire work to
aiohttp: timeouts and connection errors are translated into the httpx
exceptions the connectors already map.
"""

import aiohttp
import httpx


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, limit: int = 100) -> None:
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._limit, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        total = max((v for v in timeout.values() if v is not None), default=None)
        body = await request.aread()
        try:
            async with self._client().request(
                request.method,
                str(request.url),
                headers=[(k, v) for k, v in request.headers.multi_items() if k.lower() != "host"],
                data=body or None,
                timeout=aiohttp.ClientTimeout(total=total),
                allow_redirects=False,
            ) as answer:
                content = await answer.read()
                headers = [(k, v) for k, v in answer.raw_headers]
                return httpx.Response(answer.status, headers=headers, content=content, request=request)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(f"no answer within {total}s", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.NetworkError(str(exc), request=request) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
