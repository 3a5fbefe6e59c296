"""Holes in a partition's offsets: records a consumer skipped on the way.

A stream worker that keeps, with its state, the last offset it applied per
source partition knows exactly which record must come next. Offsets of
``workflow-events`` are contiguous (no transactions, no compaction), so a
record beyond the next one means records were skipped on the way: the
consumer dropped part of a fetch around a rebalance and went on past it, or
resumed from a committed offset ahead of the state. Applying it would lose
the skipped records for good; the worker reads them from the log first. The
state, not the group's committed offset, is the truth about what was applied.

    >>> holes(4, [5, 8, 9, 12])
    [(6, 8), (10, 12)]
    >>> splice([(8, "h"), (5, "e")], [(6, "f"), (7, "g")])
    [(5, 'e'), (6, 'f'), (7, 'g'), (8, 'h')]
"""

from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def holes(last_applied: int, offsets: Iterable[int]) -> list[tuple[int, int]]:
    """The ranges ``[start, end)`` missing before the records at ``offsets`` (in arrival order)."""
    expected, out = last_applied + 1, []
    for offset in offsets:
        if offset > expected:
            out.append((expected, offset))
        expected = max(expected, offset + 1)
    return out


def splice(items: list[tuple[int, T]], fetched: list[tuple[int, T]]) -> list[tuple[int, T]]:
    """The records with those read to fill the holes, in offset order (replays of one offset keep their order)."""
    return sorted(items + fetched, key=lambda item: item[0])
