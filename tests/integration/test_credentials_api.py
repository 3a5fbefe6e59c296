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
