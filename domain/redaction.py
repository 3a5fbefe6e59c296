"""Keep secrets out of the event log.

Events refer to credentials by id; the secret itself lives in a credential
store. Two guards enforce that at the schema boundary:

* ``find_secret_keys`` names mapping keys that look like they hold a secret
  (``api_key``, ``password``, ``Authorization`` ...), so free-form payload
  dicts carrying one are refused;
* ``redact`` masks well-known token formats inside free text, because error
  messages from services sometimes echo the token they rejected.

>>> redact("invalid_auth for token xoxb-123456789012-abcdefABCDEF")
'invalid_auth for token xoxb-[REDACTED]'
>>> find_secret_keys({"channel": "#ops", "headers": {"Authorization": "Bearer x"}})
['headers.Authorization']
"""

import re
from collections.abc import Mapping
from typing import Any

_SECRET_KEY = re.compile(
    r"(^|[_-])(password|passwd|secret|token|api[_-]?key|apikey|authorization|"
    r"private[_-]?key|client[_-]?secret|access[_-]?key|refresh[_-]?token|cookie)$",
    re.IGNORECASE,
)

# Prefix kept, secret part masked. Formats documented by the services themselves.
_TOKEN_PATTERNS = [
    re.compile(r"(xox[abposr]-)[A-Za-z0-9-]{10,}"),  # Slack
    re.compile(r"(gh[pousr]_)[A-Za-z0-9]{20,}"),  # GitHub
    re.compile(r"(github_pat_)[A-Za-z0-9_]{20,}"),  # GitHub fine-grained
    re.compile(r"((?:sk|rk|pk)_(?:live|test)_)[A-Za-z0-9]{10,}"),  # Stripe
    re.compile(r"(AKIA)[A-Z0-9]{16}"),  # AWS access key id
    re.compile(r"(AIza)[A-Za-z0-9_-]{30,}"),  # Google API key
    re.compile(r"(ya29\.)[A-Za-z0-9_.-]{20,}"),  # Google OAuth access token
    re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE),
    # "Basic" and "Token" are also words: a credential after them has a digit ("the token included" is prose).
    re.compile(r"((?:Basic|Token)\s+)(?=[A-Za-z._~+/=-]*[0-9])[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE),
    re.compile(r"(eyJ)[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+"),  # JWT
    re.compile(r"((?:password|passwd|api_key|apikey|token|secret)=)[^\s&\"']+", re.IGNORECASE),
]

REDACTED = "[REDACTED]"


def redact(text: str) -> str:
    """Mask every well-known token format in ``text``, keeping its prefix."""
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def find_secret_keys(value: Any, path: str = "") -> list[str]:
    """Dotted paths of keys in nested mappings/lists whose name says "secret"."""
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _SECRET_KEY.search(key) and item not in (None, ""):
                found.append(where)
            found.extend(find_secret_keys(item, where))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(find_secret_keys(item, f"{path}[{index}]"))
    return found
