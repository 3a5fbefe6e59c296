"""Trigger conditions a sentence states: "important", "starred", "with attachments", "labeled X",
"containing 'invoice'", "from a@b.com", "over $100".

Each becomes a filter in the expression language of ``domain/expressions.py``.

>>> [c.expression for c in find_conditions("When I get important emails labeled 'billing'")]
['trigger.importance == "high"', 'contains(trigger.labels, "billing")']
"""

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Condition:
    phrase: str
    """The words the condition was read from."""
    expression: str
    """A trigger filter in the expression language of ``domain/expressions.py``."""


_QUOTED = r"[\"'“‘]([^\"'”’]{1,60})[\"'”’]"
_CONDITIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(important|high[- ]priority|priority)\b"), 'trigger.importance == "high"'),
    (re.compile(r"\b(urgent)\b"), 'contains(lower(trigger.subject), "urgent")'),
    (re.compile(r"\b(starred|star(?:s)? an?)\b"), "trigger.starred == True"),
    (re.compile(r"\b(unread)\b"), "trigger.unread == True"),
    (re.compile(r"\b(with (?:an |a )?attachments?|that have attachments?)\b"), "trigger.has_attachment == True"),
)
_LABEL = re.compile(r"\b(?:labell?ed|tagged|with (?:the )?label)\s+(" + _QUOTED + r"|@?[\w-]+)")
_CONTAINING = re.compile(
    r"\b(?:contain(?:s|ing)?|mention(?:s|ing)?|with the (?:word|keyword|hashtag)|matching)\s+("
    + _QUOTED
    + r"|#?[\w-]+)"
)
_PRONOUNS = frozenset("me you us them him her it my our your a an the".split())
_FROM_ADDRESS = re.compile(r"\bfrom\s+([\w.+-]+@[\w-]+\.[\w.]+)")
_AMOUNT = re.compile(r"\b(?:over|above|more than|greater than|at least)\s+\$?(\d+(?:\.\d+)?)")


def find_conditions(text: str) -> list[Condition]:
    """Trigger filters a sentence states: importance, stars, attachments, labels, words, senders, amounts."""
    lowered = text.lower()
    found: list[Condition] = []
    for pattern, expression in _CONDITIONS:
        match = pattern.search(lowered)
        if match:
            found.append(Condition(match.group(1), expression))
    for match in _LABEL.finditer(lowered):
        value = (match.group(2) or match.group(1)).strip("@")
        found.append(Condition(match.group(0), f"contains(trigger.labels, {_literal(value)})"))
    for match in _CONTAINING.finditer(lowered):
        value = match.group(2) or match.group(1)
        if value in _PRONOUNS:
            continue
        found.append(Condition(match.group(0), f"contains(lower(trigger.text), {_literal(value)})"))
    for match in _FROM_ADDRESS.finditer(lowered):
        found.append(Condition(match.group(0), f"trigger.sender == {_literal(match.group(1))}"))
    for match in _AMOUNT.finditer(lowered):
        found.append(Condition(match.group(0), f"trigger.amount > {float(match.group(1)):g}"))
    return found


def _literal(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
