"""GET /exports/map: the Folium report map of a commune or province as standalone HTML (or PNG).

Report maps hold aggregates only, so every signed-in role may make one; the area must lie in
the caller's scope.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from antt.db import get_engine
from api.deps import Principal, get_principal
from api.problems import Problem
from api.readroute import read_engine
from web.report import ReportError, build_report_map, render_html, screenshot

router = APIRouter(tags=["exports"])


def _check_scope(principal: Principal, commune: str | None, province: str | None) -> None:
    """Commune-scoped accounts export their commune; province-scoped ones their province."""
    if principal.scope_level == "all" or principal.scope_code is None:
        return
    if principal.scope_level == "commune" and commune == principal.scope_code:
        return
    if principal.scope_level == "province":
        from sqlalchemy import text

        if province == principal.scope_code:
            return
        if commune:
            with get_engine().connect() as conn:
                prov = conn.execute(text("SELECT province_code FROM admin_unit WHERE level='commune' "
                                         "AND code=:c AND valid_to IS NULL"), {"c": commune}).scalar()
            if prov == principal.scope_code:
                return
    raise Problem(403, "Đơn vị nằm ngoài phạm vi tài khoản", "The unit is outside the account's scope")


def _render(engine, commune: str | None, province: str | None, on: dt.date | None,
            start: dt.date | None, end: dt.date | None, as_png: bool) -> bytes:
    try:
        html = render_html(build_report_map(engine, commune=commune, province=province, on=on,
                                            start=start, end=end))
    except ReportError as exc:
        status = 404 if "Không tìm thấy" in str(exc) else 422
        vi, _, en = str(exc).partition(" / ")
        raise Problem(status, vi, en or vi) from exc
    if not as_png:
        return html.encode("utf-8")
    with tempfile.TemporaryDirectory(prefix="antt-export-") as tmp:
        page = Path(tmp) / "map.html"
        page.write_text(html, encoding="utf-8")
        return screenshot(page, Path(tmp) / "map.png").read_bytes()


@router.get("/exports/map", summary="Bản đồ báo cáo độc lập / standalone report map",
            response_class=HTMLResponse)
async def export_map(
    request: Request,
    commune: str | None = Query(None, description="Mã xã / commune code", pattern=r"^\d{5}$"),
    province: str | None = Query(None, description="Mã tỉnh / province code", pattern=r"^\d{2}$"),
    format: str = Query("html", pattern="^(html|png)$", description="html | png"),
    date: dt.date | None = Query(None, description="Reference date (default today)"),
    start: dt.date | None = Query(None), end: dt.date | None = Query(None),
    principal: Principal = Depends(get_principal),
) -> Response:
    if bool(commune) == bool(province):
        raise Problem(422, "Cần đúng một tham số commune hoặc province",
                      "Give exactly one of the parameters commune, province")
    _check_scope(principal, commune, province)
    body = await run_in_threadpool(_render, read_engine(request), commune, province, date, start, end,
                                   format == "png")  # a replica when one is fit (api/readroute.py)
    name = f"antt-{commune or province}.{format}"
    media = "image/png" if format == "png" else "text/html; charset=utf-8"
    return Response(body, media_type=media,
                    headers={"Content-Disposition": f'inline; filename="{name}"',
                             "Cache-Control": "private, no-store"})
