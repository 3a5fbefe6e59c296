"""Every operation of the API documents examples, and every example parses as what the route really takes or answers.

The test walks the whole generated OpenAPI, so a new route is covered as soon as it is mounted.
"""

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import routing
from pydantic import TypeAdapter, ValidationError

from api.examples import ErrorPublic, ValidationErrorPublic
from api.main import create_app
from schemas.envelope import Envelope
from schemas.registry import validate_item

JSON = "application/json"
NO_CONTENT = {"204", "304"}
SECRET_SHAPES = re.compile(r"xox[abpr]-|\bsk-[A-Za-z0-9]{16}|ghp_[A-Za-z0-9]{20}|AKIA[0-9A-Z]{16}|-----BEGIN")


@pytest.fixture(scope="module")
def app() -> Any:
    return create_app()


@pytest.fixture(scope="module")
def spec(app: Any) -> dict[str, Any]:
    return app.openapi()


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def examples_of(spec: dict[str, Any], media: dict[str, Any]) -> list[Any]:
    """Examples of a media type: its own, or those of the schema it names (for an array, of its items)."""
    if "example" in media:
        return [media["example"]]
    if media.get("examples"):
        return [e["value"] for e in media["examples"].values()]
    return schema_examples(spec, media.get("schema", {}))


def schema_examples(spec: dict[str, Any], schema: dict[str, Any]) -> list[Any]:
    schema = resolve(spec, schema)
    if schema.get("examples"):
        return list(schema["examples"])
    if schema.get("type") == "array":
        return [[example] for example in schema_examples(spec, schema.get("items", {}))]
    return [e for branch in schema.get("anyOf", []) for e in schema_examples(spec, branch)]


def missing_examples(spec: dict[str, Any]) -> list[str]:
    missing = []
    for method, path, operation in operations(spec):
        for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
            if not examples_of(spec, media):
                missing.append(f"{method} {path}: request body {media_type}")
        for code, response in operation["responses"].items():
            content = response.get("content", {})
            if not content and code not in NO_CONTENT:
                missing.append(f"{method} {path}: response {code} declares no content")
            missing += [
                f"{method} {path}: response {code} {media_type}"
                for media_type, media in content.items()
                if not examples_of(spec, media)
            ]
    return missing


def test_every_operation_has_request_success_and_error_examples(spec: dict[str, Any]) -> None:
    missing = missing_examples(spec)
    assert not missing, "operations without examples:\n" + "\n".join(missing)


def api_routes(app: Any) -> dict[tuple[str, str], routing.APIRoute]:
    found = {}
    for context in routing.iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, routing.APIRoute):
            for method in route.methods:
                found[(method, context.path)] = route
    return found


def request_problems(route: routing.APIRoute, example: Any) -> str | None:
    """Parse a request example the way the route parses its body."""
    if route.body_field is not None:
        return parse(route.body_field.field_info.annotation, example)
    # A body documented by hand (ingest reads raw bytes): one record or {"events": [...]}.
    items = example["events"] if isinstance(example, dict) and "events" in example else [example]
    outcomes = [validate_item(item) for item in items]
    wrong = [o for o in outcomes if not isinstance(o, Envelope)]
    return "; ".join(map(str, wrong)) or None


def response_model(route: routing.APIRoute, code: str) -> Any:
    declared = route.responses.get(int(code), {}).get("model") if code.isdigit() else None
    if declared is not None:
        return declared
    if code == str(route.status_code or 200) or (code == "200" and route.status_code is None):
        return route.response_model
    return ValidationErrorPublic if code == "422" else ErrorPublic


def parse(model: Any, example: Any) -> str | None:
    try:
        TypeAdapter(model).validate_json(json.dumps(example))
    except ValidationError as exc:
        return str(exc)
    return None


def test_every_example_parses_as_what_the_route_takes_or_answers(app: Any, spec: dict[str, Any]) -> None:
    routes = api_routes(app)
    wrong = []
    for method, path, operation in operations(spec):
        route = routes[(method, path)]
        for media in operation.get("requestBody", {}).get("content", {}).values():
            for example in examples_of(spec, media):
                if problem := request_problems(route, example):
                    wrong.append(f"{method} {path} request: {problem}")
        for code, response in operation["responses"].items():
            for media_type, media in response.get("content", {}).items():
                for example in examples_of(spec, media):
                    if media_type != JSON:
                        problem = None if isinstance(example, str) and example else "not a non-empty text"
                    else:
                        model = response_model(route, code)
                        problem = parse(model, example) if model is not None else None
                    if problem:
                        wrong.append(f"{method} {path} {code}: {problem}")
    assert not wrong, "examples that do not parse:\n" + "\n".join(wrong)


def test_examples_hold_no_secret_looking_values(spec: dict[str, Any]) -> None:
    text = json.dumps(spec)
    assert not SECRET_SHAPES.search(text), SECRET_SHAPES.search(text)


def test_the_walk_names_what_lacks_an_example() -> None:
    schema = {"type": "object", "properties": {"accepted": {"type": "integer"}}}
    bare = {"paths": {"/api/x": {"post": {
        "requestBody": {"content": {JSON: {"schema": schema}}},
        "responses": {"202": {"content": {JSON: {"schema": schema, "example": {"accepted": 1}}}},
                      "409": {"description": "conflict"}, "204": {"description": "gone"}},
    }}}}  # fmt: skip
    assert missing_examples(bare) == [
        "POST /api/x: request body application/json",
        "POST /api/x: response 409 declares no content",
    ]
