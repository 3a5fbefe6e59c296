"""Safe expressions over a run's context, for step conditions and templates.

The context has three roots: ``trigger`` (the trigger payload), ``steps``
(``{step_id: {"output": ...}}`` of finished steps) and ``run`` (ids). An
expression is a restricted Python expression: literals, names of the roots,
attribute and subscript access (``steps["create-task"].output.id``),
comparisons (``== != < <= > >= in not in``), ``and``/``or``/``not``, and a
few pure functions (``lower upper len contains startswith endswith``).
Nothing else parses: no calls to arbitrary names, no dunder access, no
comprehension, so a definition can never execute code.

A missing key reads as ``None`` (``trigger.labels.vip`` on a payload without
labels is ``None``, not an error): conditions over optional fields stay short.

>>> ctx = {"trigger": {"importance": "high", "subject": "URGENT: outage"}}
>>> evaluate(compile_expression('trigger.importance == "high" and contains(lower(trigger.subject), "urgent")'), ctx)
True
>>> sorted(referenced_steps(compile_expression('steps["create-task"].output.id != None')))
['create-task']
"""

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

ROOTS = frozenset({"trigger", "steps", "run"})

FUNCTIONS: dict[str, Callable[..., Any]] = {
    "lower": lambda s: s.lower() if isinstance(s, str) else s,
    "upper": lambda s: s.upper() if isinstance(s, str) else s,
    "len": lambda v: len(v) if v is not None else 0,
    "contains": lambda haystack, needle: haystack is not None and needle in haystack,
    "startswith": lambda s, p: isinstance(s, str) and s.startswith(p),
    "endswith": lambda s, p: isinstance(s, str) and s.endswith(p),
}

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a is not None and b is not None and a < b,
    ast.LtE: lambda a, b: a is not None and b is not None and a <= b,
    ast.Gt: lambda a, b: a is not None and b is not None and a > b,
    ast.GtE: lambda a, b: a is not None and b is not None and a >= b,
    ast.In: lambda a, b: b is not None and a in b,
    ast.NotIn: lambda a, b: b is None or a not in b,
}


class ExpressionError(ValueError):
    """An expression that does not parse or uses something not allowed."""


@dataclass(frozen=True)
class Expression:
    source: str
    tree: ast.expr


def compile_expression(source: str) -> Expression:
    """Parse and check an expression; raises ExpressionError saying what is wrong."""
    try:
        tree = ast.parse(source.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse {source!r}: {exc.msg}") from exc
    _check(tree, source)
    return Expression(source, tree)


def _check(node: ast.AST, source: str) -> None:
    match node:
        case ast.Constant() | ast.Load() | ast.And() | ast.Or() | ast.Not() | ast.cmpop():
            pass
        case ast.Name(id=name) if name in ROOTS:
            pass
        case ast.Name(id=name):
            raise ExpressionError(f"unknown name {name!r} in {source!r}: use trigger, steps or run")
        case ast.Attribute(attr=attr) if attr.startswith("_"):
            raise ExpressionError(f"private attribute {attr!r} in {source!r}")
        case ast.Call(func=ast.Name(id=fn), keywords=[]) if fn in FUNCTIONS:
            for arg in node.args:
                _check(arg, source)
            return
        case ast.Call():
            raise ExpressionError(f"only {sorted(FUNCTIONS)} may be called in {source!r}")
        case (
            ast.Attribute() | ast.Subscript() | ast.Compare() | ast.BoolOp() | ast.UnaryOp(op=ast.Not())
            | ast.List() | ast.Tuple()
        ):  # fmt: skip
            pass
        case _:
            raise ExpressionError(f"{type(node).__name__} is not allowed in {source!r}")
    for child in ast.iter_child_nodes(node):
        _check(child, source)


def evaluate(expression: Expression, context: Mapping[str, Any]) -> Any:
    return _eval(expression.tree, context)


def _eval(node: ast.expr, ctx: Mapping[str, Any]) -> Any:
    match node:
        case ast.Constant(value=value):
            return value
        case ast.Name(id=name):
            return ctx.get(name)
        case ast.Attribute(value=inner, attr=attr):
            return _lookup(_eval(inner, ctx), attr)
        case ast.Subscript(value=inner, slice=key):
            return _lookup(_eval(inner, ctx), _eval(key, ctx))
        case ast.BoolOp(op=ast.And(), values=values):
            return all(_truthy(_eval(v, ctx)) for v in values)
        case ast.BoolOp(op=ast.Or(), values=values):
            return any(_truthy(_eval(v, ctx)) for v in values)
        case ast.UnaryOp(operand=operand):
            return not _truthy(_eval(operand, ctx))
        case ast.Compare(left=left, ops=ops, comparators=rights):
            current = _eval(left, ctx)
            for op, right in zip(ops, rights, strict=True):
                value = _eval(right, ctx)
                try:
                    if not _COMPARE[type(op)](current, value):
                        return False
                except TypeError:
                    return False
                current = value
            return True
        case ast.Call(func=ast.Name(id=fn), args=args):
            return FUNCTIONS[fn](*(_eval(a, ctx) for a in args))
        case ast.List(elts=items) | ast.Tuple(elts=items):
            return [_eval(i, ctx) for i in items]
    raise ExpressionError(f"cannot evaluate {type(node).__name__}")  # unreachable after _check


def _lookup(container: Any, key: Any) -> Any:
    if isinstance(container, Mapping):
        return container.get(key)
    if isinstance(container, list | tuple) and isinstance(key, int) and -len(container) <= key < len(container):
        return container[key]
    return None


def _truthy(value: Any) -> bool:
    return bool(value)


def referenced_steps(expression: Expression) -> set[str]:
    """Step ids the expression reads (``steps.x`` or ``steps["x"]``)."""
    found = set()
    for node in ast.walk(expression.tree):
        match node:
            case ast.Attribute(value=ast.Name(id="steps"), attr=step_id):
                found.add(step_id)
            case ast.Subscript(value=ast.Name(id="steps"), slice=ast.Constant(value=str() as step_id)):
                found.add(step_id)
    return found
