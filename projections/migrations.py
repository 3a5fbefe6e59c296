"""Numbered DDL files (``sql/NNNN_name.sql``), applied once each, in order.

Applied versions are recorded in ``schema_migrations``; every statement is
also written to be safe to run twice (``IF NOT EXISTS``), so a crash between
applying a file and recording it does no harm.
"""

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from projections.errors import MigrationError
from projections.warehouse import Warehouse

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).parent / "sql"
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version    UInt32,
    name       String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY version
"""
SELECT_APPLIED_VERSIONS = "SELECT DISTINCT version FROM schema_migrations"
INSERT_APPLIED_VERSION = "INSERT INTO schema_migrations (version, name) VALUES ({v:UInt32}, {n:String})"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def split_statements(sql: str) -> tuple[str, ...]:
    """Split a DDL file on ``;`` at line ends, dropping comment-only lines."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    parts = re.split(r";\s*$", "\n".join(lines), flags=re.MULTILINE)
    return tuple(p.strip() for p in parts if p.strip())


def load_migrations() -> list[Migration]:
    found = []
    for entry in SQL_DIR.iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], split_statements(entry.read_text("utf-8"))))
    return sorted(found, key=lambda m: m.version)


def migrate(warehouse: Warehouse) -> list[int]:
    """Apply pending migrations; returns the versions applied now."""
    warehouse.command(CREATE_MIGRATIONS_TABLE)
    applied = {row[0] for row in warehouse.query(SELECT_APPLIED_VERSIONS)}
    done = []
    for migration in load_migrations():
        if migration.version in applied:
            continue
        for statement in migration.statements:
            try:
                warehouse.command(statement)
            except Exception as exc:
                raise MigrationError(f"migration {migration.version:04d}_{migration.name} failed: {exc}") from exc
        warehouse.command(INSERT_APPLIED_VERSION, {"v": migration.version, "n": migration.name})
        log.info("applied migration %04d_%s", migration.version, migration.name)
        done.append(migration.version)
    return done


DERIVED_TABLES = ("runs", "steps", "metric_windows", "anomalies", "alert_events", "alert_rules", "silences")
"""Tables rebuilt from the archive by a replay (``events`` is the archive itself)."""
