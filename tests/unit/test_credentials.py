import json
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.fernet import Fernet

from connectors.base import PermanentError
from connectors.credentials import (
    KEY_ENV,
    KEY_FILE,
    STORE_FILE,
    CredentialNotFound,
    CredentialStore,
    CredentialUnreadable,
)

SECRETS = [
    {"token": "xoxb-123456789012-abcdefABCDEF"},
    {"username": "ops@example.com", "password": "correct horse battery staple"},
    {"api_key": "k-3f9a1c77e2", "region": "eu-central-1"},
]


@pytest.fixture
def store(tmp_path):
    return CredentialStore(tmp_path, environ={})


@pytest.mark.parametrize("secret", SECRETS)
def test_round_trip_and_no_plaintext_on_disk(store, tmp_path, secret):
    store.put("acme", "cred-1", secret)
    assert store.get("acme", "cred-1") == secret
    on_disk = (tmp_path / STORE_FILE).read_text()
    for value in secret.values():
        assert value not in on_disk
    assert CredentialStore(tmp_path, environ={}).get("acme", "cred-1") == secret  # same key file, new instance


def test_key_file_is_created_once_with_mode_0600(tmp_path):
    CredentialStore(tmp_path, environ={}).put("acme", "c", {"token": "t"})
    key_path = tmp_path / KEY_FILE
    first = key_path.read_bytes()
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    CredentialStore(tmp_path, environ={}).put("acme", "d", {"token": "t"})
    assert key_path.read_bytes() == first
    assert stat.S_IMODE((tmp_path / STORE_FILE).stat().st_mode) == 0o600


def test_key_from_the_environment_makes_no_key_file(tmp_path):
    key = Fernet.generate_key().decode()
    CredentialStore(tmp_path, environ={KEY_ENV: key}).put("acme", "c", {"token": "t"})
    assert not (tmp_path / KEY_FILE).exists()
    assert CredentialStore(tmp_path, environ={KEY_ENV: key}).get("acme", "c") == {"token": "t"}


@pytest.mark.parametrize("bad_key", ["not-a-key", "c2hvcnQ=", "x" * 44])
def test_malformed_environment_key_is_refused_without_echoing_it(tmp_path, bad_key):
    with pytest.raises(ValueError, match=KEY_ENV) as info:
        CredentialStore(tmp_path, environ={KEY_ENV: bad_key})
    assert bad_key not in str(info.value)


def test_a_wrong_key_cannot_read_and_says_so(tmp_path):
    secret = {"password": "hunter2-very-secret"}
    CredentialStore(tmp_path, environ={}).put("acme", "smtp", secret)
    other = CredentialStore(tmp_path, environ={KEY_ENV: Fernet.generate_key().decode()})
    with pytest.raises(CredentialUnreadable) as info:
        other.get("acme", "smtp")
    assert "cannot be decrypted" in str(info.value) and KEY_ENV in str(info.value)
    assert "hunter2" not in str(info.value)
    assert isinstance(info.value, PermanentError) and info.value.error_type == "CredentialUnreadable"


@pytest.mark.parametrize(
    ("tenant", "credential_id"),
    [("globex", "cred-1"), ("acme", "cred-2"), ("ACME", "cred-1")],
)
def test_tenant_isolation_not_found(store, tenant, credential_id):
    store.put("acme", "cred-1", {"token": "t-acme"})
    with pytest.raises(CredentialNotFound) as info:
        store.get(tenant, credential_id)
    assert info.value.error_type == "CredentialNotFound" and info.value.retryable is False


def test_ids_are_per_tenant(store):
    store.put("acme", "b", {"token": "1"})
    store.put("acme", "a", {"token": "2"})
    store.put("globex", "c", {"token": "3"})
    assert (store.ids("acme"), store.ids("globex"), store.ids("initech")) == (["a", "b"], ["c"], [])


def test_an_entry_copied_to_another_tenant_is_refused(store, tmp_path):
    store.put("acme", "cred-1", {"token": "t-acme"})
    path = tmp_path / STORE_FILE
    data = json.loads(path.read_text())
    data["tenants"]["globex"] = {"cred-1": data["tenants"]["acme"]["cred-1"]}
    path.write_text(json.dumps(data))
    with pytest.raises(CredentialUnreadable):
        store.get("globex", "cred-1")


def test_delete_and_overwrite(store, tmp_path):
    store.put("acme", "c", {"token": "old"})
    store.put("acme", "c", {"token": "new"})
    assert store.get("acme", "c") == {"token": "new"}
    assert store.delete("acme", "c") is True
    assert store.delete("acme", "c") is False
    assert store.ids("acme") == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([KEY_FILE, STORE_FILE, f"{STORE_FILE}.lock"])


@pytest.mark.parametrize(
    ("tenant", "credential_id", "secret"),
    [("acme", "c", {}), ("acme", "c", {"token": 1}), ("", "c", {"token": "t"}), ("acme", "", {"token": "t"})],
)
def test_invalid_puts(store, tenant, credential_id, secret):
    with pytest.raises(ValueError):
        store.put(tenant, credential_id, secret)


def test_update_is_an_atomic_read_modify_write_across_threads(store):
    store.put("acme", "counter", {"n": "0", "token": "t"})

    def bump(secret):
        return {**secret, "n": str(int(secret["n"]) + 1)}

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: store.update("acme", "counter", bump), range(40)))
    assert store.get("acme", "counter") == {"n": "40", "token": "t"}


@pytest.mark.parametrize(
    ("change", "stored"),
    [
        (lambda s: {**s, "token": "new"}, {"token": "new"}),
        (lambda s: None, {"token": "old"}),  # None keeps it
        (lambda s: dict(s), {"token": "old"}),  # unchanged: nothing written
    ],
)
def test_update_returns_what_is_stored(store, change, stored):
    store.put("acme", "c", {"token": "old"})
    assert store.update("acme", "c", change) == stored == store.get("acme", "c")


def test_update_of_a_missing_credential_is_not_found(store):
    with pytest.raises(CredentialNotFound):
        store.update("acme", "nope", lambda s: s)


def test_processes_starting_together_share_one_whole_key(tmp_path):
    from multiprocessing import get_context

    with get_context("spawn").Pool(4) as pool:
        keys = pool.map(_key_of, [str(tmp_path)] * 8)
    assert len(set(keys)) == 1 and len(keys[0]) == 44
    assert list(tmp_path.iterdir()) == [tmp_path / KEY_FILE]


def _key_of(directory):
    from pathlib import Path

    from connectors.credentials import load_key

    return load_key(Path(directory), {})
