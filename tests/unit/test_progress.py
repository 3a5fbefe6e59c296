"""Progress bars: drawn on stderr only when it is a terminal, never on stdout, off with --no-progress."""

import io
import re
import sys

import pytest

from flowledger import progress
from flowledger.cli import main
from flowledger.produce import read_records
from tests.factories import as_json, run_with_retry


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _bars_wanted():
    progress.configure(enabled=True)
    yield
    progress.configure(enabled=True)


@pytest.fixture
def nab_corpus(tmp_path):
    data = tmp_path / "data" / "realKnownCause"
    data.mkdir(parents=True)
    for name in ("a.csv", "b.csv"):
        rows = [f"2026-03-02 09:{minute:02d}:00,{10 + minute % 3}" for minute in range(30)]
        (data / name).write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    return tmp_path / "data"


def test_no_bar_when_stderr_is_not_a_terminal(capsys):
    assert not sys.stderr.isatty()
    assert progress.bar("x", 10).disable


def test_a_bar_on_a_terminal_and_none_after_no_progress(monkeypatch):
    monkeypatch.setattr(sys, "stderr", Terminal())
    shown = progress.bar("replay", 3, "table")
    assert not shown.disable
    shown.update(3)
    shown.close()
    assert "replay" in sys.stderr.getvalue()
    progress.configure(enabled=False)
    assert progress.bar("replay", 3).disable


def run_nab(args, corpus, out, monkeypatch, capsys, stderr):
    monkeypatch.setattr(sys, "stderr", stderr)
    assert main([*args, "anomaly", "nab", str(corpus), str(out)]) == 0
    return capsys.readouterr().out


SCORED = re.compile(r"^scored 60 points in [0-9.]+ s: [0-9.]+ us per point\n$")


def test_nab_draws_its_bar_on_a_terminal_stderr_and_prints_the_same_stdout(nab_corpus, tmp_path, monkeypatch, capsys):
    terminal = Terminal()
    with_bar = run_nab([], nab_corpus, tmp_path / "out1", monkeypatch, capsys, terminal)
    assert "score series" in terminal.getvalue()
    quiet = Terminal()
    without = run_nab(["--no-progress"], nab_corpus, tmp_path / "out2", monkeypatch, capsys, quiet)
    assert quiet.getvalue() == ""
    piped = io.StringIO()
    not_a_tty = run_nab([], nab_corpus, tmp_path / "out3", monkeypatch, capsys, piped)
    assert "score series" not in piped.getvalue()
    for out in (with_bar, without, not_a_tty):
        assert SCORED.match(out), out
    assert (tmp_path / "out1" / "realKnownCause" / "a.csv").read_text() == (
        tmp_path / "out2" / "realKnownCause" / "a.csv"
    ).read_text()


def test_produce_reads_the_same_records_with_a_bar(tmp_path, monkeypatch):
    import orjson

    path = tmp_path / "events.jsonl"
    events = as_json(run_with_retry("acme", "wf-1", "run-1"))
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events) + b"\nnot json\n")
    piped = read_records(path)
    monkeypatch.setattr(sys, "stderr", Terminal())
    drawn = read_records(path)
    assert "validate events.jsonl" in sys.stderr.getvalue()
    assert drawn == piped
    assert len(drawn[0]) == len(events) and len(drawn[1]) == 1
