import pytest

from domain.redaction import find_secret_keys, redact
from flowledger.settings import parse_api_keys
from projections.migrations import load_migrations, split_statements
from projections.queries import decode_cursor
from projections.warehouse import redact_url


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", {}),
        ("k1=a", {"k1": "a"}),
        (" k1 = a , k2=b ,", {"k1": "a", "k2": "b"}),
        ("op=*", {"op": "*"}),
    ],
)
def test_api_keys_parse(spec, expected):
    assert parse_api_keys(spec) == expected


@pytest.mark.parametrize("spec", ["k1", "=a", "k1="])
def test_malformed_api_keys_are_refused_without_echoing_the_key(spec):
    with pytest.raises(ValueError) as info:
        parse_api_keys(spec)
    assert "k1=" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ("Bearer abcdefghijklmnop", "abcdefghijklmnop"),
        ("token ghp_" + "a" * 36, "a" * 36),
        ("key sk_live_" + "4" * 24, "4" * 24),
        ("https://x/?api_key=supersecret&x=1", "supersecret"),
        ("AKIAABCDEFGHIJKLMNOP", "ABCDEFGHIJKLMNOP"),
        ("Authorization: Token 9f8e7d6c5b4a", "9f8e7d6c5b4a"),
        ("Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
    ],
)
def test_redact_masks_known_token_formats(text, leaked):
    assert leaked not in redact(text)


@pytest.mark.parametrize(
    "prose",
    ["The security token included in the request is expired", "Basic authentication failed", "token expired"],
)
def test_redact_leaves_prose_alone(prose):
    assert redact(prose) == prose


def test_find_secret_keys_walks_nested_values():
    value = {"a": [{"password": "x"}], "client_secret": "y", "credential_id": "cred-1", "token": ""}
    assert find_secret_keys(value) == ["a[0].password", "client_secret"]


def test_migrations_are_numbered_and_split():
    migrations = load_migrations()
    assert [m.version for m in migrations] == sorted({m.version for m in migrations})
    assert split_statements("-- c\nCREATE A;\n\nCREATE B;\n") == ("CREATE A", "CREATE B")


def test_cursor_rejects_foreign_input():
    with pytest.raises(ValueError):
        decode_cursor("bm90LWEtY3Vyc29y")


def test_clickhouse_url_password_is_hidden():
    assert redact_url("http://user:hunter2@ch:8123/db") == "http://user:***@ch:8123/db"
