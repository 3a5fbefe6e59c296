import json
import time

import pytest

from domain.error_classifier import MAX_CHARS, classify, classify_step_error, retry_after_hint, words
from schemas.common import StepError

SLACK_SDK = (
    "slack_sdk.errors.SlackApiError: The request to the Slack API failed. (url: https://slack.com/api/chat.postMessage)\n"
    "The server responded with: {'ok': False, 'error': 'channel_not_found'}"
)
TRACEBACK = """Traceback (most recent call last):
  File "/srv/flows/steps/sync.py", line 30, in run
    response = client.post(url, json=body, timeout=10)
  File "/srv/flows/steps/sync.py", line 31, in run
    return response.json()["id"]
KeyError: 'id'"""


@pytest.mark.parametrize(
    ("message", "status", "error_type", "expected"),
    [
        # a 429 is a rate limit; a 403 that talks about quota is a quota; a plain 403 is about credentials
        ("asana answered 429 Too Many Requests: slow down. Retry-After: 30", 429, "RateLimited", "rate_limited"),
        ('{"error": {"code": 403, "message": "Quota exceeded for this project."}}', 403, None, "quota_exhausted"),
        ("Forbidden", 403, "Forbidden", "credentials"),
        ("github answered 403 Forbidden: Bad credentials", None, None, "credentials"),
        ('{"message": "API rate limit exceeded for 203.0.113.7."}', 403, None, "rate_limited"),
        # a limit per day is a quota even when the service answers 429; one per minute is a rate limit
        ('{"status": "error", "message": "You have reached your daily limit.", "errorType": "RATE_LIMIT"}', 429, None,
         "quota_exhausted"),
        ('{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Quota exceeded for quota metric '
         "'Read requests' and limit 'Read requests per minute per user'\"}}", None, None, "rate_limited"),
        # Slack answers 200 with ok: false, as JSON or as the Python SDK prints it
        ('{"ok": false, "error": "invalid_auth"}', 200, None, "credentials"),
        ('{"ok":false,"error":"ratelimited"}', None, None, "rate_limited"),
        (SLACK_SDK, None, None, "not_found"),
        ('{"ok": false, "error": "invalid_blocks", "errors": ["must provide an object"]}', 200, None, "bad_input"),
        ('{"ok": false, "error": "invalid_auth"', None, None, "credentials"),  # truncated body: words still count
        # tracebacks: the last exception line decides, not a frame that mentions a timeout
        (TRACEBACK, None, None, "step_bug"),
        ("TypeError: 'NoneType' object is not subscriptable", None, None, "step_bug"),
        ("json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)", None, None, "bad_input"),
        # transport errors
        ("httpx.ConnectTimeout: timed out", None, "ConnectTimeout", "timeout"),
        ("socket.gaierror: [Errno -2] Name or service not known", None, None, "network"),
        ("requests.exceptions.ConnectionError: Max retries exceeded (Caused by NewConnectionError('...: "
         "Failed to establish a new connection: [Errno 111] Connection refused'))", None, None, "network"),
        # status codes found in the text of a log line
        ("2026-11-26T10:00:02Z ERROR step post failed: HTTP 503 from upstream", None, None, "upstream_5xx"),
        ("urllib.error.HTTPError: HTTP Error 404: Not Found", None, None, "not_found"),
        # SMTP reply and enhanced codes, not HTTP statuses
        ("550 5.1.1 <ops@example.com>: Recipient address rejected: User unknown", None, None, "not_found"),
        ("552 5.2.2 Mailbox full", None, None, "quota_exhausted"),
        ("535 5.7.8 Username and Password not accepted.", None, None, "credentials"),
        # messy input
        ("", None, None, "unknown"),
        ("Erreur : la requête a échoué", None, None, "unknown"),
        ("Zugriff verweigert — 401 Unauthorized", None, None, "credentials"),
        ("🔥🔥🔥", None, None, "unknown"),
        ("", 504, None, "timeout"),
        ("", None, "KeyError", "step_bug"),
    ],
)  # fmt: skip
def test_classifies_tricky_cases(message, status, error_type, expected):
    result = classify(message, status_code=status, error_type=error_type)
    assert result.error_class == expected, result.explain()


def test_rate_limit_carries_retry_after_hint_and_is_transient():
    result = classify("asana answered 429 Too Many Requests: Retry-After: 30", status_code=429)
    assert (result.error_class, result.retryable, result.retry_after_s) == ("rate_limited", True, 30.0)
    assert classify("429", status_code=429, retry_after_s=2.0).retry_after_s == 2.0  # the service's own value wins


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("Retry-After: 30", 30.0),
        ('{"error": {"retry_after": 1.5}}', 1.5),
        ('"retryDelay": "45s"', 45.0),
        ("Please try again in 20 seconds.", 20.0),
        ("retry in 1500ms", 1.5),
        ("wait 2 minutes", 120.0),
        ("Please try again later.", None),
        ("", None),
    ],
)
def test_retry_after_hint(text, seconds):
    assert retry_after_hint(text) == seconds


def test_empty_input_is_unknown_with_no_evidence():
    result = classify()
    assert (result.error_class, result.confidence, result.retryable, result.evidence) == ("unknown", 0.0, False, ())
    assert result.explain() == "unknown: no rule matched"


def test_evidence_explains_the_decision():
    result = classify('{"ok": false, "error": "ratelimited"}', status_code=429)
    assert {(e.source, e.match) for e in result.evidence} == {("text", "ratelimited"), ("status", "429")}
    assert result.explain().startswith("rate_limited (0.")
    assert 0 < result.confidence < 1


def test_conflicting_evidence_lowers_confidence():
    clear = classify("401 Unauthorized: invalid token", status_code=401)
    mixed = classify("401 Unauthorized: invalid token; connection reset", status_code=401)
    assert clear.error_class == mixed.error_class == "credentials"
    assert mixed.confidence < clear.confidence


def test_a_phrase_inside_a_longer_one_does_not_count_twice():
    result = classify("PERMISSION_DENIED")
    assert [e.match for e in result.evidence] == ["permission denied"]


@pytest.mark.parametrize(
    ("message", "retryable"),
    [
        ("452 4.2.2 The email account that you tried to reach is over quota.", True),  # 4yz: transient
        ("550 5.1.1 user unknown", False),
        ("ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed", False),
        ("ConnectionResetError: [Errno 104] Connection reset by peer", True),
        ("KeyError: 'email'", False),
    ],
)
def test_retryable(message, retryable):
    assert classify(message).retryable is retryable


@pytest.mark.parametrize(
    ("message", "service"),
    [
        ("requests.exceptions.HTTPError: 401 Client Error: Unauthorized for url: https://api.github.com/u", "github"),
        ("googleapiclient.errors.HttpError: <HttpError 404 when requesting https://sheets.googleapis.com/v4/x>",
         "google"),
        ('{"ok": false, "error": "not_in_channel"}', "slack"),
        ("botocore.exceptions.NoCredentialsError: Unable to locate credentials", "aws"),
        ("KeyError: 'email'", None),
        ("notional amount must be positive", None),  # whole words only
    ],
)  # fmt: skip
def test_names_the_service(message, service):
    assert classify(message).service == service


def test_huge_input_is_capped_and_keeps_the_last_line():
    filler = "x" * 1_000_000
    message = f'Traceback (most recent call last):\n  File "a.py", line 1, in f\n    {filler}\n' + (
        "ConnectionResetError: [Errno 104] Connection reset by peer"
    )
    start = time.perf_counter()
    result = classify(message)
    assert time.perf_counter() - start < 0.05
    assert result.error_class == "network"
    assert classify("y" * (MAX_CHARS * 4)).error_class == "unknown"


def test_huge_json_body():
    body = json.dumps({"error": {"code": 429, "message": "Too many requests", "items": ["z" * 100] * 5000}})
    assert classify(body).error_class == "rate_limited"


def test_deterministic():
    message = "smtplib.SMTPAuthenticationError: (535, b'5.7.8 Username and Password not accepted.')"
    assert len({classify(message) for _ in range(5)}) == 1


def test_classifies_a_step_error():
    error = StepError(type="RateLimited", message="429 Too Many Requests", status_code=429, retry_after_s=2)
    result = classify_step_error(error)
    assert (result.error_class, result.retry_after_s) == ("rate_limited", 2)


def test_words_split_camel_and_snake_case():
    assert words("userRateLimitExceeded RESOURCE_EXHAUSTED HTTPError") == [
        "user", "rate", "limit", "exceeded", "resource", "exhausted", "http", "error"
    ]  # fmt: skip
