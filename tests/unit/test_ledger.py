"""OffsetLedger: which records it asks the log for, and where it puts them (the log read is faked here)."""

import pytest

LOG = {("panes", 0): {n: f"p{n}".encode() for n in range(20)}, ("rules", 2): {n: f"r{n}".encode() for n in range(20)}}


@pytest.fixture
def ledger(monkeypatch):
    import streams.app  # noqa: F401 - first: it imports the agents in their order
    from streams import ledger as module

    asked = []

    async def read_missing(topic, partition, missing, **_kwargs):
        asked.append((topic, partition, missing))
        return [(n, LOG[(topic, partition)][n]) for a, b in missing for n in range(a, b)]

    monkeypatch.setattr(module, "read_missing", read_missing)
    table: dict[bytes, bytes] = {}
    made = module.OffsetLedger(table)
    made.asked, made.table_ = asked, table
    return made


def item(topic, partition, n):
    return (topic, partition, n, LOG[(topic, partition)][n])


async def test_a_fresh_agent_reads_from_offset_zero_and_puts_each_record_before_the_first_beyond_it(ledger):
    items = [item("rules", 2, 3), item("panes", 0, 0), item("panes", 0, 2), item("rules", 2, 4)]
    filled = await ledger.fill(items, fresh=lambda: True)
    assert ledger.asked == [("rules", 2, [(0, 3)]), ("panes", 0, [(1, 2)])]
    assert [(t, n) for t, _p, n, _v in filled] == [
        ("rules", 0), ("rules", 1), ("rules", 2), ("rules", 3), ("panes", 0), ("panes", 1), ("panes", 2), ("rules", 4),
    ]  # fmt: skip


async def test_the_ledger_survives_a_restart_through_its_table(ledger):
    from streams.ledger import OffsetLedger

    first = [item("panes", 0, n) for n in range(5)]
    assert await ledger.fill(first, fresh=lambda: True) == first
    ledger.applied(first)
    ledger.save()
    assert ledger.table_ == {b"\x1doffset\x1fpanes\x1f0": b"4"}
    again = OffsetLedger(ledger.table_)  # a restarted worker
    resumed = [item("panes", 0, 3), item("panes", 0, 4), item("panes", 0, 7)]  # replays, then a hole at 5-6
    filled = await again.fill(resumed, fresh=lambda: False)
    assert [n for _t, _p, n, _v in filled] == [3, 4, 5, 6, 7]


async def test_state_without_a_ledger_trusts_where_the_consumer_resumed(ledger):
    items = [item("panes", 0, 9), item("panes", 0, 10)]
    assert await ledger.fill(items, fresh=lambda: False) == items  # written before offsets were kept
    assert ledger.asked == []


def test_ledger_keys_route_to_their_partition():
    from streams.ledger import ledger_key, ledger_partition

    assert [ledger_partition(ledger_key("workflow-commands", p)) for p in range(4)] == [0, 1, 2, 3]
