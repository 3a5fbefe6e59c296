"""Faust agents in their test context: no broker, real agent code, malformed bytes included."""

from schemas import validate_item
from schemas.registry import encode
from tests.factories import as_json, run_with_retry


def test_metric_intake_counts_valid_records_skips_garbage_and_observes_results():
    from domain.windows import PartitionWindows
    from streams import ingest_stats, metrics

    before_total, before_skipped = ingest_stats.counts.total, ingest_stats.skipped
    records = [validate_item(i) for i in as_json(run_with_retry("acme", "wf", "r1"))]
    state = PartitionWindows(partition=0)
    items = [(0, encode(records)), (1, b"\xff\xfe garbage"), (2, encode(records[:1])), (2, encode(records))]
    passed = metrics.absorb(state, items, now=100.0)
    assert ingest_stats.counts.total - before_total == 10 + 1  # offset 2 again: a replay, skipped
    assert len(passed) == 10 + 1 + 10  # what the other consumers of the batch get: the replay too, not the garbage
    assert ingest_stats.skipped - before_skipped == 1
    assert ingest_stats.counts.by_tenant()["acme"] >= 11
    step_results = sum(p.count for (series, _), p in state.open.items() if series[1] == "step")
    assert step_results == 4  # three successes and one failed attempt, once each
    assert state.last_offset == 2


def test_run_states_are_written_behind_one_record_per_run_per_flush():
    from streams.executor import TableStates

    class CountingTable(dict):
        writes = 0

        def __setitem__(self, key, value):
            CountingTable.writes += 1
            super().__setitem__(key, value)

    table = CountingTable({b"old": b"0"})
    states = TableStates(table)
    for version in (b"1", b"2", b"3"):
        states["run-1"] = version
    states["run-2"] = b"a"
    assert states["run-1"] == b"3" and states["old"] == b"0"  # reads see pending writes
    assert sorted(states) == ["old", "run-1", "run-2"]
    assert CountingTable.writes == 0
    states.flush()
    assert CountingTable.writes == 2 and table[b"run-1"] == b"3"
    states.flush()
    assert CountingTable.writes == 2
    encoded = []
    for version in (b"4", b"5"):
        states.set_later("run-1", lambda v=version: encoded.append(v) or v)
    assert states["run-1"] == b"5" and encoded == [b"5"]  # a read encodes the latest value
    states.flush()
    assert table[b"run-1"] == b"5" and encoded == [b"5"]  # once; the overwritten value never


def test_closed_partials_are_packed_in_bounded_messages_with_the_watermark_last():
    import orjson

    from streams.metrics import pack

    closed = [[["t", "step", f"wf/s{i}", "svc"], 60.0 * i, {"n": i, "sk": {"1": i}}] for i in range(500)]
    messages = pack(3, closed, 1234.5, max_bytes=4096)
    decoded = [orjson.loads(m) for m in messages]
    assert len(messages) > 1 and all(len(m) <= 4096 + 200 for m in messages)
    assert [item for d in decoded for item in d["partials"]] == closed
    assert [d["wm"] for d in decoded] == [None] * (len(decoded) - 1) + [1234.5]
    assert {d["p"] for d in decoded} == {3}
    assert [orjson.loads(m) for m in pack(0, [], None)] == [{"p": 0, "partials": [], "wm": None}]


def test_metric_intake_applies_past_records_that_are_gone_and_counts_them_lost():
    from domain.windows import PartitionWindows
    from streams import metrics

    records = [validate_item(i) for i in as_json(run_with_retry("acme", "wf", "r2"))]
    state = PartitionWindows(partition=9)
    lost = metrics.stats.lost
    items = [(0, encode(records[:1])), (3, encode(records[1:]))]  # 1 and 2 expired before they were read back
    assert [r.event_id for r in metrics.absorb(state, items, now=100.0)] == [r.event_id for r in records]
    assert (state.last_offset, metrics.stats.lost - lost) == (3, 2)


def test_stage1_sends_a_watermark_only_when_it_lets_the_next_stage_close_a_window(monkeypatch):
    import asyncio

    import orjson

    from domain.windows import Observation, PartitionWindows, closable_through
    from streams import metrics

    class Topic:
        def __init__(self) -> None:
            self.messages: list[dict] = []

        async def send(self, *, key, value, partition):
            self.messages.append(orjson.loads(value))
            done = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

    partials, panes, table = Topic(), Topic(), {}
    monkeypatch.setattr(metrics, "partials_topic", partials)
    monkeypatch.setattr(metrics, "panes_topic", panes)
    monkeypatch.setattr(metrics, "partition_windows", table)
    stage1 = metrics.Stage1()
    pane = metrics.PANES
    windows, pane_state = PartitionWindows(2), PartitionWindows(2)
    series = ("acme", "workflow", "wf", "")
    base = 1_800_000_000.0  # a window start for both configs
    size, grace = pane.size_s, pane.grace_s
    # (event time of the next record, whether a pane message goes out)
    steps = [
        (base + grace + 0.01, True),  # the first watermark this process sends
        (base + grace + 0.05, False),  # lets no further pane close downstream
        (base + size + grace - 0.05, False),  # nor this, though it opens the next pane
        (base + size + grace + 0.01, True),  # the pane at base closes
        (base + size + grace + 0.05, False),
    ]
    for offset, (t, expected) in enumerate(steps):
        observed = [Observation(series, t, True, 10.0, 0.0)]
        windows.observe(offset, observed, now=t, config=metrics.WINDOW)
        pane_state.observe(offset, observed, now=t, config=pane)
        before = len(panes.messages)
        asyncio.run(stage1.publish([windows], [pane_state]))
        assert (len(panes.messages) > before) == expected, (offset, t)
        assert orjson.loads(table[b"2:panes"])["off"] == offset  # the state is written every batch all the same
    assert [len(m["partials"]) for m in panes.messages] == [0, 1]
    assert panes.messages[-1]["partials"][0][1] == base and panes.messages[-1]["wm"] == steps[3][0]
    assert len(partials.messages) == 1  # the minute's window is still open: only the first watermark went
    # a restarted process knows nothing it sent, so its first batch sends its watermark again
    stage1.forget()
    stage1.cache[b"2:panes"] = pane_state
    asyncio.run(stage1.publish([], [pane_state]))
    assert panes.messages[-1]["wm"] == steps[-1][0] and len(panes.messages) == 3
    assert closable_through(steps[-1][0], pane) == base
