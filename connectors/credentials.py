"""Secrets for connectors, encrypted at rest, one file per data directory.

A credential is a small mapping of strings (``{"token": ...}`` or
``{"username": ..., "password": ...}``) stored under ``(tenant_id,
credential_id)``. Events and step definitions name the id only; connectors
ask the store for the secret at call time.

The file ``credentials.json`` holds one Fernet token per credential. Each token
encrypts the secret together with its tenant and id, so a token copied under
another tenant or id is refused rather than read. The key comes from
``FLOWLEDGER_CREDENTIALS_KEY`` (a urlsafe-base64 Fernet key), else from
``credentials.key`` in the data directory, created once with mode 0600.

OAuth credentials (``access_token``, ``refresh_token``, ``token_url``,
``expires_at``: see ``domain.oauth``) are refreshed by
``connectors.oauth.TokenRefresher``, which writes the new token back with
``update``: a read-modify-write of one credential under the store's lock.

Errors (``CredentialNotFound``, ``CredentialUnreadable``,
``CredentialRefreshFailed``) are ``PermanentError``s: a step whose credential
is missing, unreadable or refused even after a refresh is not worth retrying.
Their messages name the tenant and id, never the secret.
"""

import contextlib
import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from connectors.base import PermanentError

KEY_ENV = "FLOWLEDGER_CREDENTIALS_KEY"
KEY_FILE = "credentials.key"
STORE_FILE = "credentials.json"


class CredentialNotFound(PermanentError):
    def __init__(self, tenant_id: str, credential_id: str) -> None:
        super().__init__(
            f"credential {credential_id!r} not found for tenant {tenant_id!r}", error_type="CredentialNotFound"
        )


class CredentialUnreadable(PermanentError):
    def __init__(self, tenant_id: str, credential_id: str) -> None:
        super().__init__(
            f"credential {credential_id!r} of tenant {tenant_id!r} cannot be decrypted: the key "
            f"({KEY_ENV} or {KEY_FILE}) differs from the one it was written with, or the entry was tampered with",
            error_type="CredentialUnreadable",
        )


class CredentialRefreshFailed(PermanentError):
    """The token endpoint refused to refresh the credential (``invalid_grant`` ...): a person must reconnect it."""

    def __init__(self, tenant_id: str, credential_id: str, reason: str) -> None:
        super().__init__(
            f"credential {credential_id!r} of tenant {tenant_id!r} could not be refreshed: {reason}; "
            "reconnect the account and store the credential again",
            error_type="CredentialRefreshFailed",
            status_code=401,
        )


def load_key(data_dir: Path, environ: Mapping[str, str]) -> bytes:
    """The Fernet key: from the environment, else the data directory's key file (created once, mode 0600)."""
    configured = environ.get(KEY_ENV)
    if configured:
        key = configured.strip().encode()
        try:
            Fernet(key)
        except ValueError:
            raise ValueError(f"{KEY_ENV} is not a urlsafe-base64 Fernet key of 32 bytes") from None
        return key
    path = data_dir / KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written whole, then linked into place: a process starting at the same time reads a whole key.
        fd, tmp = tempfile.mkstemp(prefix=".credentials-key-", dir=data_dir)  # mode 0600
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(Fernet.generate_key())
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):  # another process linked its key first: that one counts
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    return path.read_bytes().strip()


class CredentialStore:
    """Credentials per (tenant, id) in ``<data_dir>/credentials.json``; writes are atomic.

    Several processes may share one file: every read-modify-write holds an
    exclusive lock on ``credentials.json.lock``.
    """

    def __init__(self, data_dir: Path, *, key: bytes | str | None = None, environ: Mapping[str, str] | None = None):
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / STORE_FILE
        raw = key.encode() if isinstance(key, str) else key
        self._fernet = Fernet(raw or load_key(self.data_dir, os.environ if environ is None else environ))
        self._thread_lock = threading.Lock()

    def put(self, tenant_id: str, credential_id: str, secret: dict[str, str]) -> None:
        token = self._encrypt(tenant_id, credential_id, secret)
        with self._locked() as entries:
            entries.setdefault(tenant_id, {})[credential_id] = token
            self._write(entries)

    def get(self, tenant_id: str, credential_id: str) -> dict[str, str]:
        return self._decrypt(self._read(), tenant_id, credential_id)

    def update(
        self, tenant_id: str, credential_id: str, change: Callable[[dict[str, str]], dict[str, str] | None]
    ) -> dict[str, str]:
        """Replace a credential by ``change(current)`` atomically (None: keep it); the secret stored after.

        The read and the write hold the store's lock, so a credential replaced
        meanwhile (by a person, or a refresh in another process) is what
        ``change`` sees, never overwritten unseen.
        """
        with self._locked() as entries:
            current = self._decrypt(entries, tenant_id, credential_id)
            new = change(dict(current))
            if new is None or new == current:
                return current
            entries[tenant_id][credential_id] = self._encrypt(tenant_id, credential_id, new)
            self._write(entries)
            return dict(new)

    def delete(self, tenant_id: str, credential_id: str) -> bool:
        """Remove a credential; True if it existed."""
        with self._locked() as entries:
            existed = entries.get(tenant_id, {}).pop(credential_id, None) is not None
            if existed:
                if not entries[tenant_id]:
                    del entries[tenant_id]
                self._write(entries)
        return existed

    def ids(self, tenant_id: str) -> list[str]:
        return sorted(self._read().get(tenant_id, {}))

    def _encrypt(self, tenant_id: str, credential_id: str, secret: dict[str, str]) -> str:
        _check_ids(tenant_id, credential_id)
        if not secret or not all(isinstance(k, str) and isinstance(v, str) for k, v in secret.items()):
            raise ValueError("a credential is a non-empty mapping of strings to strings")
        plain = json.dumps({"tenant_id": tenant_id, "credential_id": credential_id, "secret": secret}).encode()
        return self._fernet.encrypt(plain).decode()

    def _decrypt(self, entries: dict[str, dict[str, str]], tenant_id: str, credential_id: str) -> dict[str, str]:
        token = entries.get(tenant_id, {}).get(credential_id)
        if token is None:
            raise CredentialNotFound(tenant_id, credential_id)
        try:
            plain: dict[str, Any] = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise CredentialUnreadable(tenant_id, credential_id) from None
        if (plain.get("tenant_id"), plain.get("credential_id")) != (tenant_id, credential_id):
            raise CredentialUnreadable(tenant_id, credential_id)
        return dict(plain["secret"])

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            data: dict[str, dict[str, str]] = json.loads(self.path.read_text())["tenants"]
        except FileNotFoundError:
            return {}
        return data

    def _write(self, entries: dict[str, dict[str, str]]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".credentials-", dir=self.data_dir)
        try:
            with os.fdopen(fd, "w") as out:
                json.dump({"version": 1, "tenants": entries}, out, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, dict[str, str]]]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._thread_lock, open(self.data_dir / f"{STORE_FILE}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield self._read()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _check_ids(tenant_id: str, credential_id: str) -> None:
    if not (isinstance(tenant_id, str) and tenant_id and isinstance(credential_id, str) and credential_id):
        raise ValueError("tenant_id and credential_id must be non-empty strings")
