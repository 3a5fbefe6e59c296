import pytest

from domain.oauth import (
    Grant,
    Refusal,
    due,
    expires_at,
    grant_form,
    parse_time,
    problems,
    read_token_answer,
    refreshable,
    refreshed,
    secret_values,
)

URL = "https://idp.test/oauth/token"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
OAUTH = {"access_token": "at-1", "refresh_token": "rt-1", "token_url": URL, "expires_at": "2026-01-01T01:00:00Z"}


@pytest.mark.parametrize(
    ("secret", "profile_url", "expected"),
    [
        (OAUTH, None, True),
        ({"access_token": "a", "refresh_token": "r"}, URL, True),  # the service profile knows the endpoint
        ({"access_token": "a", "refresh_token": "r"}, None, False),  # nowhere to refresh it
        ({"access_token": "a", "token_url": URL}, None, False),  # nothing to refresh it with
        ({"access_token": "a", "refresh_token": "", "token_url": URL}, None, False),
        ({"token": "xoxb-1"}, URL, False),
        ({"username": "u", "password": "p"}, URL, False),
    ],
)
def test_refreshable(secret, profile_url, expected):
    assert refreshable(secret, profile_url) is expected


@pytest.mark.parametrize(
    ("secret", "now", "expected"),
    [
        (OAUTH, T0, False),  # an hour left
        (OAUTH, T0 + 3540, True),  # within a minute of expiring
        (OAUTH, T0 + 7200, True),  # expired
        ({**OAUTH, "expires_at": str(int(T0 + 3600))}, T0 + 3599, True),  # epoch seconds
        ({k: v for k, v in OAUTH.items() if k != "expires_at"}, T0 + 10**9, False),  # no expiry known: only a 401 says
        ({k: v for k, v in OAUTH.items() if k != "access_token"}, T0, True),  # no access token yet
        ({**OAUTH, "expires_at": "whenever"}, T0 + 10**9, False),  # unreadable: as if unknown
        ({"access_token": "a", "expires_at": "2026-01-01T00:00:00Z"}, T0 + 10, False),  # expired, not refreshable
    ],
)
def test_due(secret, now, expected):
    assert due(secret, now=now) is expected


@pytest.mark.parametrize(
    ("value", "epoch"),
    [
        ("2026-01-01T00:00:00Z", T0),
        ("2026-01-01T01:00:00+01:00", T0),
        ("2026-01-01T00:00:00.500z", T0 + 0.5),
        ("1767225600", T0),
        (" 1767225600.25 ", T0 + 0.25),
    ],
)
def test_parse_time(value, epoch):
    assert parse_time(value) == epoch


@pytest.mark.parametrize("value", ["2026-01-01T00:00:00", "tomorrow", ""])
def test_parse_time_refuses_what_it_cannot_place(value):
    with pytest.raises(ValueError):
        parse_time(value)


@pytest.mark.parametrize(
    ("secret", "form"),
    [
        (OAUTH, {"grant_type": "refresh_token", "refresh_token": "rt-1"}),
        ({**OAUTH, "client_id": "app", "client_secret": "cs", "scope": "chat:write", "region": "eu"},
         {"grant_type": "refresh_token", "refresh_token": "rt-1", "client_id": "app", "client_secret": "cs",
          "scope": "chat:write"}),
    ],
)  # fmt: skip
def test_grant_form(secret, form):
    assert grant_form(secret) == form


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, {"access_token": "at-2", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt-2"},
         Grant("at-2", "rt-2", T0 + 3600)),
        (200, {"access_token": "at-2", "token_type": "bearer"}, Grant("at-2")),
        (200, {"access_token": "at-2", "expires_in": "60"}, Grant("at-2", None, T0 + 60)),
        (200, {"access_token": "at-2", "expires_in": True, "refresh_token": ""}, Grant("at-2")),
        (201, {"access_token": "at-2", "expires_in": -5}, Grant("at-2")),
        (200, {"token_type": "Bearer"}, Refusal(200, "invalid_response", "the answer has no access_token")),
        (200, None, Refusal(200, "invalid_response", "the answer has no access_token")),
        (200, {"access_token": "at-2", "token_type": "mac"},
         Refusal(200, "unsupported_token_type", "token_type 'mac' is not Bearer")),
        (400, {"error": "invalid_grant", "error_description": "revoked"}, Refusal(400, "invalid_grant", "revoked")),
        (401, {"error": "invalid_client"}, Refusal(401, "invalid_client")),
        (400, "not json", Refusal(400, "http_400")),
        (429, {}, Refusal(429, "http_429", retryable=True, retry_after_s=2.0)),
        (503, {"error": "temporarily_unavailable"},
         Refusal(503, "temporarily_unavailable", retryable=True, retry_after_s=2.0)),
        (408, None, Refusal(408, "http_408", retryable=True, retry_after_s=2.0)),
    ],
)  # fmt: skip
def test_read_token_answer(status, body, expected):
    assert read_token_answer(status, body, now=T0, retry_after_s=2.0) == expected


@pytest.mark.parametrize(
    ("grant", "expected"),
    [
        (Grant("at-2", "rt-2", T0 + 60),
         {**OAUTH, "access_token": "at-2", "refresh_token": "rt-2", "expires_at": "2026-01-01T00:01:00Z"}),
        (Grant("at-2"), {"access_token": "at-2", "refresh_token": "rt-1", "token_url": URL}),  # old expiry dropped
    ],
)  # fmt: skip
def test_refreshed_keeps_what_the_grant_does_not_replace(grant, expected):
    assert refreshed({**OAUTH}, grant) == expected


def test_secret_values_are_the_secrets_not_the_endpoint_or_the_times():
    secret = {**OAUTH, "client_secret": "cs", "scope": "read"}
    assert sorted(secret_values(secret)) == ["at-1", "cs", "rt-1"]


@pytest.mark.parametrize(
    ("secret", "found"),
    [
        (OAUTH, []),
        ({"token": "t"}, []),
        ({**OAUTH, "token_url": "ftp://idp"}, ["token_url must be an http(s) URL"]),
        ({**OAUTH, "expires_at": "2026-01-01 00:00"}, ["expires_at must be RFC 3339 with a time zone"]),
        ({**OAUTH, "refresh_token": ""}, ["refresh_token is empty"]),
    ],
)
def test_problems(secret, found):
    assert [p[: len(f)] for p, f in zip(problems(secret), found, strict=True)] == found
    assert all(value not in " ".join(problems(secret)) for value in ("at-1", "rt-1"))


def test_expires_at_reads_both_forms():
    assert expires_at({"expires_at": "2026-01-01T00:00:00Z"}) == expires_at({"expires_at": "1767225600"}) == T0
    assert expires_at({}) is None
