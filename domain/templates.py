"""Step parameters as templates over the trigger payload and earlier steps' outputs.

``{{ trigger.subject }}`` and ``{{ steps.create-task.output.id }}`` are dotted
paths (segments may contain ``-``); anything else between the braces is an
expression (see ``domain.expressions``). A string that is exactly one
template renders to the referenced value itself (a dict stays a dict);
otherwise the parts are rendered as text into the string.

>>> params = {"title": "Email: {{ trigger.subject }}", "parent": "{{ steps.find.output.ids }}"}
>>> render(params, {"trigger": {"subject": "Outage"}, "steps": {"find": {"output": {"ids": [1, 2]}}}})
{'title': 'Email: Outage', 'parent': [1, 2]}
>>> sorted(referenced_steps(params))
['find']
>>> render("{{ trigger.a }} and {{ trigger.b }}", {"trigger": {"a": 1, "b": 2}})
'1 and 2'
"""

import re
from collections.abc import Iterator, Mapping
from typing import Any

from domain.expressions import ROOTS, ExpressionError, compile_expression, evaluate
from domain.expressions import referenced_steps as expression_steps

_TEMPLATE = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_PATH = re.compile(r"^[A-Za-z_][\w-]*(?:\.[\w-]+)*$")


class TemplateError(ValueError):
    """A template that does not parse, or reads a root that does not exist."""


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _check_source(source: str) -> set[str]:
    """Validate one template body; returns the steps it reads."""
    if _PATH.match(source):
        root, *rest = source.split(".")
        if root not in ROOTS:
            raise TemplateError(f"unknown root {root!r} in '{{{{ {source} }}}}': use trigger, steps or run")
        return {rest[0]} if root == "steps" and rest else set()
    try:
        return expression_steps(compile_expression(source))
    except ExpressionError as exc:
        raise TemplateError(str(exc)) from exc


def referenced_steps(params: Any) -> set[str]:
    """Every step id the templates in ``params`` read; raises TemplateError on a bad template."""
    found: set[str] = set()
    for text in _strings(params):
        for source in _TEMPLATE.findall(text):
            found |= _check_source(source)
    return found


def _resolve(source: str, context: Mapping[str, Any]) -> Any:
    if _PATH.match(source):
        value: Any = context
        for segment in source.split("."):
            if isinstance(value, Mapping):
                value = value.get(segment)
            elif isinstance(value, list) and segment.lstrip("-").isdigit():
                index = int(segment)
                value = value[index] if -len(value) <= index < len(value) else None
            else:
                return None
        return value
    return evaluate(compile_expression(source), context)


def render(params: Any, context: Mapping[str, Any]) -> Any:
    """Resolve every template in ``params`` (a JSON-like value) against ``context``."""
    if isinstance(params, str):
        whole = _TEMPLATE.fullmatch(params.strip())
        if whole and "}}" not in whole.group(1):  # one template, not two at either end of the text
            return _resolve(whole.group(1), context)
        return _TEMPLATE.sub(lambda m: _text(_resolve(m.group(1), context)), params)
    if isinstance(params, Mapping):
        return {key: render(value, context) for key, value in params.items()}
    if isinstance(params, list | tuple):
        return [render(item, context) for item in params]
    return params


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
