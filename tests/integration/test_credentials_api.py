"""Credentials through the API: write-only, tenant-scoped, never in the log."""

import pytest

from tests.integration.conftest import auth

pytestmark = pytest.mark.integration


async def test_credentials_are_write_only_and_tenant_scoped(http, api):
    secret = {"token": "xoxb-9999999999-secretsecretsecret"}
    r = await http.put("/api/credentials/slack-ops", json={"secret": secret}, headers=auth("key-a"))
    assert r.status_code == 204 and r.content == b""
    assert (await http.get("/api/credentials", headers=auth("key-a"))).json() == {"credential_ids": ["slack-ops"]}
    assert (await http.get("/api/credentials", headers=auth("key-b"))).json() == {"credential_ids": []}
    assert (await http.delete("/api/credentials/slack-ops", headers=auth("key-b"))).status_code == 404
    # The store file holds no plaintext; the secret never reached the API's log either.
    data_dir = api.log.parent
    assert b"secretsecretsecret" not in (data_dir / "credentials.json").read_bytes()
    assert b"secretsecretsecret" not in api.log.read_bytes()
    assert (await http.delete("/api/credentials/slack-ops", headers=auth("key-a"))).status_code == 204
    bad = await http.put("/api/credentials/x", json={"secret": {}}, headers=auth("key-a"))
    assert bad.status_code == 422


@pytest.mark.parametrize(
    ("secret", "status", "says"),
    [
        ({"access_token": "at-3f9a1c77e2", "refresh_token": "rt-77e23f9a1c", "token_url": "https://idp.test/token",
          "expires_at": "2026-01-01T00:00:00Z"}, 204, None),
        ({"refresh_token": "rt-77e23f9a1c", "token_url": "https://idp.test/token"}, 204, None),
        ({"access_token": "at-3f9a1c77e2", "refresh_token": "rt-77e23f9a1c", "expires_at": "soon"}, 422, "expires_at"),
        ({"refresh_token": "rt-77e23f9a1c", "token_url": "idp.test/token"}, 422, "token_url"),
    ],
)  # fmt: skip
async def test_oauth_credentials_are_checked_and_stay_write_only(http, api, secret, status, says):
    r = await http.put("/api/credentials/crm-oauth", json={"secret": secret}, headers=auth("key-a"))
    assert r.status_code == status, r.text
    if says:
        assert says in r.json()["detail"]
    assert "77e2" not in r.text and "77e2" not in api.log.read_text()
    await http.delete("/api/credentials/crm-oauth", headers=auth("key-a"))
