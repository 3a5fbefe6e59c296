"""The service catalog: every service a workflow step or trigger can name.

The catalog is the project's own file, ``domain/data/services.jsonl``: one
JSON object per line and per service, sorted by id::

    {"id": "google-sheets", "name": "Google Sheets", "category": "spreadsheets",
     "auth": "oauth2", "aliases": ["gsheets", ...], "misspellings": [...],
     "keywords": ["spreadsheet", "row", ...], "latency_ms": 700, "cost_usd": 0.0,
     "triggers": [{"name": "new_row", "description": "...", "params": [...]}],
     "actions": [...], "common_word": false}

* ``id`` is a lowercase kebab-case slug (the ``ServiceId`` of events).
  Where several public recipe collections name one service differently
  (``youtube`` and ``you-tube``, ``onedrive`` and ``microsoft-one-drive``),
  one id serves and the other names are aliases.
* ``aliases`` and ``misspellings`` are other names people use; every one
  resolves to exactly one service. ``keywords`` are words that imply the
  service when no service is named (``tweet`` -> ``twitter``).
* ``common_word`` marks a service whose name is also an everyday word
  (``box``, ``square``, ``line``): detection wants more than a lowercase
  mention in prose before it picks one.
* ``latency_ms`` and ``cost_usd`` are defaults for one call, for planning and
  the sandbox; real figures come from step metrics.

>>> catalog = load_catalog()
>>> catalog.resolve("G Cal").id, catalog.resolve("skydrive").id, catalog.resolve("you-tube").id
('google-calendar', 'onedrive', 'youtube')
>>> [s.id for s in catalog.search("sheets", category="spreadsheets")][:1]
['google-sheets']
"""

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

CATALOG_FILE = Path(__file__).resolve().parent / "data" / "services.jsonl"

CATEGORIES = (
    "email", "marketing", "chat", "sms", "notifications", "project-management", "crm", "support", "storage",
    "documents", "notes", "spreadsheets", "database", "calendar", "forms", "social", "media", "news", "ecommerce",
    "payments", "accounting", "time-tracking", "developer", "monitoring", "analytics", "ai", "iot", "mobile",
    "fitness", "lifestyle", "location", "utility",
)  # fmt: skip
"""The fixed category vocabulary."""

AuthType = Literal["oauth2", "api_key", "basic", "none"]
AUTH_TYPES: tuple[AuthType, ...] = ("oauth2", "api_key", "basic", "none")
SERVICE_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_NON_WORD = re.compile(r"[^a-z0-9+]+")


class CatalogError(ValueError):
    """The catalog file is malformed: the message names the line and the problem."""


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    required: bool


@dataclass(frozen=True)
class Function:
    """A trigger or an action of a service."""

    name: str
    description: str
    params: tuple[Param, ...]


@dataclass(frozen=True)
class Service:
    id: str
    name: str
    category: str
    auth: AuthType
    aliases: tuple[str, ...]
    misspellings: tuple[str, ...]
    keywords: tuple[str, ...]
    latency_ms: float
    cost_usd: float
    triggers: tuple[Function, ...]
    actions: tuple[Function, ...]
    common_word: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        """Every name that denotes this service: id, display name, aliases, misspellings."""
        return (self.id, self.name, *self.aliases, *self.misspellings)

    def to_json(self) -> dict[str, Any]:
        def fn(f: Function) -> dict[str, Any]:
            return {"name": f.name, "description": f.description, "params": [p.__dict__ for p in f.params]}

        return {
            "id": self.id, "name": self.name, "category": self.category, "auth": self.auth,
            "aliases": list(self.aliases), "misspellings": list(self.misspellings), "keywords": list(self.keywords),
            "latency_ms": self.latency_ms, "cost_usd": self.cost_usd, "common_word": self.common_word,
            "triggers": [fn(f) for f in self.triggers], "actions": [fn(f) for f in self.actions],
        }  # fmt: skip


def name_key(text: str) -> str:
    """The form names are compared in: lowercase words of letters and digits (``Box.net`` -> ``box net``)."""
    return " ".join(_NON_WORD.split(text.lower())).strip()


def slugify(name: str) -> str:
    """A service id from an n8n node name, split at every capital (``googleSheets`` -> ``google-sheets``,
    ``readPDF`` -> ``read-p-d-f``), or from a display name (``Google Sheets`` -> ``google-sheets``)."""
    spaced = re.sub(r"(?<!^)(?=[A-Z])", "-", name)
    return "-".join(name_key(spaced).split())


class Catalog:
    """Services by id, with lookup by any of their names."""

    def __init__(self, services: Iterable[Service]) -> None:
        self.services: dict[str, Service] = {}
        self._by_name: dict[str, str] = {}
        for service in services:
            if service.id in self.services:
                raise CatalogError(f"duplicate service id {service.id!r}")
            self.services[service.id] = service
        for service in self.services.values():
            for name in service.names:
                key = name_key(name)
                owner = self._by_name.setdefault(key, service.id)
                if owner != service.id:
                    raise CatalogError(f"name {name!r} of {service.id!r} already names {owner!r}")

    def __len__(self) -> int:
        return len(self.services)

    def __iter__(self) -> Iterator[Service]:
        return iter(self.services.values())

    def __contains__(self, service_id: object) -> bool:
        return service_id in self.services

    def get(self, service_id: str) -> Service | None:
        return self.services.get(service_id)

    def resolve(self, name: str) -> Service | None:
        """The service an id, display name, alias or known misspelling denotes (case and punctuation ignored)."""
        found = self.services.get(name) or self.services.get(self._by_name.get(name_key(name), ""))
        return found

    def canonical(self, name: str) -> str:
        """The catalog id for ``name``, or ``name`` itself when the catalog does not know it."""
        found = self.resolve(name)
        return found.id if found else name

    def name_index(self) -> Mapping[str, str]:
        """Every name key -> service id."""
        return self._by_name

    def search(self, query: str = "", *, category: str | None = None) -> list[Service]:
        """Services of ``category`` whose names, keywords or functions contain ``query``, best matches first."""
        key = name_key(query)
        ranked: list[tuple[int, str, Service]] = []
        for service in self.services.values():
            if category and service.category != category:
                continue
            rank = _match_rank(service, key) if key else 0
            if rank is not None:
                ranked.append((rank, service.id, service))
        return [service for _, _, service in sorted(ranked, key=lambda r: (r[0], r[1]))]


def _match_rank(service: Service, key: str) -> int | None:
    names = [name_key(n) for n in service.names]
    if key in names:
        return 0
    if any(n.startswith(key) for n in names):
        return 1
    if any(key in n for n in names):
        return 2
    extra = [name_key(k) for k in service.keywords]
    extra += [name_key(f.name) for f in (*service.triggers, *service.actions)]
    extra += [name_key(f.description) for f in (*service.triggers, *service.actions)]
    if any(key in text for text in extra):
        return 3
    return None


def _function(raw: Mapping[str, Any]) -> Function:
    params = tuple(
        Param(str(p["name"]), str(p.get("type", "string")), bool(p.get("required", False)))
        for p in raw.get("params", ())
    )
    return Function(str(raw["name"]), str(raw.get("description", "")), params)


def parse_service(raw: Mapping[str, Any]) -> Service:
    """One catalog entry; ``CatalogError`` says which field is wrong."""
    service_id = raw.get("id")
    if not isinstance(service_id, str) or not SERVICE_ID.match(service_id):
        raise CatalogError(f"id {service_id!r} is not a lowercase kebab-case slug")
    if raw.get("category") not in CATEGORIES:
        raise CatalogError(f"{service_id}: category {raw.get('category')!r} is not one of {', '.join(CATEGORIES)}")
    auth = raw.get("auth")
    if auth not in AUTH_TYPES:
        raise CatalogError(f"{service_id}: auth {auth!r} is not one of {', '.join(AUTH_TYPES)}")
    try:
        return Service(
            id=service_id, name=str(raw["name"]), category=str(raw["category"]), auth=auth,
            aliases=tuple(raw.get("aliases", ())), misspellings=tuple(raw.get("misspellings", ())),
            keywords=tuple(raw.get("keywords", ())), latency_ms=float(raw["latency_ms"]),
            cost_usd=float(raw["cost_usd"]), triggers=tuple(_function(f) for f in raw.get("triggers", ())),
            actions=tuple(_function(f) for f in raw.get("actions", ())), common_word=bool(raw.get("common_word")),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise CatalogError(f"{service_id}: {exc!r}") from exc


def parse_catalog(lines: Iterable[str], source: str = "catalog") -> Catalog:
    services = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            services.append(parse_service(json.loads(line)))
        except (json.JSONDecodeError, CatalogError) as exc:
            raise CatalogError(f"{source}:{number}: {exc}") from exc
    return Catalog(services)


@cache
def _load(path: Path) -> Catalog:
    with path.open(encoding="utf-8") as lines:
        return parse_catalog(lines, str(path))


def load_catalog(path: Path | None = None) -> Catalog:
    """The catalog shipped with the package, or the one at ``path``; parsed once per path."""
    return _load((path or CATALOG_FILE).resolve())


def source_service_ids(sources: Mapping[str, Any]) -> dict[str, set[str]]:
    """Service ids named by a recipe-collection file (IFTTT and Zapier ``slug``s, n8n nodes), per collection."""
    return {
        "ifttt_channels": {c["slug"] for c in sources.get("ifttt_channels", ())},
        "zapier_apps": {c["slug"] for c in sources.get("zapier_apps", ())},
        "n8n_nodes": {slugify(c["node"]) for c in sources.get("n8n_nodes", ())},
    }
