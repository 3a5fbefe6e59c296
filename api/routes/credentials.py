"""Credentials: store a service secret under an id that steps name.

The secret goes into the encrypted credential store the connectors read; it
is never published as an event, stored in ClickHouse, returned, or logged.
An OAuth credential (``access_token``, ``refresh_token``, ``token_url``,
``expires_at``) is refreshed by the connectors when it expires or a service
refuses its access token (see ``domain.oauth``); refreshed tokens stay
write-only too.
"""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api import examples
from api.deps import State, Tenant
from api.routes.runs import IdPath
from domain.oauth import problems

router = APIRouter(prefix="/api/credentials", tags=["credentials"])


class CredentialIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"secret": {"token": "<your Asana personal access token>"}},
        {"secret": {"refresh_token": "<refresh token>", "client_id": "<client id>",
                    "client_secret": "<client secret>", "token_url": "https://oauth2.googleapis.com/token"}},
    ]})  # fmt: skip

    secret: Annotated[
        dict[str, str],
        Field(
            min_length=1,
            max_length=16,
            description='For example `{"token": "…"}`, `{"username": "…", "password": "…"}`, or OAuth: '
            '`{"access_token": "…", "refresh_token": "…", "token_url": "https://…/token", '
            '"expires_at": "2026-01-01T00:00:00Z"}` (optionally `client_id`, `client_secret`, `scope`; '
            "without `access_token` the first call refreshes first; without `token_url` the service's profile "
            "must know its token endpoint).",
        ),
    ]


class CredentialIdsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"credential_ids": ["asana-team", "slack-workspace"]}]})

    credential_ids: list[str]


@router.put("/{credential_id}", status_code=status.HTTP_204_NO_CONTENT, responses={422: examples.error(
    "not a usable secret", "token_url must be an http(s) URL")})
async def put_credential(credential_id: IdPath, body: CredentialIn, state: State, tenant: Tenant) -> Response:
    """Create or replace a credential (write-only: it can be used and deleted, never read back)."""
    wrong = problems(body.secret)
    if wrong:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "; ".join(wrong))
    await run_in_threadpool(state.credentials.put, tenant, credential_id, body.secret)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("", response_model=CredentialIdsPublic)
async def list_credentials(state: State, tenant: Tenant) -> CredentialIdsPublic:
    return CredentialIdsPublic(credential_ids=await run_in_threadpool(state.credentials.ids, tenant))


@router.delete("/{credential_id}", status_code=status.HTTP_204_NO_CONTENT, responses={404: examples.error(
    "unknown", "credential 'asana-team' not found")})
async def delete_credential(credential_id: IdPath, state: State, tenant: Tenant) -> Response:
    if not await run_in_threadpool(state.credentials.delete, tenant, credential_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"credential '{credential_id}' not found")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
