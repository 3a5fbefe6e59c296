"""The service catalog: what a trigger or step can name, with its functions, auth, latency and cost."""

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict

from api import examples
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


ASANA: dict[str, Any] = {
    "id": "asana", "name": "Asana", "category": "project-management", "auth": "oauth2", "aliases": [],
    "misspellings": ["assana", "asanna", "asna"], "keywords": [], "latency_ms": 600.0, "cost_usd": 0.0,
    "common_word": False,
    "triggers": [{"name": "task", "description": "Fires when a task is added or changes in Asana.",
                  "params": [{"name": "project", "type": "string", "required": False}]}],
    "actions": [{"name": "task", "description": "Creates or updates a task in Asana.",
                 "params": [{"name": "project", "type": "string", "required": False},
                            {"name": "name", "type": "string", "required": True},
                            {"name": "due_date", "type": "datetime", "required": False},
                            {"name": "assignee", "type": "string", "required": False}]}],
}  # fmt: skip


class ServicePublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ASANA]})

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
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"count": 1, "categories": ["chat", "email", "project-management"], "services": [ASANA]}
    ]})  # fmt: skip

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


@router.get("/{service_id}", response_model=ServicePublic, responses={404: examples.error(
    "unknown service", "unknown service 'asanna-pro': GET /api/services?q=asanna-pro lists services with a similar name"
)})
async def get_service(_: Tenant, service_id: Annotated[str, Path(max_length=128)]) -> ServicePublic:
    """One service by id; an alias (`gcal`, `you-tube`) answers with the service it names."""
    service = load_catalog().resolve(service_id)
    if service is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"unknown service {service_id!r}: GET /api/services?q={service_id} lists services with a similar name",
        )
    return _public(service)
