"""The evidence tables the error classifier scores with (data only; see ``domain.error_classifier``).

Every entry says which class a piece of evidence points to and how strongly
(its weight). Weights follow one scale:

* 3-4: a documented code or phrase that names the problem
  (``invalid_auth``, ``rateLimitExceeded``, ``5.7.8``, ``KeyError``);
* 2-2.5: a specific but shared phrase, or an HTTP status code with one
  usual meaning (``connection reset``, 401, 429, 5xx);
* 1-1.5: a hint that other evidence should confirm (``invalid``, 400, 403).

Phrases are matched on words: text is split at camelCase and snake_case
boundaries and lowercased, so ``rateLimitExceeded``, ``rate_limit_exceeded``
and ``Rate limit exceeded`` all contain the phrase ``rate limit``. Each
phrase counts once per source (message, error type), however often it occurs.

Sources: HTTP status semantics (RFC 9110); SMTP reply codes (RFC 5321
section 4.2) and enhanced status codes (RFC 3463, RFC 4954 for AUTH); the
error codes documented by Slack, Google APIs, GitHub, Stripe, Asana, Twilio,
Microsoft Graph, Salesforce, HubSpot, Trello, Notion, Dropbox and AWS; the
exception names of Python's standard library, requests, httpx, aiohttp and
botocore.
"""

from typing import Literal

ErrorClass = Literal[
    "credentials",
    "quota_exhausted",
    "rate_limited",
    "timeout",
    "network",
    "upstream_5xx",
    "not_found",
    "bad_input",
    "step_bug",
    "unknown",
]

CLASSES: tuple[ErrorClass, ...] = (
    "credentials",
    "quota_exhausted",
    "rate_limited",
    "timeout",
    "network",
    "upstream_5xx",
    "not_found",
    "bad_input",
    "step_bug",
    "unknown",
)
"""Every class, in the order that breaks a tie between equal scores (specific before generic)."""

TRANSIENT: frozenset[ErrorClass] = frozenset({"rate_limited", "timeout", "network", "upstream_5xx"})
"""Classes worth retrying as they are (after a delay); the others need a change first."""

Rule = tuple[ErrorClass, float]

_C: ErrorClass = "credentials"
_Q: ErrorClass = "quota_exhausted"
_R: ErrorClass = "rate_limited"
_T: ErrorClass = "timeout"
_N: ErrorClass = "network"
_U: ErrorClass = "upstream_5xx"
_F: ErrorClass = "not_found"
_B: ErrorClass = "bad_input"
_S: ErrorClass = "step_bug"

HTTP_STATUS: dict[int, Rule] = {
    400: (_B, 1.5), 401: (_C, 2.5), 402: (_B, 1.0), 403: (_C, 1.5), 404: (_F, 2.5), 405: (_B, 1.5),
    406: (_B, 1.0), 408: (_T, 2.5), 409: (_B, 1.0), 410: (_F, 2.0), 411: (_B, 1.5), 412: (_B, 1.0),
    413: (_B, 2.0), 414: (_B, 1.5), 415: (_B, 2.0), 422: (_B, 2.0), 429: (_R, 2.5), 431: (_B, 1.5),
    500: (_U, 2.5), 501: (_U, 1.0), 502: (_U, 2.5), 503: (_U, 2.5), 504: (_T, 2.5), 507: (_Q, 2.0),
    509: (_Q, 2.0),
}  # fmt: skip
"""HTTP status -> class. Any other 4xx is a weak ``bad_input``, any other 5xx ``upstream_5xx``."""

SMTP_REPLY: dict[int, Rule] = {
    421: (_U, 2.0), 450: (_U, 1.5), 451: (_U, 2.0), 452: (_Q, 2.0), 500: (_B, 2.0),
    501: (_B, 2.0), 502: (_B, 1.5), 503: (_B, 1.5), 504: (_B, 1.5), 530: (_C, 2.5), 534: (_C, 2.5),
    535: (_C, 3.0), 538: (_C, 2.0), 550: (_F, 2.0), 551: (_F, 2.0), 552: (_Q, 2.0), 553: (_B, 2.0),
    554: (_B, 1.0), 555: (_B, 2.0),
}  # fmt: skip
"""SMTP reply code (RFC 5321 4.2.3, RFC 4954 for 530/534/535/538) -> class. 454 is left out: it means a
temporary authentication failure (RFC 4954) or TLS not available (RFC 3207), so its text decides."""

SMTP_ENHANCED: dict[str, Rule] = {
    # subject.detail of class.subject.detail (RFC 3463); the class digit says transient (4) or permanent (5)
    "1.1": (_F, 3.0), "1.2": (_F, 3.0), "1.3": (_B, 3.0), "1.6": (_F, 3.0), "1.10": (_F, 3.0),
    "2.1": (_F, 2.5), "2.2": (_Q, 3.0), "2.3": (_B, 3.0), "3.1": (_Q, 2.5), "3.2": (_U, 2.5),
    "3.4": (_B, 3.0), "4.1": (_N, 2.5), "4.2": (_N, 2.5), "4.4": (_F, 2.0), "4.7": (_T, 3.0),
    "7.1": (_B, 2.0), "7.7": (_B, 2.0), "7.8": (_C, 3.5), "7.9": (_C, 3.0), "7.11": (_C, 2.0),
    "7.28": (_R, 3.0),
}  # fmt: skip

SMTP_SUBJECT: dict[str, Rule] = {
    "1": (_F, 2.0), "2": (_F, 1.5), "3": (_U, 1.5), "4": (_N, 2.0), "5": (_B, 2.0), "6": (_B, 2.0),
}  # fmt: skip
"""Fallback by subject when the detail is not in ``SMTP_ENHANCED`` (X.7.* security/policy has none)."""

PERMANENT_PHRASES: frozenset[str] = frozenset({"certificate", "cert verification", "certificate verify failed"})
"""Network evidence that another attempt will not fix (a TLS certificate the client rejects)."""

PHRASES: dict[str, Rule] = {
    # credentials: expired, revoked, missing or insufficient credentials
    "unauthorized": (_C, 2.5), "unauthenticated": (_C, 3.0), "not authorized": (_C, 2.5),
    "not authorised": (_C, 2.5), "invalid auth": (_C, 3.0), "not authed": (_C, 3.0),
    "authentication failed": (_C, 3.0), "authentication error": (_C, 3.0),
    "authentication required": (_C, 3.0), "requires authentication": (_C, 3.0),
    "invalid authentication": (_C, 3.0), "authenticate": (_C, 2.5), "auth": (_C, 1.0),
    "bad credentials": (_C, 3.0), "invalid credentials": (_C, 3.0), "credentials": (_C, 2.0),
    "credential": (_C, 2.0), "no credentials": (_C, 3.0), "credential missing": (_C, 3.0),
    "credential invalid": (_C, 3.0), "password": (_C, 2.0), "username and password": (_C, 3.0),
    "invalid token": (_C, 3.0), "bad token": (_C, 3.0), "token expired": (_C, 3.0),
    "expired token": (_C, 3.0), "token revoked": (_C, 3.0), "token has expired": (_C, 3.0),
    "token is expired": (_C, 3.0), "token is invalid": (_C, 3.0), "token invalid": (_C, 3.0),
    "access token": (_C, 1.5), "security token": (_C, 2.5), "session expired": (_C, 3.0),
    "invalid session": (_C, 3.0), "expired": (_C, 1.0), "revoked": (_C, 2.0),
    "invalid grant": (_C, 3.0), "invalid client": (_C, 3.0), "api key": (_C, 2.5),
    "key not valid": (_C, 2.0), "key invalid": (_C, 2.0), "key expired": (_C, 3.0),
    "forbidden": (_C, 1.5), "permission denied": (_C, 1.5), "permission": (_C, 1.0),
    "permission error": (_C, 2.5), "insufficient permissions": (_C, 3.0),
    "insufficient permission": (_C, 3.0), "insufficient privileges": (_C, 3.0),
    "insufficient scope": (_C, 3.0), "insufficient authentication scopes": (_C, 3.0),
    "missing scope": (_C, 3.0), "scopes": (_C, 1.5), "access denied": (_C, 2.5),
    "no permission": (_C, 2.5), "not allowed": (_C, 1.0), "account inactive": (_C, 3.0),
    "signature does not match": (_C, 3.0), "invalid signature": (_C, 3.0), "login": (_C, 1.5),
    "authorization": (_C, 1.5), "not accessible": (_C, 2.5), "restricted resource": (_C, 3.0),
    "access not granted": (_C, 2.5), "insufficient access": (_C, 3.0),
    "relay access denied": (_C, 4.0), "authentication failure": (_C, 3.0),
    # quota_exhausted: an allowance that resets daily or monthly, or storage that is full
    "quota": (_Q, 3.0), "quota exceeded": (_Q, 4.0), "over quota": (_Q, 3.0),
    "insufficient quota": (_Q, 3.0), "daily limit": (_Q, 6.0), "per day": (_Q, 5.0),
    "daily": (_Q, 1.5), "monthly": (_Q, 2.0), "usage limit": (_Q, 2.5), "usage limits": (_Q, 2.5),
    "limit exceeded": (_Q, 1.5), "limit reached": (_Q, 1.5), "request limit": (_Q, 2.5),
    "total requests": (_Q, 2.5), "mailbox full": (_Q, 3.0), "mailbox is full": (_Q, 3.0),
    "insufficient storage": (_Q, 3.0), "insufficient space": (_Q, 3.0), "storage limit": (_Q, 3.0),
    "storage quota": (_Q, 3.0), "storage allocation": (_Q, 3.0), "plan limit": (_Q, 2.5),
    "upgrade your plan": (_Q, 2.5),
    # rate_limited: too many requests for now; slow down and retry
    "rate limit": (_R, 3.0), "rate limited": (_R, 3.0), "rate limits": (_R, 3.0),
    "ratelimited": (_R, 3.0), "ratelimit": (_R, 3.0), "rate exceeded": (_R, 3.0),
    "too many requests": (_R, 3.0), "too many concurrent": (_R, 3.0), "too many connections": (_R, 2.5),
    "too many write operations": (_R, 3.0), "throttled": (_R, 3.0), "throttling": (_R, 3.0),
    "throttle": (_R, 3.0), "slow down": (_R, 3.0), "secondly": (_R, 3.0), "per minute": (_R, 4.0),
    "per second": (_R, 4.0), "per 100": (_R, 4.0), "resource exhausted": (_R, 2.0), "concurrent requests": (_R, 2.0),
    "request rate": (_R, 2.0), "throughput exceeded": (_R, 3.0), "too quickly": (_R, 2.5),
    "at a rate": (_R, 2.0), "try again later": (_R, 1.0), "retry after": (_R, 1.0),
    # timeout
    "timeout": (_T, 2.0), "timed out": (_T, 2.5), "time out": (_T, 2.0), "timedout": (_T, 2.5),
    "etimedout": (_T, 3.0), "deadline exceeded": (_T, 3.0), "deadline": (_T, 1.5),
    "took too long": (_T, 2.0), "errno 110": (_T, 2.0),
    # network: the request never got an answer at the transport level
    "connection refused": (_N, 3.0), "connection reset": (_N, 3.0), "connection aborted": (_N, 3.0),
    "connection error": (_N, 2.5), "connect error": (_N, 2.5), "connector error": (_N, 2.5),
    "connection closed": (_N, 2.5), "unexpectedly closed": (_N, 2.5), "cannot connect": (_N, 2.5),
    "could not connect": (_N, 2.5), "unable to connect": (_N, 2.5), "failed to establish": (_N, 2.5),
    "network": (_N, 2.0), "unreachable": (_N, 2.5), "no route": (_N, 3.0),
    "service not known": (_N, 3.0), "name resolution": (_N, 3.0), "nodename nor servname": (_N, 3.0),
    "getaddrinfo": (_N, 3.0), "gaierror": (_N, 3.0), "dns": (_N, 2.5), "could not resolve": (_N, 3.0),
    "resolve host": (_N, 3.0), "broken pipe": (_N, 3.0), "remote disconnected": (_N, 3.0),
    "server disconnected": (_N, 3.0), "remote end closed": (_N, 3.0), "eof occurred": (_N, 2.5),
    "ssl": (_N, 1.5), "tls": (_N, 1.5), "certificate": (_N, 2.0), "cert verification": (_N, 3.0),
    "certificate verify failed": (_N, 3.0), "protocol error": (_N, 2.0), "incomplete read": (_N, 2.0),
    "payload is not completed": (_N, 2.0), "peer closed": (_N, 2.5), "econnreset": (_N, 3.0),
    "econnrefused": (_N, 3.0), "enotfound": (_N, 3.0), "ehostunreach": (_N, 3.0),
    "socket": (_N, 1.5), "errno 104": (_N, 2.0), "errno 111": (_N, 2.0), "proxy error": (_N, 2.0),
    # upstream_5xx: the service failed on its side
    "internal server error": (_U, 3.0), "internal error": (_U, 2.5), "server error": (_U, 2.5),
    "service unavailable": (_U, 3.0), "temporarily unavailable": (_U, 2.5), "unavailable": (_U, 2.0),
    "bad gateway": (_U, 3.0), "backend error": (_U, 3.0), "upstream": (_U, 2.0),
    "fatal error": (_U, 2.0), "api error": (_U, 1.5), "overloaded": (_U, 2.5),
    "maintenance": (_U, 2.0), "internal failure": (_U, 3.0), "something went wrong": (_U, 1.5),
    "unexpected error": (_U, 1.0),
    # not_found: the thing is not there, or the account is not set up for it (misconfiguration)
    "not found": (_F, 3.0), "no such": (_F, 2.5), "does not exist": (_F, 2.5),
    "doesn t exist": (_F, 2.5), "unknown object": (_F, 3.0), "could not find": (_F, 2.5),
    "cannot find": (_F, 2.5), "user unknown": (_F, 2.5), "unknown user": (_F, 2.5),
    "not in channel": (_F, 3.0), "is archived": (_F, 2.5), "archived": (_F, 1.5),
    "mailbox unavailable": (_F, 2.5), "address rejected": (_F, 2.0), "not enabled": (_F, 2.5),
    "is disabled": (_F, 2.5), "are disabled": (_F, 2.5), "disabled": (_F, 1.5),
    "not been used": (_F, 3.0), "not verified": (_F, 2.5), "not configured": (_F, 3.0), "misconfigured": (_F, 3.0),
    "misconfiguration": (_F, 3.0), "no longer available": (_F, 2.0), "deprecated": (_F, 2.0),
    "gone": (_F, 1.5), "not shared": (_F, 2.5),
    # bad_input: the request (or the data it carried) was invalid
    "invalid": (_B, 1.0), "validation error": (_B, 3.0), "validation failed": (_B, 3.0),
    "failed validation": (_B, 3.0), "validation": (_B, 2.0), "invalid argument": (_B, 2.0),
    "invalid arguments": (_B, 2.5), "invalid value": (_B, 2.0), "invalid parameter": (_B, 2.0),
    "invalid request": (_B, 2.0), "bad request": (_B, 2.0), "malformed": (_B, 2.5),
    "missing required": (_B, 2.5), "required field": (_B, 2.0), "is required": (_B, 2.0),
    "missing input": (_B, 2.5), "missing field": (_B, 2.0), "required param": (_B, 2.5),
    "must be": (_B, 1.0), "too long": (_B, 2.0), "too large": (_B, 2.0), "too big": (_B, 2.0),
    "not a valid": (_B, 2.0), "unprocessable": (_B, 2.0), "json decode error": (_B, 3.0),
    "expecting value": (_B, 2.0), "invalid json": (_B, 3.0), "parse error": (_B, 2.0),
    "could not parse": (_B, 2.0), "failed to parse": (_B, 2.0), "cannot parse": (_B, 2.0),
    "duplicate": (_B, 1.5), "already exists": (_B, 2.0), "card declined": (_B, 3.0),
    "declined": (_B, 2.0), "insufficient funds": (_B, 2.0), "card has expired": (_B, 3.5),
    "expired card": (_B, 3.5), "incorrect": (_B, 1.5), "value error": (_B, 2.0),
    "unicode decode error": (_B, 2.5), "unsupported": (_B, 1.0), "does not match": (_B, 1.5),
    "idempotent requests": (_B, 2.0), "idempotency error": (_B, 2.5), "message size": (_B, 2.5),
    "size exceeds": (_B, 2.0), "invalid phone": (_B, 2.0), "unverified": (_B, 2.0),
    "unsubscribed": (_B, 2.5), "no text": (_B, 2.0), "failed precondition": (_B, 1.0),
    # step_bug: Python exceptions raised by a step's own code
    "key error": (_S, 3.0), "type error": (_S, 3.0), "attribute error": (_S, 3.0),
    "index error": (_S, 3.0), "name error": (_S, 3.0), "zero division": (_S, 3.0),
    "unbound local": (_S, 3.0), "recursion error": (_S, 3.0), "assertion error": (_S, 3.0),
    "not implemented error": (_S, 3.0), "syntax error": (_S, 3.0), "import error": (_S, 3.0),
    "module not found error": (_S, 3.5), "no module named": (_S, 3.0),
    "not subscriptable": (_S, 3.0), "has no attribute": (_S, 3.0), "is not defined": (_S, 3.0),
    "unsupported operand": (_S, 3.0), "positional argument": (_S, 3.0),
    "positional arguments": (_S, 3.0), "keyword argument": (_S, 3.0), "not callable": (_S, 3.0),
    "not iterable": (_S, 3.0), "index out of range": (_S, 3.0), "can only concatenate": (_S, 3.0),
    "none type": (_S, 2.0), "too many values to unpack": (_S, 3.0), "not enough values to unpack": (_S, 3.0),
    "unhashable type": (_S, 3.0), "not json serializable": (_S, 3.0), "lookup error": (_S, 2.0),
}  # fmt: skip

SERVICES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("slack", ("slack",)),
    ("github", ("github",)),
    ("stripe", ("stripe",)),
    ("asana", ("asana",)),
    ("twilio", ("twilio",)),
    ("hubspot", ("hubspot", "hubapi")),
    ("salesforce", ("salesforce", "force.com")),
    ("trello", ("trello",)),
    ("notion", ("notion",)),
    ("dropbox", ("dropbox", "dropboxapi")),
    ("microsoft-graph", ("graph.microsoft.com", "microsoft graph", "microsoftonline", "outlook.office")),
    ("google", ("googleapis", "google", "gmail")),
    ("aws", ("amazonaws", "aws", "botocore", "boto3")),
    ("smtp", ("smtp",)),
)
"""Service id -> words naming it (matched as whole words), in priority order."""
