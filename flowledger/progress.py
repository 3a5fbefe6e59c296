"""Progress bars for the long commands (replay, produce, benchmarks, NAB), on stderr.

A bar is drawn only when stderr is a terminal and ``--no-progress`` was not
given: CI logs stay free of carriage returns, and what a command prints on
stdout (the benchmarks' final JSON line) is the same with or without bars.
A bar is closed before a command says anything else on stderr.
"""

import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")
_wanted = True


def configure(*, enabled: bool) -> None:
    """``flowledger --no-progress`` turns every bar off."""
    global _wanted
    _wanted = enabled


def shown() -> bool:
    return _wanted and sys.stderr.isatty()


def bar(
    desc: str, total: float | None = None, unit: str = "it", *, iterable: Iterable[T] | None = None, when: bool = True
) -> "tqdm[T]":
    """A bar on stderr, or a silent stand-in (``update`` and ``close`` still work) when bars are off or not ``when``.

    With ``iterable``, iterating the bar iterates it.
    """
    return tqdm(
        iterable, total=total, desc=desc, unit=unit, file=sys.stderr, disable=not (when and shown()), leave=False,
        dynamic_ncols=True, mininterval=0.2, unit_scale=unit == "B" or (total or 0) >= 10_000,
    )  # fmt: skip
