"""The corpus harness end to end on a tiny synthetic NAB-layout corpus."""

import json
import random
from datetime import datetime, timedelta

import pytest

from domain.nab import PROFILES
from flowledger.nab import labelled, read_corpus, read_windows, report, run_detector, score_all


def write_corpus(root):
    rng = random.Random(1)
    t0 = datetime(2014, 4, 1)
    stamps = [t0 + timedelta(minutes=5 * i) for i in range(1200)]
    values = [rng.gauss(10, 1) for _ in stamps]
    for i in range(800, 820):
        values[i] += 30  # a level shift inside the window
    folder = root / "data" / "synthetic"
    folder.mkdir(parents=True)
    with (folder / "shift.csv").open("w") as out:
        out.write("timestamp,value\n")
        out.writelines(f"{t:%Y-%m-%d %H:%M:%S},{v}\n" for t, v in zip(stamps, values, strict=True))
    window = [f"{stamps[760]:%Y-%m-%d %H:%M:%S}.000000", f"{stamps[840]:%Y-%m-%d %H:%M:%S}.000000"]
    (root / "windows.json").write_text(json.dumps({"synthetic/shift.csv": [window]}))


def test_detect_write_read_and_score(tmp_path):
    write_corpus(tmp_path)
    points, _ = run_detector(tmp_path / "data", tmp_path / "out")
    results = read_corpus(tmp_path / "out")
    assert points == 1200
    assert [s.name for s in results] == ["synthetic/shift.csv"]
    items = labelled(results, read_windows(tmp_path / "windows.json"))
    assert items[0].spans == [(760, 840)]
    summary = report(score_all(items, PROFILES))
    assert summary["standard"]["windows_detected"] == 1
    assert summary["standard"]["score"] > 80
    assert summary["standard_by_category"]["synthetic"]["windows"] == 1


@pytest.mark.parametrize(("files", "error"), [
    (None, "not a directory"),
    ({}, "no CSV files under it"),
    ({"cat/a.csv": "time,v\n1,2\n"}, "cat/a.csv: no 'timestamp' column"),
    ({"cat/a.csv": "timestamp,value\n2014-01-01 00:00:00,1.0\n2014-01-01 00:05:00,abc\n"}, "cat/a.csv:3: could not"),
])  # fmt: skip
def test_a_corpus_that_is_missing_or_malformed_is_an_error_naming_where(tmp_path, files, error):
    root = tmp_path / "data"
    if files is not None:
        root.mkdir()
        for name, text in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
    with pytest.raises(ValueError, match=error):
        run_detector(root, tmp_path / "out")
