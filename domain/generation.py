"""A workflow definition from a sentence and its detection (pure).

``generate(text, detection, catalog, history=...)`` turns what
``domain.intent.Detector`` found into a definition the executor accepts:

* **trigger**: the detected trigger service and function (a ``webhook`` call
  when the text names none), with the sentence's conditions as its filter
  (``important`` -> ``trigger.importance == "high"``);
* **steps**: one per action, in text order; an action the text sequences
  ("then", "after that") waits for the one before it and can use its output,
  the others have no ``needs`` and run in parallel;
* **params**: the function's parameters filled where the text says (a Slack
  ``#channel``, an e-mail address, a phone number, a quoted text, "in the X
  project") and otherwise from the trigger's payload by meaning (a title from
  the e-mail's subject, a text from its body); required parameters the text
  leaves open are listed, never invented.

With a ``History`` (the services the tenant's workflows and steps already
use), a generic service resolves to the one the user has: "email" is the
user's ``gmail`` when they use Gmail and not Outlook. Every decision is in the
``explanation``.

>>> from domain.catalog import load_catalog
>>> from domain.intent import Detector
>>> catalog = load_catalog()
>>> text = "When I get important emails, create asana tasks and notify slack"
>>> made = generate(text, Detector(catalog).detect(text), catalog, history=History({"gmail": 40}))
>>> made.definition["trigger"]
{'service': 'gmail', 'event': 'email', 'filter': 'trigger.importance == "high"'}
>>> [(s["id"], s["action"], s["needs"]) for s in made.definition["steps"]]
[('asana', 'task', []), ('slack', 'new_message', [])]
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.catalog import Catalog, Function, Service, name_key
from domain.intent import DetectedStep, Detection
from domain.intent_text import stem
from domain.patterns import Patterns

MAX_INPUT_CHARS = 2000

GENERIC_SERVICES = frozenset({"email", "sms", "phone-call", "rss", "webhook"})
"""Services that name a channel rather than a product: history may say which product the user means."""

GENERIC_TRIGGER = ("webhook", "call")
"""The trigger when the text names none: the workflow runs when its webhook is called."""

_TITLE_PARAMS = frozenset({"name", "title", "subject", "summary", "headline"})
_TEXT_PARAMS = frozenset({"text", "body", "message", "content", "description", "notes", "note", "comment", "status"})
_TRIGGER_FIELDS: Mapping[str, tuple[str, str]] = {
    "email": ("subject", "body"),
    "chat": ("text", "text"),
    "sms": ("text", "text"),
    "social": ("text", "text"),
    "forms": ("title", "answers"),
    "crm": ("name", "notes"),
    "support": ("subject", "description"),
    "calendar": ("summary", "description"),
    "ecommerce": ("title", "description"),
    "payments": ("description", "description"),
    "project-management": ("name", "notes"),
}
"""What a trigger of each category carries as its title and its text (``trigger.<field>``)."""
_DEFAULT_TRIGGER_FIELDS = ("title", "text")

_CHANNEL = re.compile(r"(?<![\w#])#([a-z0-9][a-z0-9_-]{0,79})\b", re.IGNORECASE)
_NAMED_CHANNEL = re.compile(r"\b(?:the|our|my)\s+([a-z0-9][\w-]{0,40})\s+channel\b", re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
_PHONE = re.compile(r"(?<!\w)\+?\d[\d -]{7,}\d\b")
_QUOTED = re.compile(r"[\"“]([^\"”]{1,200})[\"”]")
_PROJECT = re.compile(r"\b(?:in|to|into)\s+(?:the|my|our)\s+([\w -]{1,40}?)\s+(project|board|list)\b", re.IGNORECASE)


class GenerationError(ValueError):
    """The text describes no workflow: it names no action to take."""


@dataclass(frozen=True)
class History:
    """How often the user's workflows and steps used each service (service id -> count)."""

    services: Mapping[str, int] = field(default_factory=dict)

    def preferred(self, catalog: Catalog, service: Service) -> str | None:
        """The user's most used service of ``service``'s category, if they never used ``service`` itself."""
        if self.services.get(service.id, 0) > 0:
            return None
        same = [
            (count, sid)
            for sid, count in self.services.items()
            if count > 0 and sid != service.id and sid in catalog.services
            and catalog.services[sid].category == service.category
        ]  # fmt: skip
        return max(same)[1] if same else None


@dataclass(frozen=True)
class Generated:
    definition: dict[str, Any]
    """``{name, description, trigger, steps}``: a ``schemas.workflows.WorkflowDefinition``."""
    services: list[dict[str, Any]]
    """Each service with its role, function and confidence (and what it replaced, if history chose it)."""
    confidence: float
    alternatives: list[dict[str, Any]]
    explanation: list[str]
    missing_params: dict[str, list[str]]
    """Step id -> required parameters the text did not give."""
    templates: list[dict[str, Any]] = field(default_factory=list)
    """The tenant's frequent workflow shapes with the same trigger (from ``domain.patterns``)."""


def generate(
    text: str,
    detection: Detection,
    catalog: Catalog,
    *,
    history: History | None = None,
    patterns: Patterns | None = None,
) -> Generated:
    """The workflow the sentence describes; ``GenerationError`` when it names nothing to do.

    With ``patterns`` (mined from the tenant's workflows), other readings are
    ranked by how many of the tenant's workflows have their trigger -> first
    action pair, and the tenant's own templates for the trigger are suggested.
    """
    if not detection.actions:
        found = f"only a trigger ({detection.trigger.service})" if detection.trigger else "no service"
        raise GenerationError(f"found {found} in the text: say what should happen, e.g. 'create a task in asana'")
    explanation: list[str] = []
    services: list[dict[str, Any]] = []
    history = history or History()

    def resolve(step: DetectedStep, role: str) -> tuple[str, str | None]:
        service = catalog.services[step.service]
        chosen, function = step.service, step.function
        preferred = history.preferred(catalog, service) if step.service in GENERIC_SERVICES else None
        entry: dict[str, Any] = {"service": step.service, "role": role, "confidence": round(step.confidence, 3)}
        if preferred:
            chosen = preferred
            function = _closest_function(catalog.services[preferred], text, function, role)
            entry.update(service=preferred, replaces=step.service)
            explanation.append(
                f"'{service.name}' is read as {catalog.services[preferred].name}: your workflows use it "
                f"{history.services[preferred]} times and never {service.name}"
            )
        entry["function"] = function
        services.append(entry)
        return chosen, function

    if detection.trigger is not None:
        trigger_service, trigger_event = resolve(detection.trigger, "trigger")
        trigger_event = trigger_event or _first(catalog.services[trigger_service].triggers, "new")
        explanation.append(f"trigger: {catalog.services[trigger_service].name} '{trigger_event}'")
    else:
        trigger_service, trigger_event = GENERIC_TRIGGER
        explanation.append("no trigger named: the workflow runs when its webhook is called")
    trigger: dict[str, Any] = {"service": trigger_service, "event": trigger_event}
    if detection.conditions:
        trigger["filter"] = " and ".join(c.expression for c in detection.conditions)
        explanation.append("only when " + "; ".join(f"'{c.phrase}': {c.expression}" for c in detection.conditions))
    fields = _TRIGGER_FIELDS.get(catalog.services[trigger_service].category, _DEFAULT_TRIGGER_FIELDS)

    clauses = _clauses(text, catalog, [a.service for a in detection.actions])
    steps: list[dict[str, Any]] = []
    missing: dict[str, list[str]] = {}
    ids: list[str] = []
    for step in detection.actions:
        service_id, action = resolve(step, "action")
        service = catalog.services[service_id]
        action = action or _first(service.actions, "create")
        step_id = _unique(service_id, ids)
        needs = [ids[i] for i in step.needs]
        ids.append(step_id)
        function = next((f for f in service.actions if f.name == action), None)
        # Values in the text go to the action whose clause holds them; a lone action has the whole text.
        own_words = clauses.get(step.service) or (text if len(detection.actions) == 1 else "")
        params, open_params = _params(own_words, function, fields, needs)
        definition_step: dict[str, Any] = {"id": step_id, "service": service_id, "action": action, "params": params}
        definition_step["needs"] = needs
        steps.append(definition_step)
        if open_params:
            missing[step_id] = open_params
        after = f" after {', '.join(needs)}" if needs else ""
        explanation.append(f"step {step_id}: {service.name} '{action}'{after}")
    parallel = [s["id"] for s in steps if not s["needs"]]
    if len(parallel) > 1:
        explanation.append(f"{', '.join(parallel)} do not depend on each other and run in parallel")
    definition = {
        "name": _name(text),
        "description": text.strip()[:MAX_INPUT_CHARS],
        "trigger": trigger,
        "steps": steps,
    }
    patterns = patterns or Patterns()
    ranked = sorted(
        detection.alternatives,
        key=lambda a: (-patterns.pair_support(a.trigger, a.actions[0] if a.actions else None), -a.confidence),
    )
    support = [patterns.pair_support(a.trigger, a.actions[0] if a.actions else None) for a in ranked]
    alternatives = [
        {"trigger": a.trigger, "actions": list(a.actions), "confidence": round(a.confidence, 3), "your_workflows": n}
        for a, n in zip(ranked, support, strict=True)
    ]
    chosen = patterns.pair_support(trigger_service, steps[0]["service"])
    if ranked and support[0] > chosen:
        best = ranked[0]
        explanation.append(
            f"another reading, {best.trigger} -> {', '.join(best.actions)}, matches {support[0]}"
            f" of your workflows (this one {chosen}): see alternatives"
        )
    templates = [
        {"trigger": t.trigger, "actions": list(t.actions), "workflows": t.workflows, "runs": t.runs,
         "example_workflow_id": t.example}
        for t in patterns.templates_for(trigger_service)
    ]  # fmt: skip
    return Generated(
        definition, services, round(detection.confidence, 3), alternatives, explanation, missing, templates
    )


def _params(
    text: str, function: Function | None, fields: tuple[str, str], needs: Sequence[str]
) -> tuple[dict[str, Any], list[str]]:
    """Parameters the text gives or the trigger's payload supplies, and the required ones left open."""
    if function is None:
        return {}, []
    title_field, text_field = fields
    params: dict[str, Any] = {}
    open_params: list[str] = []
    quoted = _QUOTED.search(text)
    names = {p.name.lower() for p in function.params}
    quoted_goes_to = _TITLE_PARAMS if names & _TITLE_PARAMS else _TEXT_PARAMS
    for param in function.params:
        name = param.name.lower()
        value: Any = None
        if "channel" in name:
            value = _channel(text)
        elif name in ("to", "recipient", "email", "to_email", "address") or name.endswith("_email"):
            value = _first_match(_EMAIL, text) or _first_match(_PHONE, text)
        elif name in ("phone", "phone_number", "number", "to_number"):
            value = _first_match(_PHONE, text)
        elif name in ("project", "board", "list"):
            match = _PROJECT.search(text)
            value = match.group(1).strip() if match else None
        elif name in _TITLE_PARAMS | _TEXT_PARAMS and quoted and name in quoted_goes_to:
            value, quoted = quoted.group(1), None  # the text's own words, once
        elif name in _TITLE_PARAMS:
            value = f"{{{{ trigger.{title_field} }}}}"
        elif name in _TEXT_PARAMS:
            value = f"{{{{ trigger.{text_field} }}}}"
        if name in _TEXT_PARAMS and value is not None and needs:
            value += " " + " ".join(f"{{{{ steps.{n}.output.id }}}}" for n in needs)  # what the earlier steps made
        if value is not None:
            params[param.name] = value
        elif param.required:
            open_params.append(param.name)
    return params, open_params


_CLAUSE_BREAK = re.compile(r"[,;.!?]\s+|\s+(?:and|then|also|after that|afterwards)\s+", re.IGNORECASE)


def _clauses(text: str, catalog: Catalog, services: Sequence[str]) -> dict[str, str]:
    """The words of each action: from the clause after the previous action's clause to the one naming it.

    ``create a trello card and then post "New lead" to #sales on slack``: the
    quote and the channel belong to slack's clause, not trello's.
    """
    parts = [p for p in _CLAUSE_BREAK.split(text) if p.strip()]
    keys = [f" {name_key(p)} " for p in parts]
    found: dict[str, str] = {}
    start = 0
    for service_id in services:
        names = [f" {name_key(n)} " for n in catalog.services[service_id].names if name_key(n)]
        at = next((i for i in range(start, len(parts)) if any(n in keys[i] for n in names)), None)
        if at is None:
            continue
        found.setdefault(service_id, " ".join(parts[start : at + 1]))
        start = at + 1
    return found


def _channel(text: str) -> str | None:
    match = _CHANNEL.search(text) or _NAMED_CHANNEL.search(text)
    return f"#{match.group(1).lower()}" if match else None


def _first_match(pattern: re.Pattern[str], text: str) -> str | None:
    match = pattern.search(text)
    return match.group(0).strip() if match else None


def _first(functions: Sequence[Function], prefer: str) -> str:
    """A service's function whose name starts with ``prefer``, else its first; ``default`` when it has none."""
    if not functions:
        return "default"
    return next((f.name for f in functions if f.name.startswith(prefer)), functions[0].name)


def _closest_function(service: Service, text: str, function: str | None, role: str) -> str | None:
    """The function of ``service`` whose name and description share most words with the text and ``function``
    (the replaced service's), the shorter name on a tie (``any_new_email_in_inbox`` over ``..._labeled``)."""
    functions = service.triggers if role == "trigger" else service.actions
    if not functions:
        return None
    words = _stems(f"{text} {(function or '').replace('_', ' ')}") - _stems(service.name)

    def score(f: Function) -> tuple[int, int]:
        return len(words & _stems(f"{f.name.replace('_', ' ')} {f.description}")), -len(f.name)

    return max(functions, key=score).name


def _stems(text: str) -> set[str]:
    return {stem(w) for w in name_key(text).split()} - _STOP


_STOP = {stem(w) for w in "a an the in on of to for from by with and or is when this that i my me".split()}


def _unique(base: str, taken: Sequence[str]) -> str:
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def _name(text: str) -> str:
    """A short name: the sentence's first words."""
    words = text.strip().split()
    name = " ".join(words[:8]) + (" ..." if len(words) > 8 else "")
    return name[:256] or "generated workflow"
