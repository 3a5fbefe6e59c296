"""Pure helpers of the alert reads."""

import pytest

from projections.alert_queries import glob_to_like


@pytest.mark.parametrize(
    ("glob", "like"),
    [
        ("billing", "billing"),
        ("billing-*", "billing-%"),
        ("wf-?", "wf-_"),
        ("a_b", "a\\_b"),  # LIKE's wildcards are literal in a glob
        ("100%", "100\\%"),
        ("back\\slash", "back\\\\slash"),
        ("*", "%"),
    ],
)
def test_glob_to_like(glob, like):
    assert glob_to_like(glob) == like
