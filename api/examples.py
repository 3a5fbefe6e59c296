"""OpenAPI examples: the error body, and the responses every operation shares.

Request and success examples sit on the models (``model_config =
ConfigDict(json_schema_extra={"examples": [...]})``, in the module that defines
the model); routes declare their error answers with :func:`error`, which
carries an example of the body. ``tests/unit/test_openapi_examples.py`` walks
the generated OpenAPI and parses every example with the model the route uses.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict

JSON = "application/json"

TENANT = "acme"
WORKFLOW_ID = "important-email-to-asana-slack"
RUN_ID = "run-7c1e4b9a2f3d4e5f"
AT = "2026-03-02T09:14:07.412Z"


class ErrorPublic(BaseModel):
    """What an error answer carries: a message, or an object with the message and the details."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": f"run '{RUN_ID}' not found"}]})

    detail: str | dict[str, Any]


class ValidationIssuePublic(BaseModel):
    loc: list[str | int]
    msg: str
    type: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class ValidationErrorPublic(BaseModel):
    """FastAPI's answer to a request that does not match its declared parameters or body."""

    detail: list[ValidationIssuePublic]


VALIDATION_ERROR = {
    "detail": [
        {"loc": ["body", "trigger"], "msg": "Field required", "type": "missing", "input": {"name": "Triage"}}
    ]
}
UNAUTHORIZED = {"detail": "missing API key: send `Authorization: Bearer <key>`"}


def error(description: str, detail: str | dict[str, Any]) -> dict[str, Any]:
    """A ``responses=`` entry for an error answer, with an example of its body."""
    return {"description": description, "model": ErrorPublic, "content": {JSON: {"example": {"detail": detail}}}}


def add_shared_responses(spec: dict[str, Any]) -> dict[str, Any]:
    """Examples for what FastAPI adds to operations itself: 401 for keyed routes, 422 for invalid parameters."""
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("ErrorPublic", ErrorPublic.model_json_schema())
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            if operation.get("security"):
                responses.setdefault("401", {
                    "description": "no API key, or an unknown one",
                    "content": {JSON: {"schema": {"$ref": "#/components/schemas/ErrorPublic"},
                                       "example": UNAUTHORIZED}},
                })  # fmt: skip
            media = responses.get("422", {}).get("content", {}).get(JSON, {})
            if media.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                media.setdefault("example", VALIDATION_ERROR)
    return spec


STEP_SUCCEEDED: dict[str, Any] = {
    "event_id": "0b6f3c2e-8d4a-4f1e-9c7b-5a2d1e3f4b6c",
    "type": "StepSucceeded",
    "schema_version": 1,
    "occurred_at": AT,
    "tenant_id": TENANT,
    "workflow_id": WORKFLOW_ID,
    "run_id": RUN_ID,
    "step_id": "create-task",
    "payload": {"service": "asana", "action": "task", "attempt": 1, "duration_ms": 612.4,
                "credential_id": "asana-team", "output": {"task_id": "1204938475610293"}},
}  # fmt: skip
RUN_EVENTS: list[dict[str, Any]] = [
    {"event_id": "5e1d2c3b-4a59-4867-8f9e-0a1b2c3d4e5f", "type": "RunStarted", "schema_version": 1,
     "occurred_at": "2026-03-02T09:14:06.701Z", "tenant_id": TENANT, "workflow_id": WORKFLOW_ID, "run_id": RUN_ID,
     "payload": {"trigger_service": "gmail", "inputs": {"subject": "Contract renewal due Friday"}}},
    {"event_id": "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", "type": "StepStarted", "schema_version": 1,
     "occurred_at": "2026-03-02T09:14:06.800Z", "tenant_id": TENANT, "workflow_id": WORKFLOW_ID, "run_id": RUN_ID,
     "step_id": "create-task", "payload": {"service": "asana", "action": "task", "attempt": 1,
                                           "credential_id": "asana-team"}},
    STEP_SUCCEEDED,
]  # fmt: skip
