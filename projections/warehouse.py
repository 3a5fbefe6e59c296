"""One handle on ClickHouse, embedded (chdb) or a server, behind one small API.

``CLICKHOUSE_URL`` selects the backend: ``chdb:///path/to/dir`` opens the
ClickHouse engine in this process through clickhouse-connect's chdb backend;
``http(s)://user:pass@host:8123/db`` talks to a server. Only one process may
open a chdb path, so in embedded mode the process that owns the warehouse
serves every query and insert.

Settings that differ between chdb and a server are pinned here, and all times
are stored as ``DateTime64(3, 'UTC')``.
"""

import logging
import threading
from collections.abc import Sequence
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.exceptions import ClickHouseError

from projections.errors import WarehouseUnavailable

log = logging.getLogger(__name__)

PINNED_SETTINGS = {
    "async_insert": 0,
    "mutations_sync": 2,
    "session_timezone": "UTC",
}


class Warehouse:
    """Thread-safe facade over a clickhouse-connect client.

    chdb runs one query at a time per engine, so calls are serialised with a
    lock; a server handles concurrency itself but one client session must not
    run two queries at once either, so the lock is kept for both.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.embedded = url.startswith("chdb:")
        self._lock = threading.Lock()
        try:
            if self.embedded:
                self._client = clickhouse_connect.get_client(dsn=url)
                for key, value in PINNED_SETTINGS.items():
                    self._client.set_client_setting(key, value)
            else:
                self._client = clickhouse_connect.get_client(
                    dsn=url, settings=PINNED_SETTINGS, autogenerate_session_id=False
                )
        except Exception as exc:
            hint = (
                " (another process holds this embedded data path: stop the running stack, "
                "or point CLICKHOUSE_URL at a ClickHouse server)"
                if "lock" in str(exc).lower()
                else ""
            )
            raise WarehouseUnavailable(f"cannot open ClickHouse at {redact_url(url)}: {exc}{hint}") from exc

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        with self._lock:
            return self._client.command(sql, parameters=parameters)

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with self._lock:
            return [tuple(row) for row in self._client.query(sql, parameters=parameters).result_rows]

    def query_dicts(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with self._lock:
            result = self._client.query(sql, parameters=parameters)
            names = result.column_names
            return [dict(zip(names, row, strict=True)) for row in result.result_rows]

    def insert_arrow_stream(self, table: str, columns: Sequence[str], stream: bytes) -> None:
        """Insert an Arrow IPC stream as it is (``FORMAT ArrowStream``)."""
        with self._lock:
            self._client.raw_insert(table, list(columns), insert_block=stream, fmt="ArrowStream")

    def ping(self) -> bool:
        try:
            return bool(self.command("SELECT 1") == 1)
        except (ClickHouseError, OSError, RuntimeError):
            return False

    def close(self) -> None:
        with self._lock:
            self._client.close()


def redact_url(url: str) -> str:
    """Hide a password in a ClickHouse URL before it reaches a log line."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
