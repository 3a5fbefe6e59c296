"""The corpus harness end to end on a tiny synthetic NAB-layout corpus."""

import json
import random
from datetime import datetime, timedelta

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
