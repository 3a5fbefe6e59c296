"""Which connector performs a step, by its service id.

``webhook``, ``email``, ``delay``, ``transform`` and ``filter`` are built in;
every other service id is an ``HttpConnector`` with the profile configuration
gives it (``FLOWLEDGER_SERVICE_URLS`` per service, else
``FLOWLEDGER_SERVICE_BASE_URL``). A service with neither is a PermanentError.
Every HTTP connector of a registry shares one ``TokenRefresher``, so a
credential refused by several steps at once is refreshed once.
"""

import os
from collections.abc import Mapping

import httpx

from connectors.base import Connector, PermanentError
from connectors.builtin import DelayConnector, EmailConnector, FilterConnector, TransformConnector, WebhookConnector
from connectors.credentials import CredentialStore
from connectors.http import HttpConnector, ServiceProfiles, service_profiles
from connectors.oauth import TokenRefresher


class ConnectorRegistry:
    def __init__(
        self,
        profiles: ServiceProfiles,
        credential_store: CredentialStore,
        client: httpx.AsyncClient,
        *,
        email: EmailConnector | None = None,
    ) -> None:
        self.profiles = profiles
        self.credentials = credential_store
        self.client = client
        self.tokens = TokenRefresher(credential_store, client)
        self._builtin: dict[str, Connector] = {
            "webhook": WebhookConnector(client),
            "email": email or EmailConnector(credential_store),
            "delay": DelayConnector(),
            "transform": TransformConnector(),
            "filter": FilterConnector(),
        }
        self._http: dict[str, HttpConnector] = {}

    @classmethod
    def from_env(
        cls, credential_store: CredentialStore, client: httpx.AsyncClient, environ: Mapping[str, str] | None = None
    ) -> "ConnectorRegistry":
        """Profiles from ``FLOWLEDGER_SERVICE_BASE_URL`` / ``FLOWLEDGER_SERVICE_URLS`` /
        ``FLOWLEDGER_SERVICE_TOKEN_URLS``; SMTP from ``FLOWLEDGER_SMTP_HOST`` / ``_PORT`` / ``_STARTTLS`` /
        ``_USERNAME`` / ``_FROM``."""
        env = os.environ if environ is None else environ
        profiles = service_profiles(
            env.get("FLOWLEDGER_SERVICE_BASE_URL"),
            env.get("FLOWLEDGER_SERVICE_URLS", ""),
            env.get("FLOWLEDGER_SERVICE_TOKEN_URLS", ""),
        )
        email = EmailConnector(
            credential_store,
            host=env.get("FLOWLEDGER_SMTP_HOST", "127.0.0.1"),
            port=int(env.get("FLOWLEDGER_SMTP_PORT", "25")),
            starttls=env.get("FLOWLEDGER_SMTP_STARTTLS", "false").lower() in ("1", "true", "yes"),
            username=env.get("FLOWLEDGER_SMTP_USERNAME") or None,
            sender=env.get("FLOWLEDGER_SMTP_FROM", "flowledger@localhost"),
        )
        return cls(profiles, credential_store, client, email=email)

    def for_service(self, service: str) -> Connector:
        if service in self._builtin:
            return self._builtin[service]
        if service not in self._http:
            profile = self.profiles.get(service)
            if profile is None:
                raise PermanentError(f"no base URL configured for service {service}", error_type="ServiceNotConfigured")
            self._http[service] = HttpConnector(profile, self.credentials, self.client, self.tokens)
        return self._http[service]
