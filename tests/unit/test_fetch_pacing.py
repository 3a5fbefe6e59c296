"""The wait of a worker's next fetch: the floor while records come, doubling to the ceiling while none do."""

import pytest

from streams.fetch_pacing import FetchPacing


@pytest.mark.parametrize(
    ("floor_ms", "ceiling_ms", "found", "waits"),
    [
        (10, 100, [], []),
        (10, 100, [True, True], [10, 10]),
        (10, 100, [False] * 6, [20, 40, 80, 100, 100, 100]),
        (10, 100, [False, False, True, False], [20, 40, 10, 20]),
        (10, 10, [False, False, True], [10, 10, 10]),
        (30, 100, [False, False, False, True], [60, 100, 100, 30]),
    ],
)
def test_waits_after_each_fetch(floor_ms, ceiling_ms, found, waits):
    pacing = FetchPacing(floor_ms, ceiling_ms)
    assert pacing.wait_ms == floor_ms
    assert [pacing.after(f) for f in found] == waits


@pytest.mark.parametrize(("floor_ms", "ceiling_ms"), [(0, 100), (-5, 100), (100, 10)])
def test_a_floor_that_is_not_positive_or_is_above_the_ceiling_is_refused(floor_ms, ceiling_ms):
    with pytest.raises(ValueError, match="0 < floor_ms <= ceiling_ms"):
        FetchPacing(floor_ms, ceiling_ms)
