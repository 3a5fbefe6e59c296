"""Step output reuse: call keys and digests, the LRU/TTL store, single flight over it."""

import asyncio

import pytest

from domain.step_cache import OutputCache, cache_key, params_digest
from schemas.common import StepError
from streams.step_cache import Outcome, StepCache

CALL = ("acme", "crm", "lookup", {"email": "ada@example.com", "fields": ["name", "plan"]}, "cred-crm")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_key_and_digest_ignore_key_order_and_never_contain_the_params():
    tenant, service, action, params, credential = CALL
    reordered = {"fields": ["name", "plan"], "email": "ada@example.com"}
    assert cache_key(*CALL) == cache_key(tenant, service, action, reordered, credential)
    digest = params_digest(tenant, service, action, params)
    assert digest == params_digest(tenant, service, action, reordered)
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert "ada" not in cache_key(*CALL) + digest


@pytest.mark.parametrize(
    ("change", "value"),
    [(0, "other-tenant"), (1, "hubspot"), (2, "search"), (3, {"email": "bob@example.com"}), (4, "cred-other"),
     (4, None), (3, {"email": "ada@example.com", "fields": ["plan", "name"]})],
)  # fmt: skip
def test_any_difference_in_the_call_is_another_key(change, value):
    other = list(CALL)
    other[change] = value
    assert cache_key(*other) != cache_key(*CALL)


def test_the_digest_leaves_the_credential_out_and_the_tenant_in():
    tenant, service, action, params, _ = CALL
    assert params_digest(tenant, service, action, params) != params_digest("other", service, action, params)
    assert cache_key(*CALL[:4], "cred-a") != cache_key(*CALL[:4], "cred-b")


@pytest.mark.parametrize(
    ("max_entries", "script"),
    [
        pytest.param(10, "get a -", id="miss"),
        pytest.param(10, "put a 60; get a a", id="hit"),
        pytest.param(10, "put a 60; wait 59.9; get a a", id="hit-before-expiry"),
        pytest.param(10, "put a 60; wait 60; get a -", id="expired"),
        pytest.param(10, "put a 1; wait 5; put a 10; get a a", id="stored-again"),
        pytest.param(2, "put a 60; put b 60; put c 60; get a -; get b b; get c c", id="lru-evicts-the-oldest"),
        pytest.param(2, "put a 60; put b 60; get a a; put c 60; get b -; get a a", id="a-read-keeps-an-entry"),
        pytest.param(0, "put a 60; get a -", id="zero-entries-keeps-nothing"),
    ],
)
def test_output_cache(max_entries, script):
    """``put K TTL`` stores ``{"v": K}``; ``wait S`` moves the clock; ``get K V`` expects ``{"v": V}`` or ``-``."""
    clock = Clock()
    cache = OutputCache(max_entries, clock)
    for op, *args in (line.split() for line in script.split(";")):
        if op == "put":
            cache.put(args[0], {"v": args[0]}, ttl_s=float(args[1]))
        elif op == "wait":
            clock.now += float(args[0])
        else:
            assert cache.get(args[0]) == (None if args[1] == "-" else {"v": args[1]}), (op, args)
    assert len(cache) <= max_entries


class Service:
    """A call that counts itself; answers each call with the next scripted result."""

    def __init__(self, *results, delay_s=0.0):
        self.results = list(results)
        self.delay_s = delay_s
        self.calls = 0

    async def __call__(self) -> Outcome:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        result = self.results.pop(0) if self.results else {"n": self.calls}
        return Outcome(result, duration_ms=12.5)


BUSY = StepError(type="HTTPError", message="503", status_code=503)


async def test_a_hit_within_the_ttl_reuses_the_output_without_a_call():
    clock, service = Clock(), Service()
    cache = StepCache(10, clock)
    first = await cache.fetch("k", 60, service)
    clock.now += 30
    second = await cache.fetch("k", 60, service)
    assert (first.result, first.cached, first.duration_ms) == ({"n": 1}, False, 12.5)
    assert (second.result, second.cached, second.duration_ms) == ({"n": 1}, True, 0.0)
    clock.now += 30
    assert (await cache.fetch("k", 60, service)).result == {"n": 2}  # expired: called again
    assert service.calls == 2


async def test_identical_calls_in_flight_are_made_once():
    service = Service(delay_s=0.02)
    cache = StepCache(10)
    outcomes = await asyncio.gather(*(cache.fetch("k", 60, service) for _ in range(5)))
    assert service.calls == 1
    assert [o.result for o in outcomes] == [{"n": 1}] * 5
    assert sorted(o.cached for o in outcomes) == [False, True, True, True, True]
    assert cache.flights == {}


async def test_failures_are_neither_stored_nor_shared():
    service = Service(BUSY, delay_s=0.02)
    cache = StepCache(10)
    first, second = await asyncio.gather(cache.fetch("k", 60, service), cache.fetch("k", 60, service))
    # The first failed; the one waiting for it made its own call, which succeeded and is stored.
    assert (first.result, second.result, second.cached) == (BUSY, {"n": 2}, False)
    third = await cache.fetch("k", 60, service)
    assert (third.result, third.cached, service.calls) == ({"n": 2}, True, 2)


async def test_a_cancelled_call_lets_the_waiting_one_call_itself():
    service = Service(delay_s=0.05)
    cache = StepCache(10)
    leader = asyncio.create_task(cache.fetch("k", 60, service))
    await asyncio.sleep(0.01)
    waiter = asyncio.create_task(cache.fetch("k", 60, service))
    await asyncio.sleep(0.01)
    leader.cancel()
    outcome = await waiter
    assert (outcome.result, outcome.cached, service.calls) == ({"n": 2}, False, 2)
    assert leader.cancelled() and cache.flights == {}


async def test_different_keys_do_not_wait_for_each_other():
    service = Service(delay_s=0.02)
    cache = StepCache(10)
    a, b = await asyncio.gather(cache.fetch("a", 60, service), cache.fetch("b", 60, service))
    assert service.calls == 2 and not a.cached and not b.cached
