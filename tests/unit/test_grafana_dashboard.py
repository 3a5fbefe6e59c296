"""The Grafana dashboard reads only tables and columns the migrations create, and metrics /metrics serves."""

import json
import re

import pytest

from tests.dashboards import DASHBOARD, ROOT, clickhouse_queries, ddl_columns, panels

DEPLOY = ROOT / "deploy"
KEYWORDS = {
    "select", "from", "where", "and", "or", "not", "in", "is", "null", "group", "by", "order", "desc", "asc",
    "limit", "as", "final", "interval", "second",
}  # fmt: skip


def referenced_tables(sql: str) -> set[str]:
    return set(re.findall(r"\b(?:FROM|JOIN)\s+([a-z_]\w*)", sql))


def identifiers(sql: str) -> set[str]:
    """Names a query reads: words that are not keywords, functions, macros, literals or aliases it defines."""
    sql = re.sub(r"'[^']*'", "''", sql)
    sql = re.sub(r"\$\{[^}]*\}|\$__\w+", "", sql)
    aliases = set(re.findall(r"\bAS\s+(\w+)", sql))
    words = re.findall(r"\b([a-z_][a-z0-9_]*)\b(?!\s*\()", sql)
    return {w for w in words if w.lower() not in KEYWORDS} - aliases


QUERIES = clickhouse_queries()


def test_the_dashboard_has_clickhouse_panels_for_each_area():
    titles = " ".join(QUERIES).lower()
    for area in ("success rate", "latency", "error", "alerts"):
        assert area in titles
    assert len(QUERIES) >= 10


@pytest.mark.parametrize("title", sorted(QUERIES))
def test_panel_sql_reads_only_tables_and_columns_that_exist(title):
    sql, tables = QUERIES[title], ddl_columns()
    read = referenced_tables(sql)
    assert read and read <= set(tables), read - set(tables)
    known = set().union(read, *(tables[t] for t in read))
    assert identifiers(sql) <= known, identifiers(sql) - known


def test_prometheus_panels_use_metrics_the_api_documents():
    readme = (ROOT / "README.md").read_text().split("### Prometheus", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(flowledger_[a-z_]+)`", readme, re.MULTILINE))
    exprs = [t["expr"] for p in panels() for t in p["targets"] if t["datasource"]["type"] == "prometheus"]
    used = {re.sub(r"_bucket$", "", m) for e in exprs for m in re.findall(r"flowledger_[a-z_]+", e)}
    assert exprs and used <= documented, used - documented


def test_panels_name_the_provisioned_data_sources_and_ids_are_unique():
    provisioned = (DEPLOY / "grafana" / "provisioning" / "datasources" / "flowledger.yml").read_text()
    uids = set(re.findall(r"^\s+uid: (\S+)$", provisioned, re.MULTILINE))
    dashboard = json.loads(DASHBOARD.read_text())
    used = {t["datasource"]["uid"] for p in panels() for t in p["targets"]}
    used |= {v["datasource"]["uid"] for v in dashboard["templating"]["list"]}
    assert used <= uids, used - uids
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_compose_mounts_files_that_exist_and_prometheus_scrapes_the_api():
    compose = (DEPLOY / "docker-compose.yml").read_text()
    for source in re.findall(r"^\s+- (\./[^:]+):", compose, re.MULTILINE):
        assert (DEPLOY / source).exists(), source
    assert "GF_INSTALL_PLUGINS: grafana-clickhouse-datasource" in compose
    assert (DEPLOY / "../docker-compose.kafka.yml").exists()
    assert re.search(r'targets: \["api:5058"\]', (DEPLOY / "prometheus.yml").read_text())
    assert re.search(r"^  api:$", (ROOT / "docker-compose.kafka.yml").read_text(), re.MULTILINE)
