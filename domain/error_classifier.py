"""What kind of failure a step error or a log line is (pure, deterministic).

``classify(message, status_code=..., error_type=...)`` answers with one class:

===================  ======================================================  =========
class                meaning                                                 transient
===================  ======================================================  =========
``credentials``      expired, revoked, invalid or insufficient credentials   no
``quota_exhausted``  a daily/monthly allowance or the storage is used up     no
``rate_limited``     too many requests for now                               yes
``timeout``          no answer in time                                       yes
``network``          no connection (DNS, refused, reset, TLS)                yes
``upstream_5xx``     the service failed on its side                          yes
``not_found``        the object is missing, or the account is not set up     no
``bad_input``        the request or its data was invalid                     no
``step_bug``         a Python exception in the step's own code               no
``unknown``          no evidence at all                                      no
===================  ======================================================  =========

How it decides, in three steps:

1. *Prepare.* Cap the text (head and tail of ``MAX_CHARS``); of a traceback
   keep the last exception line; replace an embedded JSON body by its error
   fields (``{"ok": false, "error": "ratelimited"}``, ``{"error": {"code":
   429, "status": "RESOURCE_EXHAUSTED"}}``, ``{"errors": [{"message": ...}]}``)
   and take a status code from it; find SMTP reply and enhanced codes
   (``550 5.1.1``); else find an HTTP status in the text (``answered 429``).
2. *Score.* Each piece of evidence adds its weight to one class: the status
   code, the SMTP codes, and every phrase of ``domain.error_rules.PHRASES``
   found in the error type and in the message (matched on words, after
   splitting camelCase and snake_case).
3. *Decide.* The highest score wins (ties go to the class listed first in
   ``CLASSES``); ``confidence = top / (sum of all scores + 1)``, so evidence
   for other classes and thin evidence both lower it. No evidence: ``unknown``
   with confidence 0.

The answer also says whether the failure is transient (the class's default,
except that an SMTP 4yz reply is transient and 5yz is not, and a rejected TLS
certificate is not), the ``Retry-After`` the text states, the service the text
names, and the evidence that decided it.

>>> c = classify('{"ok": false, "error": "ratelimited"}', status_code=429)
>>> c.error_class, c.retryable, c.service
('rate_limited', True, 'slack')
>>> classify("550 5.1.1 <ops@example.com>: Recipient address rejected: User unknown").error_class
'not_found'
>>> classify("").error_class
'unknown'
"""

import json
import re
from dataclasses import dataclass
from typing import Any

from domain.error_rules import (
    CLASSES,
    HTTP_STATUS,
    PERMANENT_PHRASES,
    PHRASES,
    SERVICES,
    SMTP_ENHANCED,
    SMTP_REPLY,
    SMTP_SUBJECT,
    TRANSIENT,
    ErrorClass,
    Rule,
)

MAX_CHARS = 8192
"""Longer text keeps its first and last halves of this (a traceback's last line is at the end)."""

MAX_WORDS = 400
MAX_PHRASE_WORDS = max(len(p.split()) for p in PHRASES)
_PREFIXES = frozenset(" ".join(p.split()[:n]) for p in PHRASES for n in range(1, len(p.split())))

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+|[^\W\d_A-Za-z]+")
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?::|$)")
_JSON_START = re.compile(r"[\[{]\s*[\"{]")
_SLACK_SHAPE = re.compile(r"[\"']ok[\"']\s*:\s*false")
_NUMBER = re.compile(r"\d+(?:\.\d+)*")
_SMTP_ENHANCED_AFTER = re.compile(r"[\s,(b'\"-]{1,5}([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_SMTP_REPLY_AFTER = re.compile(r"[ -][a-z<]")
_HTTP_KEYWORD_BEFORE = re.compile(
    r"(?:status(?:[ _-]?code)?|http(?:/[\d.]+)?|error|code|answered|returned|response)[\"']?\s*[:=]?\s*[\"']?$"
)
_HTTP_REASON_AFTER = re.compile(
    r"\s*[,:-]?\s*(?:message=)?[\"']?(?:bad request|unauthorized|payment required|forbidden|not found|"
    r"method not allowed|request timeout|conflict|gone|payload too large|unprocessable|too many requests|"
    r"internal server error|not implemented|bad gateway|service unavailable|gateway timeout|insufficient storage)"
)
_UNIT = r"(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?)"
_RETRY_AFTER = re.compile(
    r"retry[-_ ]?(?:after|delay)[\"']?\s*[:=]?\s*[\"']?(\d+(?:\.\d+)?)\s*" + _UNIT + r"?\b"
    r"|(?:try again|retry|wait)(?: for)?(?: in| after)? (\d+(?:\.\d+)?)\s*" + _UNIT + r"\b"
)
_SERVICE_PATTERNS = tuple(
    (service, needles, re.compile(r"\b(?:" + "|".join(re.escape(n) for n in needles) + r")\b"))
    for service, needles in SERVICES
)
_TEXT_KEYS = frozenset(
    {
        "error", "error_description", "message", "msg", "detail", "title", "reason", "status", "code", "type",
        "errorcode", "error_code", "errortype", "category", "error_summary", ".tag", "__type", "decline_code",
        "description",
    }
)  # fmt: skip
_STATUS_KEYS = frozenset({"code", "status", "status_code", "statuscode", "httpstatus", "http_status"})


@dataclass(frozen=True)
class Evidence:
    """One matched rule: where it was found, what matched, and the class and weight it gave."""

    source: str  # "status", "smtp", "type" or "text"
    match: str
    error_class: ErrorClass
    weight: float

    def __str__(self) -> str:
        return f"{self.source} {self.match!r} -> {self.error_class} +{self.weight:g}"


@dataclass(frozen=True)
class Classification:
    error_class: ErrorClass
    confidence: float
    retryable: bool
    """Transient: worth another attempt as it is, after ``retry_after_s`` if given."""
    retry_after_s: float | None
    service: str | None
    evidence: tuple[Evidence, ...]

    def explain(self) -> str:
        """One line: the decision and the evidence for it, strongest first."""
        if not self.evidence:
            return "unknown: no rule matched"
        why = "; ".join(str(e) for e in self.evidence)
        return f"{self.error_class} ({self.confidence:.2f}): {why}"


@dataclass(frozen=True)
class _Prepared:
    text: str  # what phrases are matched on
    status: int | None
    smtp: tuple[int, str | None] | None  # reply code, enhanced code "X.Y.Z"
    slack_shape: bool


def classify(
    message: str = "",
    *,
    status_code: int | None = None,
    error_type: str | None = None,
    retry_after_s: float | None = None,
) -> Classification:
    """Classify a step error (any of its fields may be missing) or a log line passed as ``message``."""
    raw = _cap(message or "")
    prepared = _prepare(raw, status_code)
    evidence = _status_evidence(prepared) + _phrase_evidence("type", error_type or "")
    evidence += _phrase_evidence("text", prepared.text)
    error_class, confidence = _decide(evidence)
    return Classification(
        error_class=error_class,
        confidence=confidence,
        retryable=_transient(error_class, evidence, prepared),
        retry_after_s=retry_after_s if retry_after_s is not None else retry_after_hint(raw),
        service=_service(raw, prepared),
        evidence=tuple(sorted((e for e in evidence if e.error_class == error_class), key=lambda e: -e.weight)),
    )


def classify_step_error(error: Any) -> Classification:
    """Classify a ``schemas.common.StepError`` (or anything with its fields)."""
    return classify(
        error.message, status_code=error.status_code, error_type=error.type, retry_after_s=error.retry_after_s
    )


def words(text: str) -> list[str]:
    """Lowercased words, split at camelCase and snake_case boundaries.

    >>> words("userRateLimitExceeded: invalid_auth (HTTPError)")
    ['user', 'rate', 'limit', 'exceeded', 'invalid', 'auth', 'http', 'error']
    """
    return [w.lower() for w in _WORD.findall(text)]


def retry_after_hint(text: str) -> float | None:
    """Seconds to wait that the text states (``Retry-After: 30``, ``"retry_after": 1.5``, ``try again in 20s``).

    >>> retry_after_hint('429 Too Many Requests; Retry-After: 30'), retry_after_hint("Please retry in 1500ms")
    (30.0, 1.5)
    """
    lowered = text.lower()
    if "retry" not in lowered and "wait" not in lowered and "try again" not in lowered:
        return None
    match = _RETRY_AFTER.search(lowered)
    if match is None:
        return None
    value = float(match.group(1) or match.group(3))
    unit = match.group(2) or match.group(4) or "s"
    if unit.startswith("ms") or unit.startswith("milli"):
        return value / 1000
    if unit.startswith("m"):
        return value * 60
    return value


def _cap(text: str) -> str:
    if len(text) <= MAX_CHARS:
        return text
    half = MAX_CHARS // 2
    return text[:half] + "\n" + text[-half:]


def _prepare(raw: str, status_code: int | None) -> _Prepared:
    text = _last_exception_line(raw)
    body_text, body_status, slack_shape = _embedded_json(text)
    text = body_text if body_text is not None else text
    lowered = text.lower()
    numbers = _three_digit_numbers(lowered)
    smtp = _smtp_codes(lowered, numbers)
    status = status_code if status_code is not None else body_status
    if status is None and smtp is None:
        status = _status_in_text(lowered, numbers)
    return _Prepared(text, status, smtp, slack_shape or bool(_SLACK_SHAPE.search(lowered)))


def _last_exception_line(text: str) -> str:
    """Of a Python traceback, the final ``Name: message`` line; any other text unchanged."""
    if "Traceback (most recent call last)" not in text:
        return text
    for line in reversed(text.splitlines()):
        if line and not line[0].isspace() and _EXCEPTION_LINE.match(line):
            return line
    return text


def _embedded_json(text: str) -> tuple[str | None, int | None, bool]:
    """The text with its first JSON object/array replaced by the body's error fields, the body's status, and
    whether the body has Slack's ``ok: false`` shape. ``(None, None, False)`` when there is no parseable body."""
    start = _JSON_START.search(text)
    if start is None:
        return None, None, False
    try:
        body, end = json.JSONDecoder().raw_decode(text, start.start())
    except ValueError:
        return None, None, False
    fields: list[str] = []
    statuses: list[int] = []
    _walk(body, fields, statuses, depth=0)
    slack_shape = isinstance(body, dict) and body.get("ok") is False
    return " ".join([text[: start.start()], *fields, text[end:]]), (statuses[0] if statuses else None), slack_shape


def _walk(node: Any, fields: list[str], statuses: list[int], depth: int) -> None:
    if depth > 5:
        return
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        name = key.lower() if isinstance(key, str) else ""
        if name in _STATUS_KEYS and _is_status(value):
            statuses.append(int(value))
        elif isinstance(value, str) and name in _TEXT_KEYS:
            fields.append(value)
        elif isinstance(value, dict | list):
            _walk(value, fields, statuses, depth + 1)


def _is_status(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return isinstance(value, int) and 100 <= value <= 599


def _smtp_codes(lowered: str, numbers: list[re.Match[str]]) -> tuple[int, str | None] | None:
    """The first SMTP reply code followed by an enhanced code (``550 5.1.1``, ``(535, b'5.7.8``), else, in a text
    that says "smtp", the first reply code followed by words (``smtp permanent failure: 550 mailbox unavailable``)."""
    candidates = [(int(m.group()), m.end()) for m in numbers if m.group()[0] in "2345"]
    for code, end in candidates:
        enhanced = _SMTP_ENHANCED_AFTER.match(lowered, end)
        if enhanced:
            return code, ".".join(enhanced.groups())
    if "smtp" in lowered:
        for code, end in candidates:
            if _SMTP_REPLY_AFTER.match(lowered, end):
                return code, None
    return None


def _three_digit_numbers(lowered: str) -> list[re.Match[str]]:
    return [m for m in _NUMBER.finditer(lowered) if len(m[0]) == 3 and m[0][0] in "12345" and m[0].isdigit()]


def _status_in_text(lowered: str, numbers: list[re.Match[str]]) -> int | None:
    """The first three-digit number the text presents as an HTTP status (``status 503``, ``answered 429``,
    ``HTTP Error 401``, ``'404 Not Found'``)."""
    for match in numbers:
        before = lowered[max(0, match.start() - 24) : match.start()]
        if _HTTP_KEYWORD_BEFORE.search(before) or _HTTP_REASON_AFTER.match(lowered, match.end()):
            return int(match.group())
    return None


def _status_evidence(prepared: _Prepared) -> list[Evidence]:
    found: list[Evidence] = []
    if prepared.smtp is not None:
        reply, enhanced = prepared.smtp
        if reply in SMTP_REPLY:
            found.append(Evidence("smtp", str(reply), *SMTP_REPLY[reply]))
        if enhanced is not None:
            _klass, subject, detail = enhanced.split(".")
            rule = SMTP_ENHANCED.get(f"{subject}.{detail}") or SMTP_SUBJECT.get(subject)
            if rule is not None:
                found.append(Evidence("smtp", enhanced, *rule))
    if prepared.status is not None:
        rule = _http_rule(prepared.status)
        if rule is not None:
            found.append(Evidence("status", str(prepared.status), *rule))
    return found


def _http_rule(status: int) -> Rule | None:
    if status in HTTP_STATUS:
        return HTTP_STATUS[status]
    if 400 <= status < 500:
        return ("bad_input", 1.0)
    if status >= 500:
        return ("upstream_5xx", 2.0)
    return None


def _phrase_evidence(source: str, text: str) -> list[Evidence]:
    """Every phrase of ``PHRASES`` among the words of ``text``, once each, in order of appearance. A phrase found
    only inside a longer one (``permission`` in ``permission denied``) does not count on its own."""
    tokens = words(text)[:MAX_WORDS]
    spans: list[tuple[int, int, str]] = []
    for i in range(len(tokens)):
        gram = tokens[i]
        end = i + 1
        while True:
            if gram in PHRASES:
                spans.append((i, end, gram))
            if gram not in _PREFIXES or end >= len(tokens):
                break
            gram = f"{gram} {tokens[end]}"
            end += 1
    seen: dict[str, Evidence] = {}
    for start, end, gram in spans:
        inside = any(s <= start and end <= e and e - s > end - start for s, e, _ in spans)
        if not inside and gram not in seen:
            seen[gram] = Evidence(source, gram, *PHRASES[gram])
    return list(seen.values())


def _decide(evidence: list[Evidence]) -> tuple[ErrorClass, float]:
    scores = dict.fromkeys(CLASSES, 0.0)
    for e in evidence:
        scores[e.error_class] += e.weight
    best = max(CLASSES, key=lambda c: scores[c])  # max keeps the first of equal scores
    if scores[best] <= 0:
        return "unknown", 0.0
    return best, round(scores[best] / (sum(scores.values()) + 1.0), 2)


def _transient(error_class: ErrorClass, evidence: list[Evidence], prepared: _Prepared) -> bool:
    if prepared.smtp is not None and prepared.smtp[0] >= 400:
        return prepared.smtp[0] < 500
    if error_class == "network" and any(e.match in PERMANENT_PHRASES for e in evidence):
        return False
    return error_class in TRANSIENT


def _service(raw: str, prepared: _Prepared) -> str | None:
    lowered = raw.lower()
    for service, needles, whole_word in _SERVICE_PATTERNS:
        if any(n in lowered for n in needles) and whole_word.search(lowered):  # substring first: much faster
            return service
    return "slack" if prepared.slack_shape else None
