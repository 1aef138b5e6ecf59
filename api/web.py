"""The map page at / and its assets, all served by this app (the intranet has no CDN).

Why a path route instead of StaticFiles mounts: the router registry includes routers, and
mounts do not travel through include_router. Paths are resolved and checked to stay inside
their directory, so `..` cannot escape.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse

from antt import __version__
from antt.settings import PROJECT_ROOT, get_settings
from api.problems import Problem

WEB_DIR = PROJECT_ROOT / "web"
STATIC_DIR = WEB_DIR / "static"
VENDOR_DIR = WEB_DIR / "vendor" / "node_modules"
# Vendored files that the page loads; nothing else under node_modules is served.
VENDOR_ALLOWED_SUFFIXES = {".js", ".css", ".png", ".svg", ".woff", ".woff2", ".map"}

mimetypes.add_type("font/woff2", ".woff2")
mimetypes.add_type("font/woff", ".woff")
mimetypes.add_type("text/javascript", ".js")

router = APIRouter(include_in_schema=False)


def _not_found(path: str) -> Problem:
    return Problem(404, f"Không tìm thấy tệp {path}", f"File not found: {path}")


def _inside(base: Path, relative: str) -> Path:
    target = (base / relative).resolve()
    if not target.is_file() or base.resolve() not in target.parents:
        raise _not_found(relative)
    return target


@router.get("/")
def index() -> FileResponse:
    """The map page; never cached, so a deploy is seen at once (assets carry long caching)."""
    return FileResponse(WEB_DIR / "index.html", media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})


@router.get("/static/{path:path}")
def static(path: str) -> FileResponse:
    return FileResponse(_inside(STATIC_DIR, path), headers={"Cache-Control": "no-cache"})


@router.get("/vendor/{path:path}")
def vendor(path: str) -> FileResponse:
    target = _inside(VENDOR_DIR, path)
    if target.suffix not in VENDOR_ALLOWED_SUFFIXES:
        raise _not_found(path)
    return FileResponse(target, headers={"Cache-Control": "public, max-age=86400"})


@router.get("/config.json")
def config(request: Request) -> JSONResponse:
    """What the page needs before anything else: the optional basemap and who is signed in.

    The signed-in user is looked up here (answering null instead of 401) so that a first
    visit does not produce a failed request in the browser console.
    """
    from antt.db import get_engine
    from api.deps import get_principal

    user = None
    if request.cookies.get("antt_token") or request.headers.get("Authorization"):
        token = None
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:]
        try:
            with get_engine().connect() as conn:
                p = get_principal(request, token, conn)
            user = {"username": p.username, "role": p.role, "scope_level": p.scope_level,
                    "scope_code": p.scope_code, "sees_points": p.sees_points}
        except Problem:
            user = None
    s = get_settings()
    return JSONResponse({"version": __version__, "basemap_url": s.basemap_url, "user": user,
                         "suppress_below": s.suppress_below},
                        headers={"Cache-Control": "no-store"})
