"""A data directory made by an older version upgrades: new migrations apply over its tables and rows.

chdb opens one data path per process, so the old directory is made and
upgraded in a child process.
"""

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import orjson
import pytest

from projections import migrations, queries
from projections.projector import flush
from projections.replay import replay_from_archive
from projections.slicing import LogRecord, project_slice
from projections.warehouse import Warehouse
from schemas.registry import encode
from schemas.runs import StepSucceeded
from tests.factories import run_with_retry

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LAST_OLD_VERSION = 8


def _project(wh: Warehouse, records: list) -> None:
    log = [LogRecord("workflow-events", 0, 0, encode(records))]
    flush(wh, project_slice(log, now=datetime.now(UTC)).batch)


def _new_run(tenant: str) -> list:
    """A run whose notify step answered from the cache, on its fallback."""
    records = run_with_retry(tenant, "wf", "new")
    done = next(i for i, r in enumerate(records) if isinstance(r, StepSucceeded) and r.step_id == "notify")
    changes = {"params_digest": "0123456789abcdef", "cached": True, "service": "discord", "fallback_for": "slack"}
    payload = records[done].payload.model_copy(update=changes)
    records[done] = records[done].model_copy(update={"payload": payload})
    return records


def upgrade(path: str) -> None:
    """Run in a child: make a directory at the older version, project, upgrade, project, print the answers."""
    wh = Warehouse(f"chdb://{path}")
    old = [m for m in migrations.load_migrations() if m.version <= LAST_OLD_VERSION]
    with mock.patch.object(migrations, "load_migrations", lambda: old):
        assert migrations.migrate(wh) == [m.version for m in old]
    tenant = "upgrade"
    _project(wh, run_with_retry(tenant, "wf", "old"))
    applied = migrations.migrate(wh)
    again = migrations.migrate(wh)
    _project(wh, _new_run(tenant))

    def steps(run_id: str) -> dict[str, tuple[bool, str | None, str, str | None]]:
        run = queries.get_run(wh, tenant, run_id)
        assert run is not None
        return {s.step_id: (s.cached, s.params_digest, s.service, s.fallback_for) for s in run.steps}

    before_replay = {"old": steps("old"), "new": steps("new")}
    replay_from_archive(wh)
    after_replay = {"old": steps("old"), "new": steps("new")}
    print(orjson.dumps({"applied": applied, "again": again, "steps": before_replay, "replayed": after_replay}).decode())


def test_an_existing_directory_upgrades_and_new_step_columns_fill(tmp_path):
    script = f"from tests.integration.test_migrations import upgrade; upgrade({str(tmp_path / 'ch')!r})"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = orjson.loads(result.stdout.strip().splitlines()[-1])
    newer = [m.version for m in migrations.load_migrations() if m.version > LAST_OLD_VERSION]
    assert answer["applied"] == newer and answer["again"] == []
    # Rows projected before the upgrade keep the defaults; the view fills the new columns from then on.
    assert answer["steps"]["old"]["notify"] == [False, None, "slack", None]
    assert answer["steps"]["new"]["notify"] == [True, "0123456789abcdef", "discord", "slack"]
    assert answer["steps"]["new"]["read-email"] == [False, None, "gmail", None]
    assert answer["replayed"] == answer["steps"]
