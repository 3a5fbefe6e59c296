"""The service catalog: what a trigger or step can name, with its functions, auth, latency and cost."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel

from api.deps import Tenant
from domain.catalog import CATEGORIES, AuthType, Service, load_catalog

router = APIRouter(prefix="/api/services", tags=["services"])


class ParamPublic(BaseModel):
    name: str
    type: str
    required: bool


class FunctionPublic(BaseModel):
    name: str
    description: str
    params: list[ParamPublic]


class ServicePublic(BaseModel):
    id: str
    name: str
    category: str
    auth: AuthType
    aliases: list[str]
    misspellings: list[str]
    keywords: list[str]
    latency_ms: float
    cost_usd: float
    common_word: bool
    triggers: list[FunctionPublic]
    actions: list[FunctionPublic]


class ServicesPublic(BaseModel):
    count: int
    categories: list[str]
    services: list[ServicePublic]


def _public(service: Service) -> ServicePublic:
    return ServicePublic.model_validate(service.to_json())


@router.get("", response_model=ServicesPublic)
async def list_services(
    _: Tenant,
    category: Annotated[str | None, Query(description=f"One of: {', '.join(CATEGORIES)}")] = None,
    q: Annotated[str, Query(max_length=128, description="Part of a name, alias, keyword or function")] = "",
) -> ServicesPublic:
    """Catalog services, optionally of one category and matching `q` (best matches first)."""
    if category is not None and category not in CATEGORIES:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY, f"unknown category {category!r}: use one of {', '.join(CATEGORIES)}"
        )
    found = load_catalog().search(q, category=category)
    return ServicesPublic(count=len(found), categories=list(CATEGORIES), services=[_public(s) for s in found])


@router.get("/{service_id}", response_model=ServicePublic, responses={404: {"description": "unknown service"}})
async def get_service(_: Tenant, service_id: Annotated[str, Path(max_length=128)]) -> ServicePublic:
    """One service by id; an alias (`gcal`, `you-tube`) answers with the service it names."""
    service = load_catalog().resolve(service_id)
    if service is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"unknown service {service_id!r}: GET /api/services?q={service_id} lists services with a similar name",
        )
    return _public(service)
