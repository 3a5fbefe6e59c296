import re

import orjson
import pytest
from pydantic import ValidationError

from domain.dag import DefinitionError, plan_definition
from domain.expressions import ExpressionError, compile_expression, evaluate
from domain.templates import TemplateError, referenced_steps, render
from schemas.workflows import WorkflowDefinition

CTX = {
    "trigger": {"subject": "URGENT: db down", "importance": "high", "labels": ["ops", "db"], "size": 12},
    "steps": {"create-task": {"output": {"id": 42, "url": "https://x/42"}}},
    "run": {"id": "run-1"},
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('trigger.importance == "high"', True),
        ('trigger.importance != "high"', False),
        ('"ops" in trigger.labels', True),
        ('"hr" not in trigger.labels', True),
        ("trigger.size > 10 and trigger.size <= 12", True),
        ("trigger.missing.deeper == None", True),
        ("trigger.missing > 3", False),
        ('contains(lower(trigger.subject), "urgent")', True),
        ('steps["create-task"].output.id == 42', True),
        ("not trigger.labels", False),
        ("len(trigger.labels) == 2", True),
        ('startswith(trigger.subject, "URGENT") or False', True),
        ('trigger.size > "a"', False),
    ],
)
def test_expressions(source, expected):
    assert evaluate(compile_expression(source), CTX) is expected


@pytest.mark.parametrize(
    "source",
    ["__import__('os')", "open('x')", "trigger.__class__", "x == 1", "[a for a in trigger]", "lambda: 1",
     "trigger.size +", "trigger.size + 1"],
)  # fmt: skip
def test_unsafe_or_broken_expressions_are_refused(source):
    with pytest.raises(ExpressionError):
        compile_expression(source)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("{{ trigger.subject }}", "URGENT: db down"),
        ("Task {{ steps.create-task.output.id }} for {{ run.id }}", "Task 42 for run-1"),
        ("{{ trigger.labels }}", ["ops", "db"]),
        ("{{ trigger.labels.1 }}", "db"),
        ("{{ trigger.nothing }}", None),
        ("x{{ trigger.nothing }}y", "xy"),
        ({"a": ["{{ trigger.size }}", {"b": "{{ lower(trigger.importance) }}"}]}, {"a": [12, {"b": "high"}]}),
        (7, 7),
    ],
)
def test_render(params, expected):
    assert render(params, CTX) == expected


def test_referenced_steps_from_paths_and_expressions():
    params = {"a": "{{ steps.one.output }}", "b": ['{{ steps["two"].output.x }}'], "c": "{{ trigger.x }}"}
    assert referenced_steps(params) == {"one", "two"}
    with pytest.raises(TemplateError):
        referenced_steps({"a": "{{ secrets.token }}"})


def definition(*steps):
    return WorkflowDefinition.model_validate(
        {"name": "wf", "trigger": {"service": "gmail", "event": "new_email"}, "steps": list(steps)}
    )


def step(step_id, **extra):
    return {"id": step_id, "service": "slack", "action": "post_message", **extra}


def test_dependencies_come_from_needs_params_and_conditions():
    plan = plan_definition(
        definition(
            step("a"),
            step("b", params={"text": "{{ steps.a.output.text }}"}),
            step("c", needs=["a"]),
            step("d", when='steps.c.output.ok == True and steps["b"].output.ok'),
            step("e"),
        )
    )
    assert plan.dependencies == {
        "a": frozenset(), "b": {"a"}, "c": {"a"}, "d": {"b", "c"}, "e": frozenset(),
    }  # fmt: skip
    assert plan.order == ("a", "e", "b", "c", "d")
    assert plan.ready(done={"a"}, started={"e"}) == ["b", "c"]
    assert plan.dependents("a") == {"b", "c", "d"}
    assert plan.dependents("e") == set()


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        ([step("a", needs=["b"]), step("b", needs=["a"])], "cycle"),
        ([step("a", needs=["ghost"])], "unknown steps ['ghost']"),
        ([step("a", params={"x": "{{ steps.a.output }}"})], "depends on itself"),
        ([step("a"), step("a")], "repeat"),
        ([step("a", when="import os")], "when"),
        ([step("a", params={"x": "{{ nope.x }}"})], "params"),
    ],
)
def test_invalid_definitions_are_refused_with_reasons(steps, problem):
    with pytest.raises(DefinitionError) as info:
        plan_definition(definition(*steps))
    assert problem in str(info.value)


@pytest.mark.parametrize(
    ("extra", "ttl"),
    [({}, None), ({"cache": True}, 300.0), ({"cache": True, "cache_ttl_s": 60}, 60.0), ({"cache": False}, None)],
)
def test_cache_ttl_defaults_to_five_minutes_for_cached_steps(extra, ttl):
    assert definition(step("a", **extra)).steps[0].cache_ttl == ttl


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"cache_ttl_s": 60}, "cache_ttl_s is set but cache is false"),
        ({"cache": False, "cache_ttl_s": 60}, "cache_ttl_s is set but cache is false"),
        ({"cache": True, "cache_ttl_s": 0}, "greater than 0"),
    ],
)
def test_cache_settings_are_refused_with_a_clear_reason(extra, problem):
    with pytest.raises(ValidationError, match=problem):
        definition(step("a", **extra))


def test_templates_in_fallback_params_are_dependencies():
    fallback = {"service": "discord", "params": {"content": "{{ steps.b.output.text }}"}}
    plan = plan_definition(definition(step("a"), step("b"), step("c", params={"x": "{{ steps.a.output }}"},
                                                                 fallback=fallback)))  # fmt: skip
    assert plan.dependencies["c"] == {"a", "b"}
    plan = plan_definition(definition(step("a"), step("c", fallback={"service": "discord"})))
    assert plan.dependencies["c"] == frozenset()


@pytest.mark.parametrize(
    ("fallback", "problem"),
    [
        ({"service": "discord", "params": {"x": "{{ steps.ghost.output }}"}}, "unknown steps ['ghost']"),
        ({"service": "discord", "params": {"x": "{{ nope.x }}"}}, "fallback params"),
        ({"service": "discord", "params": {"x": "{{ steps.a.output }}"}}, "depends on itself"),
    ],
)
def test_invalid_fallback_templates_are_refused(fallback, problem):
    with pytest.raises(DefinitionError, match=re.escape(problem)):
        plan_definition(definition(step("a", fallback=fallback)))


@pytest.mark.parametrize(
    ("fallback", "problem"),
    [
        ({"service": "slack"}, "fallback calls the step's own service and action again"),
        ({"service": "slack", "action": "post_message"}, "fallback calls the step's own service and action again"),
        ({"service": "discord", "params": {"token": "x"}}, "secret-looking keys"),
        ({"service": "Discord"}, "fallback.service"),
        ({"action": "send"}, "fallback.service"),
    ],
)
def test_fallbacks_are_refused_with_a_clear_reason(fallback, problem):
    with pytest.raises(ValidationError, match=re.escape(problem)):
        definition(step("a", fallback=fallback))


def test_a_fallback_on_the_same_service_may_call_another_action():
    [only] = definition(step("a", fallback={"service": "slack", "action": "send_dm"})).steps
    assert only.fallback is not None and only.fallback.action == "send_dm"


def test_a_definition_stored_before_a_field_existed_is_still_the_same_definition():
    from api.routes.workflows import same_definition

    current = definition(step("a", params={"x": 1})).model_dump(mode="json")
    older = orjson.loads(orjson.dumps(current))
    for field in ("cache_ttl_s", "fallback"):
        del older["steps"][0][field]
    assert same_definition(older, current)
    older["steps"][0]["params"] = {"x": 2}
    assert not same_definition(older, current)
