"""Dependencies: the app state and the caller's tenant (from the bearer key)."""

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.state import AppState

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer <key>`")


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.flowledger
    return state


def get_tenant(
    state: Annotated[AppState, Depends(get_state)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The tenant the presented key belongs to; 401 without a valid key."""
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send `Authorization: Bearer <key>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    presented = credentials.credentials.encode()
    for key, tenant in state.settings.api_keys.items():
        if secrets.compare_digest(key.encode(), presented):
            return tenant
    raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown API key", headers={"WWW-Authenticate": "Bearer"})


State = Annotated[AppState, Depends(get_state)]
Tenant = Annotated[str, Depends(get_tenant)]
