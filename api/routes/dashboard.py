"""The dashboard: one HTML page at ``/`` and its assets under ``/static`` (no build step, no CDN).

The page holds no data and no key: it paints its skeleton at once, then reads
the API with the key the user saved in the browser (``Authorization`` header)
and follows ``/api/stream``.
"""

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["dashboard"])


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def dashboard() -> HTMLResponse:
    return HTMLResponse(_INDEX, headers={"Cache-Control": "no-cache"})


def mount_static(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


_INDEX = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
