"""Faust agents in their test context: no broker, real agent code, malformed bytes included."""

import asyncio

from schemas import validate_item
from schemas.registry import encode
from tests.factories import as_json, run_with_retry


async def test_count_agent_counts_valid_records_and_skips_garbage():
    from streams import ingest_stats

    before_total, before_skipped = ingest_stats.counts.total, ingest_stats.skipped
    records = [validate_item(i) for i in as_json(run_with_retry("acme", "wf", "r1"))]
    async with ingest_stats.count_ingested_records.test_context() as agent:
        await agent.put(encode(records))
        await agent.put(b"\xff\xfe garbage")
        await agent.put(encode(records[:1]))
        for _ in range(50):
            if ingest_stats.counts.total - before_total == 11:
                break
            await asyncio.sleep(0.1)
    assert ingest_stats.counts.total - before_total == 11
    assert ingest_stats.skipped - before_skipped == 1
    assert ingest_stats.counts.by_tenant()["acme"] >= 11


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
