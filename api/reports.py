"""The 6-month and yearly reports of a commune, and a province's roll-up, as DOCX, XLSX or HTML.

``GET /reports/{commune|province}/{code}.{docx|xlsx|html}?kind=h1|year&year=&start=&end=&annex=``

- default period: the report due next (6-month: 1 Nov – 30 Apr, due before 7 May; yearly:
  1 Nov – 31 Oct, due before 5 Nov), cut at today while it runs; ``start``/``end`` override it;
- every role may have a report of a unit in its scope; a commune account cannot have its
  province's roll-up; the figures are aggregates (counts of 1–2 hidden) except for police and
  admin, who may also add ``annex=true``: the period's incidents one per line (an audited read of
  incident points). Anyone else asking for the annex gets 403.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection

from api.analytics import bad, responses, today_vn
from api.audit import record
from api.deps import Principal, get_conn, get_principal
from api.guards import reject_nul
from api.problems import Problem, field_error
from api.targets import CODE_PATTERN, require_scope, unit_row
from reports.data import DEADLINES, build_report, default_period
from reports.writers import to_docx, to_html, to_xlsx

MEDIA = {"docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         "html": "text/html; charset=utf-8"}


def next_report(today: dt.date) -> tuple[str, int]:
    """(kind, year) of the report due next on TODAY."""
    h1_due = dt.date(today.year, *DEADLINES["h1"])
    year_due = dt.date(today.year, *DEADLINES["year"])
    if today <= h1_due:
        return "h1", today.year
    if today <= year_due:
        return "year", today.year
    return "h1", today.year + 1


def period_for(kind: str | None, year: int | None, start: dt.date | None, end: dt.date | None,
               today: dt.date) -> tuple[str, int, dt.date, dt.date]:
    if kind is None and year is None:
        kind, year = next_report(today)
    kind = kind or "year"
    year = year or today.year
    d_start, d_end = default_period(kind, year)
    start = start or d_start
    end = end or min(d_end, today)
    if end < start:
        raise bad("end", "trước ngày bắt đầu kỳ báo cáo", "before the start of the period")
    if (end - start).days > 3 * 366:
        raise bad("start", "kỳ báo cáo dài quá 3 năm", "a period longer than three years")
    return kind, year, start, end


router = APIRouter(tags=["reports"], dependencies=[Depends(reject_nul)])


@router.get("/reports/{level}/{code}.{fmt}", responses=responses(401, 403, 404, 422) | {
    200: {"content": {m: {} for m in MEDIA.values()}, "description": "Báo cáo / the report"}},
    summary="Báo cáo 6 tháng, năm (DOCX, XLSX, HTML) / 6-month and yearly reports")
async def report(level: Annotated[str, Path(pattern="^(commune|province)$")],
                 code: Annotated[str, Path(pattern=CODE_PATTERN)],
                 fmt: Annotated[str, Path(pattern="^(docx|xlsx|html)$")],
                 kind: str | None = Query(None, pattern="^(h1|year)$",
                                          description="h1: 6 tháng (trước 7/5); year: năm (trước 5/11)"),
                 year: int | None = Query(None, ge=2000, le=2100),
                 start: dt.date | None = Query(None, description="Từ ngày (mặc định theo kỳ)"),
                 end: dt.date | None = Query(None, description="Đến ngày (mặc định: cuối kỳ, ≤ hôm nay)"),
                 annex: bool = Query(False, description="Phụ lục vụ việc (chỉ Công an, quản trị)"),
                 maps: bool = Query(True, description="Kèm bản đồ / include the maps"),
                 principal: Principal = Depends(get_principal),
                 conn: Connection = Depends(get_conn)) -> Response:
    for name, day in (("start", start), ("end", end)):
        if day is not None and not dt.date(1990, 1, 1) <= day <= dt.date(2100, 12, 31):
            raise bad(name, "ngoài khoảng 1990-2100", "outside 1990-2100")
    kind, year, start, end = period_for(kind, year, start, end, today_vn())
    if annex and not principal.sees_points:
        raise Problem(403, "Phụ lục vụ việc chỉ dành cho lực lượng Công an",
                      "The incident annex is for police and admin accounts only",
                      [field_error("annex", "không được phép với vai trò này", "not allowed for this role")])
    unit = await run_in_threadpool(unit_row, conn, level, code, end)
    require_scope(principal, unit)
    if level == "province" and principal.scope_level == "commune":
        raise Problem(403, "Tài khoản cấp xã không lấy báo cáo của tỉnh",
                      "A commune account may not have the province's report",
                      [field_error("level", "ngoài phạm vi", "outside the account's scope")])
    r = await run_in_threadpool(build_report, conn, level, code, kind, year, start, end,
                                principal.sees_points, annex, maps)
    if annex:
        record(conn, principal, "read_points", "reports", f"{level}/{code}",
               detail={"start": start, "end": end, "incidents": len(r.annex.rows) if r.annex else 0})
        conn.commit()
    name = f"bao-cao-{'6-thang' if kind == 'h1' else 'nam'}-{year}-{level}-{code}.{fmt}"
    if fmt == "html":
        return HTMLResponse(await run_in_threadpool(to_html, r), headers={"Cache-Control": "no-store"})
    body = await run_in_threadpool(to_docx if fmt == "docx" else to_xlsx, r)
    return Response(body, media_type=MEDIA[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "no-store"})
