"""Where alert notifications go: the log, a webhook (JSON, Slack's or Alertmanager's format), email over SMTP.

Webhook and email reuse the step connectors, so timeouts, error mapping and
secret handling are the same. A webhook's URL usually carries a token: it
lives in the credential store (``{"url": ...}``) and is named by id; it never
appears in an event, a detail or a log line.
"""

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from connectors.base import Connector, ConnectorError, PermanentError, StepCall
from connectors.credentials import CredentialNotFound, CredentialStore
from schemas.monitoring import ChannelRef

log = logging.getLogger("flowledger.alerts")


def render_text(message: dict[str, Any]) -> tuple[str, str]:
    """Subject and body of a notification in plain text."""
    alerts = message["alerts"]
    status = message["status"].upper()
    first = alerts[0]
    subject = f"[{status}{f':{len(alerts)}' if len(alerts) > 1 else ''}] {first['rule']} ({first['severity']})"
    lines = []
    for alert in alerts:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(alert["labels"].items()))
        value = "" if alert.get("value") is None else f" value {alert['value']:g}"
        summary = alert["annotations"].get("summary", "")
        lines.append(f"- {alert['rule']} [{labels}]{value}{': ' + summary if summary else ''}")
    return subject, "\n".join(lines)


ALERTMANAGER_ZERO_TIME = "0001-01-01T00:00:00Z"
"""Alertmanager's ``endsAt`` of an alert that has not ended."""


def alertmanager_body(message: dict[str, Any], *, receiver: str, now: datetime) -> dict[str, Any]:
    """A notification as Alertmanager's webhook receiver sends it (payload version 4), so tools written for
    Alertmanager (incident bridges, dashboards, chat relays) take Flowledger's alerts unchanged.

    A rule's name is the ``alertname`` label; ``fingerprint`` is the alert id.
    """
    status = message["status"]
    alerts = [
        {
            "status": status,
            "labels": {"alertname": a["rule"], "severity": a["severity"], **a["labels"]},
            "annotations": dict(a["annotations"]),
            "startsAt": a["started_at"],
            "endsAt": now.isoformat().replace("+00:00", "Z") if status == "resolved" else ALERTMANAGER_ZERO_TIME,
            "generatorURL": "",
            "fingerprint": a["alert_id"],
        }
        for a in message["alerts"]
    ]
    group_labels = {}
    for item in message["group"]:
        name, _, value = item.partition("=")
        group_labels["alertname" if name == "rule" else name] = value
    return {
        "version": "4",
        "groupKey": "{}:{" + ",".join(f"{k}={orjson.dumps(v).decode()}" for k, v in sorted(group_labels.items())) + "}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": _common([a["labels"] for a in alerts]),
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": "",
        "alerts": alerts,
    }


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    """The pairs every map has."""
    return {k: v for k, v in maps[0].items() if all(m.get(k) == v for m in maps[1:])} if maps else {}


class Channels:
    def __init__(self, webhook: Connector, email: Connector, credentials: CredentialStore) -> None:
        self.webhook, self.email, self.credentials = webhook, email, credentials

    async def deliver(self, tenant: str, channel: ChannelRef, message: dict[str, Any], key: str) -> str:
        """Send one notification; returns a short detail, raises ConnectorError (with no secret in it)."""
        subject, text = render_text(message)
        if channel.type == "log":
            log.warning("alert %s\n%s", subject, text)
            return "logged"
        if channel.type == "email":
            params = {"to": list(channel.to), "subject": subject, "body": text}
            await self.email.call(self._call(tenant, "email", params, key))
            return f"mailed to {len(channel.to)} recipient(s)"
        url = self._url(tenant, channel)
        if channel.format == "slack":
            body = {"text": f"*{subject}*\n{text}"}
        elif channel.format == "alertmanager":
            body = alertmanager_body(message, receiver=channel_name(channel), now=datetime.now(UTC))
        else:
            body = message
        try:
            await self.webhook.call(self._call(tenant, "webhook", {"url": url, "body": body}, key))
        except ConnectorError as exc:
            exc.message = exc.message.replace(url, "<webhook url>")
            exc.args = (exc.message,)
            raise
        return f"posted ({channel.format}) to credential {channel.credential_id}"

    def _url(self, tenant: str, channel: ChannelRef) -> str:
        try:
            url = self.credentials.get(tenant, channel.credential_id or "").get("url")
        except CredentialNotFound as exc:
            raise PermanentError(f"no stored credential '{channel.credential_id}'", error_type="Unauthorized") from exc
        if not url:
            raise PermanentError(f"credential '{channel.credential_id}' has no 'url'", error_type="ValidationError")
        return url

    @staticmethod
    def _call(tenant: str, service: str, params: dict[str, Any], key: str) -> StepCall:
        return StepCall(tenant_id=tenant, workflow_id="alerts", run_id=key, step_id="notify", attempt=1,
                        service=service, action="notify", params=params, timeout_s=10.0)  # fmt: skip


def channel_name(channel: ChannelRef) -> str:
    if channel.type == "webhook":
        return f"webhook:{channel.credential_id}" + ("" if channel.format == "json" else f":{channel.format}")
    if channel.type == "email":
        return f"email:{len(channel.to)}"
    return "log"


def dedupe(channels: Sequence[ChannelRef]) -> list[ChannelRef]:
    return list(dict.fromkeys(channels))
