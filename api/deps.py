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


def tenant_for(caller: str, tenant: str | None) -> str:
    """The tenant a read is about: the caller's own, or, for an operator key, the one it names in ``?tenant=``."""
    if caller != "*":
        if tenant not in (None, caller):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "this key reads its own tenant only")
        return caller
    if not tenant:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "an operator key must say which tenant: ?tenant=...")
    return tenant
