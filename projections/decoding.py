"""Decoding slices off the owner's core: a pool of worker processes.

``encode_slice`` is the whole per-record cost of projection (JSON parse,
validation, row building, Arrow encoding). It runs in worker processes so
the process that owns ClickHouse spends its time inserting and serving
queries. With ``workers=0`` it runs in a thread of the owner instead.
"""

import asyncio
import concurrent.futures
import multiprocessing
from dataclasses import dataclass, field
from datetime import UTC, datetime

from projections.arrow import batch_to_ipc
from projections.slicing import LogRecord, project_slice
from projections.summaries import Summary
from schemas.deadletters import DeadLetter


@dataclass(frozen=True)
class EncodedSlice:
    tables: list[tuple[str, tuple[str, ...], bytes]]
    """(table, columns, Arrow IPC stream) for every table with rows."""
    new_dead_letters: list[DeadLetter]
    records: int
    summaries: list[Summary] = field(default_factory=list)
    """Live summaries, when the slice was encoded with ``summarize=True``."""


def encode_slice(raw: list[tuple[str, int, int, bytes | None]], summarize: bool = False) -> EncodedSlice:
    result = project_slice([LogRecord(*r) for r in raw], now=datetime.now(UTC), summarize_records=summarize)
    return EncodedSlice(batch_to_ipc(result.batch), result.new_dead_letters, result.records, result.summaries)


def _init_worker() -> None:
    from flowledger.procs import child_preexec, tune_gc_for_throughput

    child_preexec()  # die with the owner, even if it is SIGKILLed
    tune_gc_for_throughput()


class SliceEncoder:
    """Runs ``encode_slice`` in ``workers`` processes (or a thread when 0)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        if workers > 0:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
            )

    async def warm_up(self) -> None:
        """Start the workers and import their modules before the first real slice."""
        await self.encode([])

    async def encode(self, raw: list[tuple[str, int, int, bytes | None]], summarize: bool = False) -> EncodedSlice:
        if self._pool is None:
            return await asyncio.to_thread(encode_slice, raw, summarize)
        return await asyncio.get_running_loop().run_in_executor(self._pool, encode_slice, raw, summarize)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
