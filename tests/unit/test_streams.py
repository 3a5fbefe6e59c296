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
