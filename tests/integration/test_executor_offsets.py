"""A command the executor's consumer went past is read back from the log, and its run runs.

The group's committed offset is moved past a ``StartRun`` while the worker is
down, as when Faust commits or skips a record its state never applied; the
restarted worker resumes after it, sees the hole against its own ledger of
applied offsets, and reads the command from the log.
"""

import asyncio

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

from flowledger.broker import EmbeddedBroker, ensure_topics
from flowledger.settings import WORKER_APP_IDS
from schemas import topics
from tests.integration.conftest import ServeProcess, WorkerProcess
from tests.integration.test_execution import define, start, step, wait_run

pytestmark = pytest.mark.integration


async def start_runs(bootstrap: str) -> dict[str, tuple[int, int]]:
    """Run id -> (partition, offset) of its StartRun on workflow-commands."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        count = topics.PARTITIONS[topics.WORKFLOW_COMMANDS]
        parts = [TopicPartition(topics.WORKFLOW_COMMANDS, p) for p in range(count)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        found: dict[str, tuple[int, int]] = {}
        while batch := await consumer.getmany(timeout_ms=1000):
            for tp, messages in batch.items():
                for message in messages:
                    items = orjson.loads(message.value)
                    for item in items if isinstance(items, list) else [items]:
                        if item.get("type") == "StartRun":
                            found[item["run_id"]] = (tp.partition, message.offset)
        return found
    finally:
        await consumer.stop()


class AsFaust(RoundRobinPartitionAssignor):
    """Round robin under Faust's protocol name, so a plain consumer may join a Faust app's group."""

    name = "faust"


async def commit_past(bootstrap: str, partition: int, offset: int) -> None:
    """Commit the executor group's offset to just after ``offset``, as a member that went past it would.

    The embedded broker takes commits only from members: this consumer joins
    the group while the worker is down (once the worker's session has
    expired, it is the only member and gets every partition), commits, leaves.
    """
    tp = TopicPartition(topics.WORKFLOW_COMMANDS, partition)
    consumer = AIOKafkaConsumer(topics.WORKFLOW_COMMANDS, bootstrap_servers=bootstrap, group_id=WORKER_APP_IDS["all"],
                                enable_auto_commit=False, partition_assignment_strategy=(AsFaust,))  # fmt: skip
    await consumer.start()
    try:
        for _ in range(240):
            await consumer.getmany(timeout_ms=500)
            if tp in consumer.assignment():
                break
        await consumer.commit({tp: offset + 1})
        assert await consumer.committed(tp) == offset + 1
    finally:
        await consumer.stop()


async def test_a_start_run_committed_past_is_read_back_and_runs(tmp_path, sandbox, smtp):
    with EmbeddedBroker() as broker:
        await ensure_topics(broker.bootstrap)
        serve = ServeProcess(broker.bootstrap, tmp_path / "api", group="offsets-projector").start()
        worker = WorkerProcess(broker.bootstrap, tmp_path / "worker", sandbox, smtp.port)
        try:
            async with httpx.AsyncClient(base_url=serve.url, timeout=30) as http:
                worker.start()
                workflow_id = await define(http, [step("only", "asana")])
                partitions = topics.PARTITIONS[topics.WORKFLOW_COMMANDS]
                runs: list[str] = []
                while len({p for p, _ in (await start_runs(broker.bootstrap)).values()}) < partitions:
                    runs.append(await start(http, workflow_id))  # until every partition has applied a command
                for run_id in runs:
                    await wait_run(http, run_id, "succeeded", timeout_s=150)
                await asyncio.sleep(1)  # the ledger is written with the run states, every 50 ms
                worker.stop()

                skipped = await start(http, workflow_id)
                partition, offset = (await start_runs(broker.bootstrap))[skipped]
                await commit_past(broker.bootstrap, partition, offset)
                worker.start()

                await wait_run(http, skipped, "succeeded", timeout_s=150)
                log = worker.log.read_text()
                assert f"workflow-commands partition {partition}: records {offset}-{offset} skipped" in log

                executions = {k: n for k, n in sandbox.stats()["executions_by_key"].items() if f":{skipped}:" in k}
                assert list(executions.values()) == [1]  # read back once, run once
        finally:
            worker.stop()
            serve.stop()
