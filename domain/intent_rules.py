"""The keyword path of service detection: roles from the words around each mention, no learning.

A mention's *cue* is the nearest role word before it in its clause:

* ``when``: ``when whenever if after once`` (a trigger, surely: a condition clause);
* ``from``: ``from`` (a trigger, surely);
* ``new``: ``new for each every`` (a trigger, probably);
* ``to``: ``to into then as`` (an action, surely);
* ``verb``: ``create send add post notify save ...`` (an action, probably).

Within a sentence without another trigger, "VERB X to Y" makes X the trigger
(``Add Zoho CRM leads to MailChimp``), and "new X from Y" makes X the action
(``New Salesforce lead from AWeber subscriber``).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from domain.catalog import Catalog
from domain.intent_text import Mention, Token, stem

Role = Literal["trigger", "action", "none"]
Cue = Literal["when", "from", "new", "to", "verb"]

_CUE_WORDS: dict[Cue, str] = {
    "when": "when whenever if after once",
    "from": "from",
    "new": "new for each every",
    "to": "to into then as",
    "verb": """create add send post notify save tell ping alert log append copy upload update share publish make remind
        text email tweet call invite subscribe store sync backup back put push write record insert message draft start
        open file turn set mute track convert forward archive""",
}
CUES: dict[str, Cue] = {stem(w): cue for cue, words in _CUE_WORDS.items() for w in words.split()}
TRIGGER_CUES: frozenset[Cue] = frozenset({"when", "from", "new"})
GENERIC = frozenset({"email", "sms"})
"""Services that also name a kind of channel: a more specific one named in the same text replaces them."""
_LOOKBACK = 6
_TRIGGER_RANK = {"when": 0, "from": 1, "new": 2}


@dataclass(frozen=True)
class Marked:
    mention: Mention
    role: Role
    cue: Cue | None
    sentence: int


def cue_of(tokens: Sequence[Token], mention: Mention) -> Cue | None:
    """The closest role word at most six words before the mention in its clause, else a "when" further back."""
    clause = tokens[mention.start].clause
    for distance, token in enumerate(reversed(tokens[: mention.start])):
        if token.clause != clause:
            break
        cue = CUES.get(token.stem)
        if cue is not None and (distance < _LOOKBACK or cue == "when"):
            return cue
    return None


def mark_roles(tokens: Sequence[Token], mentions: Sequence[Mention]) -> list[Marked]:
    marked = [_mark(tokens, m) for m in mentions]
    for i, first in enumerate(marked):
        same = [m for m in marked if m.sentence == first.sentence]
        later = same[same.index(first) + 1 :]
        if first.cue == "verb" and any(m.cue == "to" for m in later) and not any(m.role == "trigger" for m in same):
            marked[i] = Marked(first.mention, "trigger", first.cue, first.sentence)
        elif first.cue == "new" and any(m.cue in ("when", "from") for m in later):
            marked[i] = Marked(first.mention, "action", first.cue, first.sentence)
    return marked


def _mark(tokens: Sequence[Token], mention: Mention) -> Marked:
    sentence = tokens[mention.start].sentence
    clause = [t for t in tokens[: mention.start] if t.clause == tokens[mention.start].clause]
    if clause and CUES.get(clause[0].stem) == "when":
        return Marked(mention, "trigger", "when", sentence)  # everything in "when a row is added to X" is the trigger
    cue = cue_of(tokens, mention)
    if cue is not None:
        return Marked(mention, "trigger" if cue in TRIGGER_CUES else "action", cue, sentence)
    if clause and CUES.get(clause[0].stem) == "from":
        return Marked(mention, "trigger", "from", sentence)
    if mention.kind == "keyword" and CUES.get(tokens[mention.start].stem) == "verb":
        return Marked(mention, "action", None, sentence)  # "tweet it", "text me"
    return Marked(mention, "none", None, sentence)


def keep_for_rules(marked: Sequence[Marked]) -> list[Marked]:
    """Implying words count only where names are scarce: not in a sentence naming two services, nor beside
    a name of their own service."""
    named: dict[int, set[str]] = {}
    for m in marked:
        if m.mention.kind != "keyword":
            named.setdefault(m.sentence, set()).add(m.mention.service)
    return [
        m
        for m in marked
        if m.mention.kind != "keyword"
        or (len(named.get(m.sentence, ())) < 2 and m.mention.service not in named.get(m.sentence, ()))
    ]


def has_condition_clause(marked: Sequence[Marked]) -> bool:
    """Some mention sits in a "when/if ..." clause: the sentence says outright what triggers what."""
    return any(m.cue == "when" for m in marked)


def decode(marked: Sequence[Marked]) -> tuple[Marked | None, list[Marked]]:
    """The trigger and the actions in order: from the first sentence that has both, else from the whole text."""
    for sentence in sorted({m.sentence for m in marked}):
        trigger, actions = _decode_span([m for m in marked if m.sentence == sentence], strict=True)
        if trigger and actions:
            return trigger, actions
    return _decode_span(list(marked), strict=False)


def _decode_span(span: list[Marked], *, strict: bool) -> tuple[Marked | None, list[Marked]]:
    """``strict``: only when some mention of the span has a cue, and it yields a trigger and an action."""
    if not span or (strict and all(m.role == "none" for m in span)):
        return None, []
    ranked = sorted(span, key=lambda m: {"when": 0, "new": 1}.get(m.cue or "", 2) if m.role == "trigger" else 3)
    trigger = ranked[0] if ranked[0].role == "trigger" else next((m for m in span if m.role == "none"), None)
    if trigger is None and not strict:
        trigger = span[0]
    candidates = [m for m in span if m.role == "action"] or [m for m in span if m.role == "none"]
    actions: list[Marked] = []
    for m in candidates:
        if m is trigger or any(a.mention.service == m.mention.service for a in actions):
            continue
        if trigger and m.mention.service == trigger.mention.service and m.mention.start < trigger.mention.start:
            continue
        if trigger and m.mention.service == trigger.mention.service and m.sentence != trigger.sentence:
            continue
        actions.append(m)
    return trigger, actions


def specific_for(service: str, mentions: Sequence[Mention], catalog: Catalog, taken: set[str]) -> str:
    """A generic service (``email``) replaced by the one specific service of its category the text names."""
    if service not in GENERIC:
        return service
    category = catalog.services[service].category
    specific = {
        m.service
        for m in mentions
        if m.kind != "keyword" and m.service not in GENERIC and m.service not in taken
        and catalog.services[m.service].category == category
    }  # fmt: skip
    return specific.pop() if len(specific) == 1 else service
