"""Payload building blocks shared by several event families."""

from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints

from domain.redaction import find_secret_keys, redact
from schemas.envelope import FrozenModel

ServiceId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]
"""A catalog service id: lowercase kebab-case slug (``google-sheets``)."""

ActionName = Annotated[str, StringConstraints(min_length=1, max_length=128)]


def _no_secrets(value: dict[str, Any]) -> dict[str, Any]:
    keys = find_secret_keys(value)
    if keys:
        raise ValueError(
            f"secret-looking keys {keys}: refer to credentials by credential_id, never put the secret in an event"
        )
    return value


SafeMapping = Annotated[dict[str, Any], AfterValidator(_no_secrets)]
"""Free-form JSON object that may not carry secrets (checked by key name)."""

RedactedText = Annotated[str, StringConstraints(max_length=4096), AfterValidator(redact)]
"""Free text (an error message, a log line) with well-known token formats masked."""


class StepError(FrozenModel):
    """What went wrong in a step, in the terms the service used."""

    type: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(
        description="Error class or exception name, e.g. 'RateLimited', 'TimeoutError'."
    )
    message: RedactedText
    status_code: int | None = Field(default=None, ge=100, le=599)
    retry_after_s: float | None = Field(default=None, ge=0)
    retryable: bool | None = Field(
        default=None, description="What the connector knows; None lets the retry policy decide from the error class."
    )
