"""Words and service mentions in a sentence, for service detection (``domain/intent.py``).

``tokenize`` splits a sentence into words that remember where they stand
(sentence and clause number, capitalisation); ``stem`` folds inflections
(``emails`` ``emailed`` ``emailing`` -> ``email``). ``MentionFinder`` finds the
catalog services a sentence names:

* ``name``: a service id, display name or alias, longest phrase first, also
  written together or apart (``drop box``, ``youtube``/``you tube``);
* ``misspelling``: a misspelling the catalog lists;
* ``fuzzy``: a word within edit distance 1 (2 for long words) of a name,
  when the word is not an everyday word (``trelo`` -> ``trello``);
* ``keyword``: a word or phrase that implies a service (``tweet`` ->
  ``twitter``, ``text me`` -> ``sms``).

>>> from domain.catalog import load_catalog
>>> finder = MentionFinder(load_catalog())
>>> [(m.service, m.kind) for m in finder.find(tokenize("Tweet new Evernoet notes and text me"))]
[('twitter', 'keyword'), ('evernote', 'fuzzy'), ('evernote', 'keyword'), ('sms', 'keyword')]
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from domain.catalog import Catalog

MentionKind = Literal["name", "misspelling", "fuzzy", "keyword"]
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9+@'_]*[A-Za-z0-9+]|[A-Za-z0-9]|[.;:!?,()\n]")
_SENTENCE_END = frozenset(".;!?\n")
_CLAUSE_END = frozenset(",:()")
MAX_PHRASE = 5

# Everyday words that must never be read as a misspelt service name.
EVERYDAY = frozenset(
    """
    about above account accounts action actions activity added adding address after again alert alerts also always
    another answer anyone article articles attach attachment attachments automatically based before board boards
    business calendar campaign card cards change changed channel channels check client clients comment comments
    company contact contacts content copy create created creates creating customer customers daily data deal deals
    document documents download draft drafts email emails entries entry event events every everyone everything
    feed field file files first folder folders follow follower followers following form forms friend friends group
    groups image images important inbox insert issue issues item items label labeled labels later latest lead leads
    like liked link links list lists login mail meeting member members mention mentions message messages minute
    month monthly morning never notes notice notify number online order orders other people person phone photo
    photos picture pictures playlist post posted posts project projects record records reminder reminders reply
    report reports result results review right sales save saved schedule search send sender sending sends sheet
    share shared should simple someone something status store story subject submission submissions subscriber
    subscribers summary support table tagged task tasks their there these thing things ticket tickets time today
    track tracker trigger tweet tweets update updated updates upload uploaded video videos watch website week
    weekly which while whole would write written your yours
    """.split()
) | frozenset(
    "a an and any are as at be by for from get has have how i in is it its me my new not of on or our so the "
    "them then this to us was we what when with you".split()
)


@dataclass(frozen=True)
class Token:
    text: str
    """Lowercased."""
    stem: str
    index: int
    sentence: int
    clause: int
    capitalized: bool
    punct: bool = False


@dataclass(frozen=True)
class Mention:
    service: str
    start: int
    """Index of the first token (in the word tokens, punctuation excluded)."""
    end: int
    """One past the last token."""
    kind: MentionKind
    phrase: str


def stem(word: str) -> str:
    """A light, deterministic suffix stripper: good enough to match inflected forms to each other."""
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix, replacement, min_len in (
        ("'s", "", 3), ("ies", "y", 5), ("sses", "ss", 5), ("ing", "", 6), ("ed", "", 5), ("es", "", 5), ("s", "", 4),
    ):  # fmt: skip
        if word.endswith(suffix) and len(word) >= min_len and not (suffix == "s" and word.endswith(("ss", "us", "is"))):
            word = word[: -len(suffix)] + replacement
            break
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    if len(word) >= 4 and word[-1] == word[-2] and word[-1] not in "slz":
        word = word[:-1]  # "tagged" -> "tagg" -> "tag"
    return word


def tokenize(text: str) -> list[Token]:
    """Word tokens with their sentence and clause numbers; punctuation only moves the counters."""
    tokens: list[Token] = []
    sentence = clause = 0
    for match in _WORD.finditer(text):
        raw = match.group()
        if raw in _SENTENCE_END or raw in _CLAUSE_END:
            if _inside_word(text, match.start()):
                continue
            if tokens and raw in _SENTENCE_END:
                sentence, clause = sentence + 1, clause + 1
            elif tokens:
                clause += 1
            continue
        word = raw.lower().strip("'-_")
        if not word:
            continue
        tokens.append(Token(word, stem(word), len(tokens), sentence, clause, raw[0].isupper()))
    return tokens


def _inside_word(text: str, at: int) -> bool:
    """A dot inside ``box.net`` or ``2.1`` does not end a sentence."""
    return text[at] == "." and 0 < at < len(text) - 1 and text[at + 1].isalnum()


def _phrase_key(words: Iterable[str]) -> tuple[str, ...]:
    return tuple(stem(w) for w in words)


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def edit_distance(a: str, b: str, limit: int = 2) -> int:
    """Optimal string alignment distance (adjacent transpositions count one); ``limit + 1`` once above ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = ca != cb
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


class MentionFinder:
    """Finds the services a tokenized sentence names or implies, left to right, without overlaps."""

    def __init__(self, catalog: Catalog, everyday: Iterable[str] = EVERYDAY) -> None:
        self.catalog = catalog
        self.phrases: dict[tuple[str, ...], tuple[str, MentionKind]] = {}
        self.joined: dict[str, str] = {}
        self.fuzzy: dict[str, set[str]] = {}
        self.everyday = set(everyday)
        for service in catalog:
            for name in (service.id, service.name, *service.aliases):
                self._add(name, service.id, "name")
            for name in service.misspellings:
                self._add(name, service.id, "misspelling")
        for service in catalog:
            for keyword in service.keywords:
                self.phrases.setdefault(_phrase_key(keyword.lower().split()), (service.id, "keyword"))

    def _add(self, name: str, service_id: str, kind: MentionKind) -> None:
        words = re.findall(r"[a-z0-9+]+", name.lower())
        if not words:
            return
        self.phrases.setdefault(_phrase_key(words), (service_id, kind))
        joined = "".join(words)
        self.joined.setdefault(joined, service_id)
        if len(joined) >= 5 and kind == "name":
            for variant in _deletes(joined) | {joined}:
                self.fuzzy.setdefault(variant, set()).add(joined)

    def find(self, tokens: Sequence[Token]) -> list[Mention]:
        mentions: list[Mention] = []
        i = 0
        while i < len(tokens):
            found = self._exact(tokens, i)
            if found is None or found.end - found.start == 1:
                # "Facebook Pague": a near miss of a longer name beats the exact shorter one
                near = self._fuzzy(tokens, i)
                if near is not None and (found is None or near.end > found.end):
                    found = near
            if found is None:
                i += 1
                continue
            mentions.append(found)
            i = found.end
        return mentions

    def _exact(self, tokens: Sequence[Token], i: int) -> Mention | None:
        for length in range(min(MAX_PHRASE, len(tokens) - i), 0, -1):
            span = tokens[i : i + length]
            if length > 1 and len({t.sentence for t in span}) > 1:
                continue
            hit = self.phrases.get(tuple(t.stem for t in span))
            if hit is None and length <= 3:
                joined = self.joined.get("".join(t.text for t in span))
                hit = (joined, "name") if joined else None
            if hit:
                return Mention(hit[0], i, i + length, hit[1], " ".join(t.text for t in span))
        return None

    def _fuzzy(self, tokens: Sequence[Token], i: int) -> Mention | None:
        for length in (2, 1):
            span = tokens[i : i + length]
            if len(span) < length or len({t.sentence for t in span}) > 1:
                continue
            word = "".join(t.text for t in span)
            if len(word) < 5 or not word.isalpha() or any(t.text in self.everyday or len(t.text) < 3 for t in span):
                continue
            limit = 1 if len(word) < 8 or length > 1 else 2
            candidates = set().union(*(self.fuzzy.get(v, set()) for v in _deletes(word) | {word}))
            best = min(candidates, key=lambda c: (edit_distance(word, c, limit), c), default=None)
            if best is not None and edit_distance(word, best, limit) <= limit:
                return Mention(self.joined[best], i, i + length, "fuzzy", " ".join(t.text for t in span))
        return None
