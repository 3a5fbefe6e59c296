"""Notification bodies: the plain text of email and the log, and Alertmanager's webhook payload."""

from datetime import UTC, datetime

import pytest

from connectors.channels import ALERTMANAGER_ZERO_TIME, alertmanager_body, channel_name, render_text
from schemas.monitoring import ChannelRef

NOW = datetime(2026, 3, 2, 9, 41, tzinfo=UTC)


def alert(alert_id: str, workflow: str, value: float) -> dict:
    return {"alert_id": alert_id, "rule": "error_rate_increase", "severity": "critical",
            "labels": {"scope": "workflow", "key": workflow, "workflow": workflow, "severity": "critical"},
            "annotations": {"summary": f"{workflow}: {value:.0%} of runs fail", "runbook": "https://rb/errors"},
            "value": value, "started_at": "2026-03-02T09:17:00Z"}  # fmt: skip


def message(status: str, *alerts: dict) -> dict:
    return {"status": status, "reason": status, "group": ["rule=error_rate_increase"], "alerts": list(alerts)}


def test_alertmanager_body_of_a_firing_group():
    body = alertmanager_body(message("firing", alert("a-1", "billing", 0.3), alert("a-2", "crm", 0.5)),
                             receiver="webhook:ops:alertmanager", now=NOW)  # fmt: skip
    assert (body["version"], body["status"], body["receiver"]) == ("4", "firing", "webhook:ops:alertmanager")
    assert body["groupLabels"] == {"alertname": "error_rate_increase"}
    assert body["groupKey"] == '{}:{alertname="error_rate_increase"}'
    assert body["commonLabels"] == {"alertname": "error_rate_increase", "severity": "critical", "scope": "workflow"}
    assert body["commonAnnotations"] == {"runbook": "https://rb/errors"}
    first = body["alerts"][0]
    assert first["labels"]["alertname"] == "error_rate_increase" and first["labels"]["workflow"] == "billing"
    assert (first["startsAt"], first["endsAt"], first["fingerprint"]) == (
        "2026-03-02T09:17:00Z", ALERTMANAGER_ZERO_TIME, "a-1")  # fmt: skip
    assert [a["status"] for a in body["alerts"]] == ["firing", "firing"]


def test_alertmanager_body_of_a_resolution_ends_now():
    body = alertmanager_body(message("resolved", alert("a-1", "billing", 0.0)), receiver="r", now=NOW)
    assert body["status"] == "resolved" and body["alerts"][0]["endsAt"] == "2026-03-02T09:41:00Z"
    assert body["commonAnnotations"] == body["alerts"][0]["annotations"]  # one alert: everything is common


def test_the_plain_text_names_each_alert_with_its_summary():
    subject, text = render_text(message("firing", alert("a-1", "billing", 0.3), alert("a-2", "crm", 0.5)))
    assert subject == "[FIRING:2] error_rate_increase (critical)"
    assert text.splitlines()[1].endswith("value 0.5: crm: 50% of runs fail")


@pytest.mark.parametrize(
    ("channel", "name"),
    [
        (ChannelRef(type="log"), "log"),
        (ChannelRef(type="email", to=("a@example.com", "b@example.com")), "email:2"),
        (ChannelRef(type="webhook", credential_id="ops"), "webhook:ops"),
        (ChannelRef(type="webhook", credential_id="ops", format="slack"), "webhook:ops:slack"),
        (ChannelRef(type="webhook", credential_id="ops", format="alertmanager"), "webhook:ops:alertmanager"),
    ],
)
def test_channel_names_tell_formats_apart(channel, name):
    assert channel_name(channel) == name
