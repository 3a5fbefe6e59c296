"""The connector interface and its error hierarchy.

ConnectorError              root; every failure of a step call
├── RetryableError          worth another attempt (429, 5xx, timeouts, network)
└── PermanentError          never worth another attempt (400, 401, 404, bad params)

A connector receives a ``StepCall`` (parameters already rendered, credential
named by id, idempotency key per step attempt) and returns the step's output
as a JSON object, or raises a ``ConnectorError`` whose fields become the
``error`` of a ``StepFailed`` event. Connectors never see a secret unless they
ask the credential store for it, and never put one in an error message.
"""

from dataclasses import dataclass, field
from typing import Any, Protocol


class ConnectorError(Exception):
    retryable: bool | None = None
    """None: let the retry policy decide from the error class."""

    def __init__(
        self,
        message: str,
        *,
        error_type: str | None = None,
        status_code: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type or type(self).__name__
        self.status_code = status_code
        self.retry_after_s = retry_after_s


class RetryableError(ConnectorError):
    retryable = True


class PermanentError(ConnectorError):
    retryable = False


@dataclass(frozen=True)
class StepCall:
    tenant_id: str
    workflow_id: str
    run_id: str
    step_id: str
    attempt: int
    service: str
    action: str
    params: dict[str, Any] = field(default_factory=dict)
    credential_id: str | None = None
    timeout_s: float = 30.0

    @property
    def idempotency_key(self) -> str:
        """Same for every delivery of one attempt; services use it to deduplicate."""
        return f"{self.tenant_id}:{self.run_id}:{self.step_id}:{self.attempt}"


class Connector(Protocol):
    async def call(self, call: StepCall) -> dict[str, Any]:
        """Perform the action; return its output or raise ConnectorError."""
        ...
