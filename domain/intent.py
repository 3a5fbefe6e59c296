"""Service detection: which services a sentence describes, and in which roles.

``Detector.detect("When I get important emails, create asana tasks and notify slack")``
answers the trigger (``email``), the actions in order (``asana``, ``slack``),
each one's function, conditions on the trigger (``important`` ->
``trigger.importance == "high"``), a confidence, and other readings when it
is unsure.

How it reads a sentence:

1. ``domain/intent_text.py`` finds service mentions: names, aliases,
   misspellings, near misses and implying words (``tweet``, ``text me``).
2. Each mention gets a role from the words before it in its clause: ``when``
   ``if`` ``from`` ``for`` ``new`` mark the trigger; ``to`` ``then`` and verbs
   such as ``create`` ``send`` ``notify`` mark an action. This is the keyword
   path, and it needs no training.
3. A detector trained on labelled recipes (``Detector.train``) scores each
   mention as trigger, action or neither with a logistic model over the
   mention's service, category, kind, position, neighbouring words and the
   keyword path's verdict, and decodes the best trigger and actions.

Everything is pure and deterministic: the same text, catalog and training
examples always give the same answer.

>>> from domain.catalog import load_catalog
>>> detector = Detector(load_catalog())
>>> found = detector.detect("When I get important emails, create asana tasks and notify slack")
>>> found.trigger.service, [a.service for a in found.actions], [c.expression for c in found.conditions]
('email', ['asana', 'slack'], ['trigger.importance == "high"'])
"""

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.catalog import Catalog, Service, name_key
from domain.intent_conditions import Condition, find_conditions
from domain.intent_model import LogisticModel
from domain.intent_rules import Cue, Marked, Role, decode, keep_for_rules, mark_roles, specific_for
from domain.intent_text import Mention, MentionFinder, Token, stem, tokenize

ROLES: tuple[Role, ...] = ("trigger", "action", "none")
_SEQUENCE_WORDS = frozenset({"then", "afterwards", "after", "next"})
_EXTRA_ACTION_P = 0.5

__all__ = ["Alternative", "Condition", "DetectedStep", "Detection", "Detector", "Example", "find_conditions"]


@dataclass(frozen=True)
class DetectedStep:
    service: str
    function: str | None
    confidence: float
    needs: tuple[int, ...] = ()
    """Indices of earlier actions this one waits for (empty: independent)."""


@dataclass(frozen=True)
class Alternative:
    trigger: str | None
    actions: tuple[str, ...]
    confidence: float


@dataclass(frozen=True)
class Detection:
    trigger: DetectedStep | None
    actions: tuple[DetectedStep, ...]
    conditions: tuple[Condition, ...]
    confidence: float
    alternatives: tuple[Alternative, ...] = ()

    @property
    def services(self) -> list[str]:
        """Every service named, trigger first, each once."""
        ordered = ([self.trigger.service] if self.trigger else []) + [a.service for a in self.actions]
        return list(dict.fromkeys(ordered))

    def to_json(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger.service if self.trigger else None,
            "actions": [a.service for a in self.actions],
            "services": self.services,
            "confidence": round(self.confidence, 3),
            "trigger_function": self.trigger.function if self.trigger else None,
            "steps": [
                {
                    "service": a.service,
                    "function": a.function,
                    "needs": list(a.needs),
                    "confidence": round(a.confidence, 3),
                }
                for a in self.actions
            ],
            "conditions": [{"phrase": c.phrase, "expression": c.expression} for c in self.conditions],
            "alternatives": [
                {"trigger": alt.trigger, "actions": list(alt.actions), "confidence": round(alt.confidence, 3)}
                for alt in self.alternatives
            ],
        }


@dataclass(frozen=True)
class Example:
    """A labelled recipe: the text and its trigger and action services (and functions when known)."""

    text: str
    trigger: str
    action: str
    trigger_function: str | None = None
    action_function: str | None = None


@dataclass
class _Candidate:
    mention: Mention
    rule: Role
    cue: Cue | None
    sentence: int
    features: set[str] = field(default_factory=set)
    p_trigger: float = 0.0
    p_action: float = 0.0


class Detector:
    """Finds trigger and action services in a sentence; ``train`` adds a learned scorer to the keyword rules."""

    def __init__(
        self,
        catalog: Catalog,
        model: LogisticModel | None = None,
        function_counts: Counter[tuple[str, str, str]] | None = None,
    ) -> None:
        self.catalog = catalog
        self.finder = MentionFinder(catalog)
        self.model = model
        self.function_counts = function_counts or Counter()
        self._function_words: dict[tuple[str, str, str], frozenset[str]] = {}

    @classmethod
    def train(cls, catalog: Catalog, examples: Iterable[Example], *, epochs: int = 12, seed: int = 7) -> "Detector":
        """A detector whose mention scorer and function priors are learned from ``examples``."""
        plain = cls(catalog)
        rows: list[tuple[set[str], str]] = []
        counts: Counter[tuple[str, str, str]] = Counter()
        for example in examples:
            trigger, action = catalog.canonical(example.trigger), catalog.canonical(example.action)
            candidates = plain._candidates(tokenize(example.text))
            rows.extend(
                (c.features, role) for c, role in zip(candidates, _labels(candidates, trigger, action), strict=True)
            )
            if example.trigger_function:
                counts[(trigger, "trigger", example.trigger_function)] += 1
            if example.action_function:
                counts[(action, "action", example.action_function)] += 1
        model = LogisticModel.train(rows, classes=ROLES, epochs=epochs, seed=seed) if rows else None
        return cls(catalog, model, counts)

    @property
    def learned(self) -> bool:
        return self.model is not None

    def detect(self, text: str) -> Detection:
        tokens = tokenize(text)
        candidates = self._candidates(tokens)
        conditions = tuple(find_conditions(text))
        if not candidates:
            return Detection(None, (), conditions, 0.0)
        if self.model is not None:
            for candidate in candidates:
                probs = self.model.probabilities(candidate.features)
                candidate.p_trigger, candidate.p_action = probs["trigger"], probs["action"]
        alternatives: tuple[Alternative, ...] = ()
        first_sentence = candidates[0].sentence
        if self.model is None or any(c.cue == "when" and c.sentence == first_sentence for c in candidates):
            # a "when/if ..." clause says outright which service triggers: the rules read it as written
            trigger, actions, confidence = _decode_rules(candidates, self.catalog, scored=self.model is not None)
            alternatives = _swapped(trigger, actions, confidence)
        else:
            trigger, actions, confidence, alternatives = _decode_learned(candidates)
        steps = self._steps(tokens, actions)
        trigger_step = None
        if trigger is not None:
            service = trigger.mention.service
            trigger_step = DetectedStep(service, self._function(service, "trigger", tokens, trigger), trigger.p_trigger)
        return Detection(trigger_step, steps, conditions, confidence, alternatives)

    # -- mentions and their features ---------------------------------------------------------------

    def _candidates(self, tokens: Sequence[Token]) -> list[_Candidate]:
        mentions = [m for m in _absorb(self.finder.find(tokens)) if not self._everyday_use(tokens, m)]
        candidates = [_Candidate(m.mention, m.role, m.cue, m.sentence) for m in mark_roles(tokens, mentions)]
        seen: Counter[str] = Counter()
        for rank, candidate in enumerate(candidates):
            candidate.features = self._features(tokens, candidate, candidates, rank, seen[candidate.mention.service])
            seen[candidate.mention.service] += 1
        return candidates

    def _everyday_use(self, tokens: Sequence[Token], mention: Mention) -> bool:
        """A lowercase "box" or "square" in prose is a word, not a service, unless a preposition points at it."""
        if not self.catalog.services[mention.service].common_word or mention.kind not in ("name", "fuzzy"):
            return False
        if mention.end - mention.start > 1 or tokens[mention.start].capitalized:
            return False
        return mention.start == 0 or tokens[mention.start - 1].text not in _POINTING

    def _features(
        self, tokens: Sequence[Token], candidate: _Candidate, all_: Sequence[_Candidate], rank: int, earlier: int
    ) -> set[str]:
        m = candidate.mention
        service = self.catalog.services[m.service]
        first = tokens[m.start]
        sentence = min(first.sentence, 2)
        before = [t for t in tokens[max(0, m.start - 3) : m.start] if t.sentence == first.sentence]
        after = [t for t in tokens[m.end : m.end + 2] if t.sentence == first.sentence]
        prev1 = before[-1].stem if before else "<s>"
        prev2 = before[-2].stem if len(before) > 1 else "<s>"
        next1 = after[0].stem if after else "</s>"
        cue = candidate.cue or "-"
        same_category = any(
            c.mention.service != m.service and self.catalog.services[c.mention.service].category == service.category
            for c in all_
        )
        features = {
            f"svc={m.service}", f"cat={service.category}", f"kind={m.kind}", f"rule={candidate.rule}",
            f"sent={sentence}", f"rank={min(rank, 4)}", f"n={min(len(all_), 5)}", f"earlier={min(earlier, 2)}",
            f"prev1={prev1}", f"prev2={prev2}", f"next1={next1}", f"cue={cue}", f"sent{sentence}&rule={candidate.rule}",
            f"sent{sentence}&prev1={prev1}", f"svc={m.service}&rule={candidate.rule}",
            f"kind={m.kind}&rule={candidate.rule}", f"cat={service.category}&rule={candidate.rule}",
            f"prev2={prev2}&prev1={prev1}",
        }  # fmt: skip
        if rank == 0:
            features.add("first")
        if rank == len(all_) - 1:
            features.add("last")
        if same_category:
            features.add(f"same_category&svc={m.service}")
        if service.common_word:
            features.add(f"common&cap={first.capitalized}")
        return features

    # -- steps and functions ---------------------------------------------------------------------------

    def _steps(self, tokens: Sequence[Token], actions: Sequence[_Candidate]) -> tuple[DetectedStep, ...]:
        steps = []
        for i, action in enumerate(actions):
            needs: tuple[int, ...] = ()
            if i and _sequenced(tokens, actions[i - 1].mention, action.mention):
                needs = (i - 1,)
            service = action.mention.service
            function = self._function(service, "action", tokens, action)
            steps.append(DetectedStep(service, function, action.p_action, needs))
        return tuple(steps)

    def _function(self, service_id: str, role: Role, tokens: Sequence[Token], candidate: _Candidate) -> str | None:
        """The service's trigger or action whose words the sentence shares most, with learned priors breaking ties."""
        service = self.catalog.services[service_id]
        functions = service.triggers if role == "trigger" else service.actions
        if not functions:
            return None
        sentence = tokens[candidate.mention.start].sentence
        words = {t.stem for t in tokens if t.sentence == sentence} - _service_words(service)

        def score(name: str, description: str) -> float:
            key = (service_id, role, name)
            if key not in self._function_words:
                text = f"{name.replace('_', ' ')} {description}"
                self._function_words[key] = frozenset(stem(w) for w in name_key(text).split()) - _STOP
            overlap = len(words & self._function_words[key])
            return overlap + 0.6 * math.log1p(self.function_counts[key])

        return max(functions, key=lambda f: score(f.name, f.description)).name


_POINTING = frozenset("to from in on into via with my our".split())
_STOP = frozenset(stem(w) for w in "a an the in on of to for from by with and or new any is when this that".split())


def _service_words(service: Service) -> frozenset[str]:
    return frozenset(stem(w) for name in (service.id, service.name) for w in name_key(name).split())


def _labels(candidates: Sequence[_Candidate], trigger: str, action: str) -> list[Role]:
    """Training roles: every mention of the trigger service is the trigger, of the action service an action;
    when one service is both, its first mention is the trigger and later ones are actions."""
    labels: list[Role] = []
    seen_trigger = False
    for candidate in candidates:
        service = candidate.mention.service
        if service == trigger and service == action:
            labels.append("action" if seen_trigger else "trigger")
            seen_trigger = True
        elif service == trigger:
            labels.append("trigger")
        elif service == action:
            labels.append("action")
        else:
            labels.append("none")
    return labels


def _absorb(mentions: list[Mention]) -> list[Mention]:
    """Drop an implying word next to a name of the same service (``Twitter ... Create Tweet``)."""
    kept: list[Mention] = []
    for m in mentions:
        if m.kind == "keyword" and kept and kept[-1].service == m.service and m.start - kept[-1].end <= 3:
            continue
        kept.append(m)
    return kept


def _decode_rules(
    candidates: list[_Candidate], catalog: Catalog, *, scored: bool = False
) -> tuple[_Candidate | None, list[_Candidate], float]:
    """Keyword path (``domain/intent_rules.py``), with generic services made specific where the text allows."""
    by_mention = {id(c.mention): c for c in candidates}
    kept = keep_for_rules([Marked(c.mention, c.rule, c.cue, c.sentence) for c in candidates])
    chosen, chosen_actions = decode(kept)
    if chosen is None:
        return None, [], 0.0
    trigger = by_mention[id(chosen.mention)]
    actions = [by_mention[id(a.mention)] for a in chosen_actions]
    mentions = [c.mention for c in candidates]
    trigger = _respecified(trigger, mentions, catalog, {a.mention.service for a in actions})
    actions = [_respecified(a, mentions, catalog, {trigger.mention.service}) for a in actions]
    explicit = 0.9 if chosen.role == "trigger" else 0.6
    confidence = explicit * (0.9 if chosen_actions and chosen_actions[0].role == "action" else 0.5)
    if not scored:
        trigger.p_trigger = explicit
        for action, marked in zip(actions, chosen_actions, strict=True):
            action.p_action = 0.9 if marked.role == "action" else 0.5
    return trigger, actions, confidence


def _swapped(trigger: _Candidate | None, actions: Sequence[_Candidate], confidence: float) -> tuple[Alternative, ...]:
    """When the cue words left the roles unsure, the reading with trigger and first action exchanged."""
    if trigger is None or not actions or confidence >= 0.6 or actions[0].mention.service == trigger.mention.service:
        return ()
    rest = tuple(a.mention.service for a in actions[1:])
    return (Alternative(actions[0].mention.service, (trigger.mention.service, *rest), round(1 - confidence, 3) / 2),)


def _respecified(candidate: _Candidate, mentions: Sequence[Mention], catalog: Catalog, taken: set[str]) -> _Candidate:
    service = specific_for(candidate.mention.service, mentions, catalog, taken)
    if service == candidate.mention.service:
        return candidate
    m = candidate.mention
    return _Candidate(
        Mention(service, m.start, m.end, m.kind, m.phrase), candidate.rule, candidate.cue, candidate.sentence
    )


def _unique_services(candidates: Iterable[_Candidate], exclude: str | None = None) -> list[_Candidate]:
    seen = {exclude} if exclude else set()
    unique = []
    for candidate in candidates:
        if candidate.mention.service not in seen:
            seen.add(candidate.mention.service)
            unique.append(candidate)
    return unique


def _decode_learned(
    candidates: list[_Candidate],
) -> tuple[_Candidate | None, list[_Candidate], float, tuple[Alternative, ...]]:
    """Learned path: the pair (trigger mention, action mention) with the highest joint score, plus other
    services after it that the model calls actions with probability at least one half, in text order."""
    pairs = []
    for t in candidates:
        for a in candidates:
            if a is not t and not (a.mention.service == t.mention.service and a.mention.start < t.mention.start):
                pairs.append((t.p_trigger * a.p_action, t, a))
    if not pairs:
        only = candidates[0]
        if only.p_trigger >= only.p_action:
            return only, [], only.p_trigger, ()
        return None, [only], only.p_action, ()
    pairs.sort(key=lambda p: -p[0])
    total = sum(p[0] for p in pairs) or 1.0
    best, trigger, primary = pairs[0]
    extra = [
        c
        for c in candidates
        if c is not trigger and c is not primary and c.p_action >= _EXTRA_ACTION_P and c.p_action > c.p_trigger
    ]
    extra = [
        a
        for a in _unique_services(extra, exclude=primary.mention.service)
        if a.mention.service != trigger.mention.service and a.mention.start > primary.mention.start
    ]
    actions = [primary, *extra]
    confidence = best / total
    alternatives: list[Alternative] = []
    seen = {(trigger.mention.service, primary.mention.service)}
    for score, t, a in pairs[1:]:
        key = (t.mention.service, a.mention.service)
        repeats = t is trigger and any(a.mention.service == x.mention.service for x in actions)
        if key in seen or repeats or score / total < 0.05:
            continue
        seen.add(key)
        alternatives.append(Alternative(t.mention.service, (a.mention.service,), score / total))
        if len(alternatives) == 2:
            break
    return trigger, actions, confidence, tuple(alternatives) if confidence < 0.8 else ()


def _sequenced(tokens: Sequence[Token], before: Mention, after: Mention) -> bool:
    """ "create a card, then post its link": the second action waits for the first."""
    return any(t.text in _SEQUENCE_WORDS for t in tokens[before.end : after.start])
