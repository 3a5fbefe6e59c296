import json

import pytest

from domain.catalog import (
    CATEGORIES,
    SERVICE_ID,
    CatalogError,
    load_catalog,
    name_key,
    parse_catalog,
    slugify,
    source_service_ids,
)
from domain.latency import PROJECT_DIR, find_shared_data

CATALOG = load_catalog()
SHARED = find_shared_data({}, PROJECT_DIR)
SOURCES = SHARED / "services" / "service_sources.json" if SHARED else None


def test_catalog_has_at_least_180_services_with_valid_ids():
    assert len(CATALOG) >= 180
    for service in CATALOG:
        assert SERVICE_ID.match(service.id), service.id
        assert service.id == slugify(service.id)
        assert service.category in CATEGORIES
        assert service.auth in ("oauth2", "api_key", "basic", "none")
        assert service.latency_ms >= 0 and service.cost_usd >= 0
        assert service.triggers or service.actions, f"{service.id} has neither triggers nor actions"
        for function in (*service.triggers, *service.actions):
            assert function.name and function.description


def test_every_name_resolves_to_exactly_one_service():
    owners: dict[str, str] = {}
    for service in CATALOG:
        for name in service.names:
            assert owners.setdefault(name_key(name), service.id) == service.id, name
            assert CATALOG.resolve(name).id == service.id


@pytest.mark.skipif(SOURCES is None or not SOURCES.is_file(), reason="shared data directory not found")
def test_every_service_named_by_the_recipe_collections_is_in_the_catalog():
    sources = json.loads(SOURCES.read_text())
    named = source_service_ids(sources)
    assert len(named["zapier_apps"]) > 150
    missing = sorted(i for ids in named.values() for i in ids if CATALOG.resolve(i) is None)
    assert missing == []


@pytest.mark.parametrize(
    ("name", "service_id"),
    [
        ("gmail", "gmail"),
        ("G Cal", "google-calendar"),
        ("SkyDrive", "onedrive"),
        ("you-tube", "youtube"),
        ("my-sql", "mysql"),
        ("Box.net", "box"),
        ("gmail-tool", "gmail"),
        ("date-and-time", "schedule"),
        ("twiter", "twitter"),
        ("read-p-d-f", "read-p-d-f"),
    ],
)
def test_resolve(name, service_id):
    assert CATALOG.resolve(name).id == service_id


@pytest.mark.parametrize(
    ("node", "slug"), [("googleSheets", "google-sheets"), ("readPDF", "read-p-d-f"), ("Brandfetch", "brandfetch")]
)
def test_slugify_splits_n8n_names_at_capitals(node, slug):
    assert slugify(node) == slug


def test_search_filters_by_category_and_ranks_exact_names_first():
    assert CATALOG.search("slack")[0].id == "slack"
    chat = CATALOG.search(category="chat")
    assert chat and all(s.category == "chat" for s in chat)
    assert CATALOG.search("zzzz-no-such-service") == []


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"id": "Bad Id", "name": "x", "category": "chat", "auth": "none"}', "kebab-case"),
        ('{"id": "x", "name": "x", "category": "toys", "auth": "none", "latency_ms": 1, "cost_usd": 0}', "category"),
        ('{"id": "x", "name": "x", "category": "chat", "auth": "magic", "latency_ms": 1, "cost_usd": 0}', "auth"),
        ("not json", "catalog:1"),
    ],
)
def test_malformed_entries_are_refused_with_the_line(line, problem):
    with pytest.raises(CatalogError, match=problem):
        parse_catalog([line])


def test_an_alias_naming_two_services_is_refused():
    entry = {"name": "A", "category": "chat", "auth": "none", "latency_ms": 1, "cost_usd": 0, "actions": []}
    lines = [json.dumps({**entry, "id": i, "name": i.upper(), "aliases": ["shared"]}) for i in ("a", "b")]
    with pytest.raises(CatalogError, match="already names"):
        parse_catalog(lines)
