"""The dashboard: one HTML page at ``/`` and its assets under ``/static`` (no build step, no CDN).

The page holds no data and no key: it paints its skeleton at once, then reads
the API with the key the user saved in the browser (``Authorization`` header)
and follows ``/api/stream``.
"""

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["dashboard"])


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def dashboard() -> HTMLResponse:
    return HTMLResponse(_INDEX, headers={"Cache-Control": "no-cache"})


class _Revalidated(StaticFiles):
    """Assets the browser must revalidate (a cheap 304), so an upgraded server never runs with stale modules."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def mount_static(app: FastAPI) -> None:
    app.mount("/static", _Revalidated(directory=STATIC_DIR), name="static")


_INDEX = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
