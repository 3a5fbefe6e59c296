"""Serving the app with uvicorn, with live streams that end as soon as shutdown starts.

uvicorn waits for open responses (up to its graceful timeout) before it runs
the lifespan's shutdown, and a server-sent event stream never ends by itself.
So the moment a stop signal arrives, the live hub is closed: every stream
finishes its response and the shutdown goes on without waiting.
"""

import asyncio
import socket
from types import FrameType

import uvicorn

from api.main import create_app
from flowledger.settings import Settings

GRACEFUL_SHUTDOWN_S = 10


class Server(uvicorn.Server):
    _loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        state = getattr(getattr(self.config.app, "state", None), "flowledger", None)
        if state is not None and state.live is not None and self._loop is not None:
            # A signal handler may interrupt the loop anywhere: hand the close to the loop itself.
            self._loop.call_soon_threadsafe(state.live.close)
        super().handle_exit(sig, frame)


def serve(settings: Settings) -> None:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.flowledger_api_host,
        port=settings.python_api_port,
        log_level="warning",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    Server(config).run()
