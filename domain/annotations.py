"""Annotation templates of alert rules, in Prometheus's notation (pure).

A rule's annotations may say what the alert saw, as Prometheus alerting rules
do: ``{{ $value }}`` is the value that made it fire, ``{{ $baseline }}`` the
series' learned baseline, ``{{ $labels.service }}`` one of the alert's labels.
A value may go through one function: ``humanize`` (SI prefixes),
``humanizePercentage`` (a ratio as a percentage), ``humanizeDuration``
(seconds) or ``printf "<format>"``, written after a pipe or, for ``printf``,
before the value:

>>> render("{{ $labels.service }} fails on {{ $value | humanizePercentage }} of calls",
...        value=0.125, labels={"service": "slack"})
'slack fails on 12.5% of calls'
>>> render('p95 {{ printf "%.0f" $value }} ms', value=2316.4)
'p95 2316 ms'

``check`` refuses what ``render`` could not fill (an unknown variable or
function, a ``{{`` that is not a template); ``render`` itself never fails: an
expression it cannot fill is left as written, so a rule stored before a
template was refused still notifies.
"""

import math
import re
from collections.abc import Callable, Mapping

_VARIABLE = r"\$(?:value|baseline|labels\.[A-Za-z_][A-Za-z0-9_]*)"
_FUNCTION = r'humanizePercentage|humanizeDuration|humanize|printf\s+"[^"{}]*"'
_EXPRESSION = re.compile(
    rf"\{{\{{\s*(?:(?P<var>{_VARIABLE})(?:\s*\|\s*(?P<fn>{_FUNCTION}))?"
    rf'|printf\s+"(?P<fmt>[^"{{}}]*)"\s+(?P<arg>{_VARIABLE}))\s*\}}\}}'
)
_ANY = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_PREFIXES = ((1e24, "Y"), (1e21, "Z"), (1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
_SMALL = ((1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"))


class TemplateError(ValueError):
    """An annotation that is not a template ``render`` can fill; the message says where."""


def check(text: str) -> None:
    """Raise TemplateError unless every ``{{ ... }}`` in ``text`` is an expression ``render`` fills."""
    for match in _EXPRESSION.finditer(text):
        fmt = _printf_format(match)
        if fmt is None:
            continue
        try:
            fmt % ("x" if "%s" in fmt else 1.0)
        except (TypeError, ValueError) as exc:
            raise TemplateError(f"{match.group(0)!r}: printf takes one number, e.g. \"%.2f\" ({exc})") from None
    rest = _EXPRESSION.sub("", text)
    bad = _ANY.search(rest)
    if bad:
        raise TemplateError(
            f"{bad.group(0)!r} is not a template: use {{{{ $value }}}}, {{{{ $baseline }}}} or "
            f"{{{{ $labels.<name> }}}}, optionally '| humanize', '| humanizePercentage', '| humanizeDuration' or "
            f"'| printf \"%.2f\"'"
        )
    if "{{" in rest or "}}" in rest:
        raise TemplateError(f"{text!r}: an unclosed '{{{{' or a stray '}}}}'")


def render(text: str, *, value: float | None, labels: Mapping[str, str] | None = None,
           baseline: float | None = None) -> str:  # fmt: skip
    """``text`` with its expressions filled in (see the module's examples)."""
    if "{{" not in text:
        return text
    labels = labels or {}

    def fill(match: re.Match[str]) -> str:
        name = match["var"] or match["arg"]
        if name == "$value":
            raw: float | str | None = value
        elif name == "$baseline":
            raw = baseline
        else:
            raw = labels.get(name.removeprefix("$labels."), "")
        fmt, fn = _printf_format(match), match["fn"]
        if fmt is not None:
            return _printf(fmt, raw)
        if fn is None:
            return _plain(raw)
        number = _number(raw)
        return _plain(raw) if number is None else _FUNCTIONS[fn](number)

    return _EXPRESSION.sub(fill, text)


def _printf_format(match: re.Match[str]) -> str | None:
    """The format of a ``printf`` expression (either form), None for any other."""
    if match["fmt"] is not None:
        return match["fmt"]
    fn = match["fn"] or ""
    return fn.partition('"')[2][:-1] if fn.startswith("printf") else None


def _number(raw: float | str | None) -> float | None:
    try:
        return None if raw is None else float(raw)
    except ValueError:
        return None


def _plain(raw: float | str | None) -> str:
    if raw is None:
        return ""
    if isinstance(raw, float):
        return f"{raw:.6g}"
    return str(raw)


def _printf(fmt: str, raw: float | str | None) -> str:
    number = _number(raw)
    try:
        return fmt % (number if number is not None and "%s" not in fmt else _plain(raw))
    except (TypeError, ValueError):
        return _plain(raw)


def humanize(v: float) -> str:
    """4 significant digits and an SI prefix: ``1234567 -> '1.235M'``, ``0.0042 -> '4.2m'``."""
    if v == 0 or not math.isfinite(v):
        return f"{v:.4g}"
    for scale, prefix in _PREFIXES:
        if abs(v) >= scale:
            return f"{v / scale:.4g}{prefix}"
    if abs(v) >= 1:
        return f"{v:.4g}"
    for scale, prefix in _SMALL:
        if abs(v) >= scale:
            return f"{v / scale:.4g}{prefix}"
    return f"{v:.4g}"


def humanize_percentage(v: float) -> str:
    return f"{v * 100:.4g}%"


def humanize_duration(seconds: float) -> str:
    """``3725 -> '1h 2m 5s'``, ``0.25 -> '250ms'``."""
    if not math.isfinite(seconds):
        return f"{seconds}"
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    if seconds < 1:
        return f"{sign}{seconds * 1000:.4g}ms"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{int(n)}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    if secs or not parts:
        parts.append(f"{secs:.4g}s" if secs != int(secs) else f"{int(secs)}s")
    return sign + " ".join(parts)


_FUNCTIONS: dict[str, Callable[[float], str]] = {
    "humanize": humanize,
    "humanizePercentage": humanize_percentage,
    "humanizeDuration": humanize_duration,
}
