"""The pure packages import no infrastructure: a test that parses their imports keeps it so."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "faust",
    "aiokafka",
    "clickhouse_connect",
    "chdb",
    "fastapi",
    "starlette",
    "httpx",
    "uvicorn",
    "prometheus_client",
}


@pytest.mark.parametrize(
    "path",
    sorted([*ROOT.joinpath("domain").rglob("*.py"), *ROOT.joinpath("schemas").rglob("*.py")]),
)
def test_pure_module_imports_no_infrastructure(path):
    tree = ast.parse(path.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN, f"{path.name} imports {imported & FORBIDDEN}"
