"""Holes in a partition's offsets, given the last offset a worker's state applied."""

import pytest

from domain.holes import holes, splice

CASES = [
    # last applied, offsets in arrival order, holes
    (4, [5, 6, 7], []),
    (4, [3, 4, 5], []),  # replays after a restart, then the next one
    (4, [6, 7], [(5, 6)]),  # one record skipped
    (4, [5, 8, 9, 12], [(6, 8), (10, 12)]),
    (4, [9, 6, 7], [(5, 9)]),  # arriving late does not open another hole
    (-1, [0, 1], []),  # a fresh partition starts at 0
    (-1, [40], [(0, 40)]),
    (10, [], []),
]


@pytest.mark.parametrize(("last", "offsets", "want"), CASES)
def test_holes(last, offsets, want):
    assert holes(last, offsets) == want


def test_splice_orders_by_offset_and_keeps_replays_in_arrival_order():
    items = [(8, "h"), (5, "e"), (5, "e-again")]
    assert splice(items, [(6, "f"), (7, "g")]) == [(5, "e"), (5, "e-again"), (6, "f"), (7, "g"), (8, "h")]
