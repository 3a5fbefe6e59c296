"""The Grafana dashboard's queries, as the tests read them: panel SQL, macros rendered, and the tables of the DDL."""

import json
import re
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "flowledger.json"
SQL_DIR = ROOT / "projections" / "sql"
CLICKHOUSE = "grafana-clickhouse-datasource"


def panels() -> list[dict]:
    return [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]


def clickhouse_queries() -> dict[str, str]:
    """Panel title -> its SQL, for every panel on the ClickHouse data source."""
    return {p["title"]: t["rawSql"] for p in panels() for t in p["targets"] if t["datasource"]["type"] == CLICKHOUSE}


def render(sql: str, *, tenants: list[str], start: datetime, end: datetime, interval_s: int = 60) -> str:
    """The SQL as the data source plugin sends it: macros and the ``tenant`` variable replaced."""
    sql = sql.replace("${tenant:singlequote}", ", ".join(f"'{t}'" for t in tenants))
    sql = re.sub(
        r"\$__timeFilter\((\w+)\)",
        rf"\1 >= toDateTime({int(start.timestamp())}) AND \1 <= toDateTime({int(end.timestamp())})",
        sql,
    )
    sql = re.sub(r"\$__timeInterval\((\w+)\)", rf"toStartOfInterval(toDateTime(\1), INTERVAL {interval_s} second)", sql)
    sql = sql.replace("$__interval_s", str(interval_s))
    assert "$" not in sql, f"a macro is left: {sql}"
    return sql


def ddl_columns() -> dict[str, set[str]]:
    """Table -> columns, from the CREATE TABLE and ALTER TABLE ... ADD COLUMN statements of the migrations."""
    tables: dict[str, set[str]] = {}
    for path in sorted(SQL_DIR.glob("*.sql")):
        text = re.sub(r"--[^\n]*", "", path.read_text())
        for name, body in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)\s*\((.*?)\)\s*ENGINE", text, re.DOTALL):
            columns = (line.strip().split()[0] for line in body.splitlines() if line.strip())
            tables.setdefault(name, set()).update(c for c in columns if c != "INDEX")
        for name, column in re.findall(r"ALTER TABLE (\w+) ADD COLUMN IF NOT EXISTS (\w+)", text):
            tables[name].add(column)
    return tables
