import json
import math
import random

import pytest

from domain.faults import FAULTS, FaultWindow, fault_for, parse_schedule, revoked


@pytest.mark.parametrize(
    ("entry", "window"),
    [
        ({"service": "slack", "from_s": 0, "to_s": 10, "fault": "429", "rate": 1},
         FaultWindow("slack", 0, 10, "429", 1)),
        ({"service": "*", "from_s": 5.5, "to_s": 6, "fault": "timeout", "rate": 0},
         FaultWindow("*", 5.5, 6, "timeout", 0)),
        ({"service": "asana", "fault": 503}, FaultWindow("asana", 0, math.inf, "503", 1)),
        ({"service": "asana", "from_s": 3, "to_s": None, "fault": "404", "rate": 0.25},
         FaultWindow("asana", 3, math.inf, "404", 0.25)),
    ],
)  # fmt: skip
def test_valid_entries(entry, window):
    assert parse_schedule([entry]) == (window,)
    assert parse_schedule(json.dumps([entry])) == (window,)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"service": "slack"}, "JSON list"),
        ([["slack"]], "entry 0: must be an object"),
        ([{"fault": "429"}], "entry 0: service"),
        ([{"service": "", "fault": "429"}], "entry 0: service"),
        ([{"service": "s", "fault": "429"}, {"service": "s", "fault": "418"}], "entry 1: fault must be one of"),
        ([{"service": "s", "fault": "429", "rate": 1.5}], "entry 0: rate must be within"),
        ([{"service": "s", "fault": "429", "rate": -0.1}], "entry 0: rate must be within"),
        ([{"service": "s", "fault": "429", "rate": "half"}], "entry 0: rate must be a number"),
        ([{"service": "s", "fault": "429", "from_s": True}], "entry 0: from_s must be a number"),
        ([{"service": "s", "fault": "429", "from_s": -1}], "entry 0: from_s must be >= 0"),
        ([{"service": "s", "fault": "429", "from_s": 5, "to_s": 5}], "entry 0: to_s must be greater"),
        ([{"service": "s", "fault": "429", "to_s": "10"}], "entry 0: to_s must be a number"),
        ([{"service": "s", "fault": "429", "until": 3}], "entry 0: unknown field 'until'"),
        ("[{", "Expecting"),
    ],
)
def test_invalid_entries(source, message):
    with pytest.raises(ValueError, match=message):
        parse_schedule(source)


SCHEDULE = parse_schedule(
    [
        {"service": "slack", "from_s": 10, "to_s": 20, "fault": "429"},
        {"service": "*", "from_s": 15, "to_s": 30, "fault": "503"},
        {"service": "asana", "from_s": 0, "to_s": 100, "fault": "500", "rate": 0},
    ]
)


@pytest.mark.parametrize(
    ("service", "elapsed_s", "fault"),
    [
        ("slack", 9.99, None),
        ("slack", 10, "429"),
        ("slack", 16, "429"),  # the first matching window wins
        ("slack", 20, "503"),
        ("asana", 16, "503"),
        ("asana", 5, None),  # rate 0 never fires
        ("asana", 30, None),  # to_s is exclusive
    ],
)
@pytest.mark.parametrize("seed", [0, 1, 42])
def test_fault_for_is_deterministic_at_rates_0_and_1(service, elapsed_s, fault, seed):
    rng = random.Random(seed)
    assert fault_for(SCHEDULE, service, elapsed_s, rng) == fault
    assert rng.getstate() == random.Random(seed).getstate()  # no number drawn


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_partial_rates_follow_the_seeded_generator(rate):
    schedule = parse_schedule([{"service": "*", "fault": "500", "rate": rate}])
    draws = [fault_for(schedule, "x", 1, random.Random(7)) for _ in range(3)]
    assert len(set(draws)) == 1  # same seed, same answer
    rng = random.Random(3)
    share = sum(fault_for(schedule, "x", 1, rng) == "500" for _ in range(4000)) / 4000
    assert abs(share - rate) < 0.03


def test_every_fault_name_parses():
    assert [w.fault for w in parse_schedule([{"service": "*", "fault": f} for f in FAULTS])] == list(FAULTS)


CREDENTIAL_SCHEDULE = parse_schedule(
    [
        {"service": "hubspot", "from_s": 10, "to_s": 20, "fault": "token_expired"},
        {"service": "hubspot", "from_s": 20, "to_s": 30, "fault": "token_expired"},
        {"service": "*", "from_s": 0, "to_s": 40, "fault": "503", "rate": 0},
        {"service": "slack", "from_s": 5, "to_s": 15, "fault": "401", "rate": 0.5},
    ]
)


@pytest.mark.parametrize(
    ("elapsed_s", "issued_s", "fault"),
    [
        (5, -100.0, None),  # before the window: any token passes
        (12, -100.0, "token_expired"),  # issued before the schedule took effect
        (12, 9.9, "token_expired"),
        (12, 10.0, None),  # issued as the window began: fresh
        (12, None, "token_expired"),  # no token, or not one the sandbox issued: nothing to refresh
        (25, 12.0, "token_expired"),  # refreshed in the first window, expired again by the second
        (25, 21.0, None),
        (30, 1.0, None),  # the window is over
    ],
)
def test_token_expired_windows_refuse_tokens_issued_before_them(elapsed_s, issued_s, fault):
    rng = random.Random(0)
    assert fault_for(CREDENTIAL_SCHEDULE, "hubspot", elapsed_s, rng, token_issued_s=issued_s) == fault
    assert rng.getstate() == random.Random(0).getstate()


@pytest.mark.parametrize(
    ("service", "elapsed_s", "expected"),
    [("slack", 4.9, False), ("slack", 5, True), ("slack", 14.9, True), ("slack", 15, False), ("hubspot", 12, False)],
)
def test_a_401_window_revokes_the_services_refresh_tokens_whatever_its_rate(service, elapsed_s, expected):
    assert revoked(CREDENTIAL_SCHEDULE, service, elapsed_s) is expected


def test_an_unknown_fault_names_the_choices():
    with pytest.raises(ValueError, match="fault must be one of 429, 500, 503, timeout, 401, token_expired, 400, 404"):
        parse_schedule([{"service": "s", "fault": "expired"}])
