"""Reusing a step's output: call digests and a bounded store of recent outputs (pure; the clock is passed in).

A step marked ``cache: true`` is an idempotent read. Two calls are the same
call when tenant, service, action, rendered parameters (as canonical JSON:
keys sorted, no spaces) and credential are: ``cache_key`` digests exactly
these, so a different credential, which may see different data, never shares
an output. ``params_digest`` is the short digest that step results carry so
an analysis can count repeated calls without ever seeing the parameters
(which may hold personal data); the tenant is part of what it digests, so
equal calls of two tenants do not share a digest.

``OutputCache`` keeps successful outputs for their time to live, at most
``max_entries`` of them, dropping the least recently used first.

>>> now = [0.0]
>>> cache = OutputCache(max_entries=2, clock=lambda: now[0])
>>> key = cache_key("acme", "crm", "lookup", {"email": "a@example.com"}, None)
>>> cache.put(key, {"id": 7}, ttl_s=60)
>>> cache.get(key)
{'id': 7}
>>> now[0] = 60.0
>>> cache.get(key) is None
True
>>> params_digest("acme", "crm", "lookup", {"b": 1, "a": 2}) == params_digest("acme", "crm", "lookup", {"a": 2, "b": 1})
True
"""

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import orjson


def canonical_json(value: Any) -> bytes:
    """One spelling per JSON value: keys sorted at every level, no whitespace."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)


def params_digest(tenant_id: str, service: str, action: str, params: Mapping[str, Any]) -> str:
    """16 hex characters naming the call ``service.action(params)`` within the tenant."""
    return hashlib.blake2b(canonical_json([tenant_id, service, action, params]), digest_size=8).hexdigest()


def cache_key(tenant_id: str, service: str, action: str, params: Mapping[str, Any], credential_id: str | None) -> str:
    """The identity of a call whose output may be reused."""
    return hashlib.blake2b(canonical_json([tenant_id, service, action, params, credential_id])).hexdigest()


class OutputCache:
    """Successful outputs by call key, each until its time to live is over, least recently used dropped first.

    ``clock`` gives seconds (monotonic); ``max_entries`` 0 keeps nothing.
    """

    def __init__(self, max_entries: int, clock: Callable[[], float]) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self.entries: OrderedDict[str, tuple[float, Mapping[str, Any]]] = OrderedDict()
        """Key -> (expires at, output), least recently used first."""

    def get(self, key: str) -> Mapping[str, Any] | None:
        """The stored output while it is fresh; an expired one is dropped."""
        entry = self.entries.get(key)
        if entry is None:
            return None
        expires_at, output = entry
        if self.clock() >= expires_at:
            del self.entries[key]
            return None
        self.entries.move_to_end(key)
        return output

    def put(self, key: str, output: Mapping[str, Any], *, ttl_s: float) -> None:
        self.entries[key] = (self.clock() + ttl_s, output)
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self.entries)
