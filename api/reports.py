"""The 6-month and yearly reports of a commune, and a province's roll-up, as DOCX, XLSX or HTML.

``GET /reports/{commune|province}/{code}.{docx|xlsx|html}?kind=h1|year&year=&start=&end=&annex=``
answers with the document (the direct call). A province roll-up takes tens of seconds (more at
national scale), so it also runs as a **job**:

- ``POST /reports/{commune|province}/{code}`` with ``{"kind", "year", "start", "end", "annex",
  "maps", "formats": ["docx", "xlsx", "html"]}`` → ``202`` + ``Location: /jobs/{id}``; the job
  (kind ``reports.build``) reports its progress per section and per map; its result names the
  files: ``{"report": {...}, "files": [{"format", "name", "href": "/reports/files/{id}", ...}]}``;
- ``GET /reports/files/{id}``: a file made by a job, kept in PostgreSQL (``report_file``) so any
  worker serves it; only to its owner (and admins), while the unit is still in the account's scope,
  and a file made with police figures (unsuppressed counts, the annex) only to police and admin.

Both paths run ``reports.writers.render``: a job's documents say what the direct call's say.

- default period: the report due next (6-month: 1 Nov – 30 Apr, due before 7 May; yearly:
  1 Nov – 31 Oct, due before 5 Nov), cut at today while it runs; ``start``/``end`` override it;
- every role may have a report of a unit in its scope; a commune account cannot have its
  province's roll-up; the figures are aggregates (counts of 1–2 hidden) except for police and
  admin, who may also add ``annex=true``: the period's incidents one per line (an audited read of
  incident points, audited again on each download of a job's file). Anyone else asking for the
  annex gets 403.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Connection, text

from antt import jobs
from antt.db import get_engine
from api.analytics import bad, responses, today_vn
from api.audit import record
from api.deps import Principal, get_conn, get_principal
from api.guards import reject_nul
from api.problems import Problem, field_error
from api.targets import CODE_PATTERN, require_scope, unit_row
from reports.data import DEADLINES, default_period
from reports.writers import FORMATS, MEDIA, render

JOB_KIND = "reports.build"


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


def file_name(kind: str, year: int, level: str, code: str, fmt: str) -> str:
    return f"bao-cao-{'6-thang' if kind == 'h1' else 'nam'}-{year}-{level}-{code}.{fmt}"


def check_request(conn: Connection, principal: Principal, level: str, code: str, kind: str | None,
                  year: int | None, start: dt.date | None, end: dt.date | None,
                  annex: bool) -> dict[str, Any]:
    """Every rule a report request must meet (4xx naming the field), before any work starts;
    returns the report's parameters with the period resolved."""
    for name, day in (("start", start), ("end", end)):
        if day is not None and not dt.date(1990, 1, 1) <= day <= dt.date(2100, 12, 31):
            raise bad(name, "ngoài khoảng 1990-2100", "outside 1990-2100")
    kind, year, start, end = period_for(kind, year, start, end, today_vn())
    if annex and not principal.sees_points:
        raise Problem(403, "Phụ lục vụ việc chỉ dành cho lực lượng Công an",
                      "The incident annex is for police and admin accounts only",
                      [field_error("annex", "không được phép với vai trò này", "not allowed for this role")])
    unit = unit_row(conn, level, code, end)
    require_scope(principal, unit)
    if level == "province" and principal.scope_level == "commune":
        raise Problem(403, "Tài khoản cấp xã không lấy báo cáo của tỉnh",
                      "A commune account may not have the province's report",
                      [field_error("level", "ngoài phạm vi", "outside the account's scope")])
    return {"level": level, "code": code, "kind": kind, "year": year, "start": start.isoformat(),
            "end": end.isoformat(), "annex": annex, "sees_points": principal.sees_points,
            "unit_name": unit.get("name")}


def _render(bind: Any, p: dict[str, Any], formats: tuple[str, ...] | list[str],
            progress: Any = None) -> tuple[Any, dict[str, bytes]]:
    return render(bind, p["level"], p["code"], p["kind"], p["year"], dt.date.fromisoformat(p["start"]),
                  dt.date.fromisoformat(p["end"]), p["sees_points"], p["annex"], p.get("maps", True),
                  formats, progress)


router = APIRouter(tags=["reports"], dependencies=[Depends(reject_nul)])

Level = Annotated[str, Path(pattern="^(commune|province)$")]
Code = Annotated[str, Path(pattern=CODE_PATTERN)]


@router.get("/reports/{level}/{code}.{fmt}", responses=responses(401, 403, 404, 422) | {
    200: {"content": {m: {} for m in MEDIA.values()}, "description": "Báo cáo / the report"}},
    summary="Báo cáo 6 tháng, năm (DOCX, XLSX, HTML) / 6-month and yearly reports")
async def report(level: Level, code: Code,
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
    p = await run_in_threadpool(check_request, conn, principal, level, code, kind, year, start, end, annex)
    p["maps"] = maps
    r, files = await run_in_threadpool(_render, conn, p, (fmt,))
    if annex:
        record(conn, principal, "read_points", "reports", f"{level}/{code}",
               detail={"start": p["start"], "end": p["end"],
                       "incidents": len(r.annex.rows) if r.annex else 0})
        conn.commit()
    if fmt == "html":
        return HTMLResponse(files["html"], headers={"Cache-Control": "no-store"})
    name = file_name(p["kind"], p["year"], level, code, fmt)
    return Response(files[fmt], media_type=MEDIA[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "no-store"})


# --- the report as a job ----------------------------------------------------------------------

class ReportJobIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["h1", "year"] | None = Field(None, description="h1: 6 tháng (trước 7/5); year: năm")
    year: int | None = Field(None, ge=2000, le=2100)
    start: dt.date | None = Field(None, description="Từ ngày (mặc định theo kỳ)")
    end: dt.date | None = Field(None, description="Đến ngày (mặc định: cuối kỳ, ≤ hôm nay)")
    annex: bool = Field(False, description="Phụ lục vụ việc (chỉ Công an, quản trị)")
    maps: bool = Field(True, description="Kèm bản đồ / include the maps")
    formats: list[Literal["docx", "xlsx", "html"]] = Field(
        default_factory=lambda: list(FORMATS), min_length=1, max_length=3,
        description="Tệp cần tạo / files to make")

    @field_validator("formats")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("each format once")
        return v


@jobs.job_kind(JOB_KIND)
def run_report(ctx: jobs.JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """Build the report and its files, store the files (one transaction), return their links.

    params = the checked request (``check_request``) + maps, formats, and the principal."""
    principal = Principal(**params["principal"])
    r, files = _render(ctx.engine, params, params["formats"], ctx.progress)
    ctx.progress(0.99, "Lưu tệp / storing the files", force=True)
    out = []
    with ctx.engine.begin() as conn:
        for fmt, body in files.items():
            fid = str(uuid.uuid4())
            name = file_name(params["kind"], params["year"], params["level"], params["code"], fmt)
            digest = hashlib.sha256(body).hexdigest()
            conn.execute(text("""INSERT INTO report_file (id, job_id, format, filename, media_type, content,
                    size_bytes, sha256, owner, level, code, sees_points, annex)
                VALUES (:id, :job, :fmt, :name, :media, :content, :size, :sha, :owner, :level, :code,
                        :sees, :annex)"""),
                         {"id": fid, "job": ctx.id, "fmt": fmt, "name": name, "media": MEDIA[fmt],
                          "content": body, "size": len(body), "sha": digest, "owner": principal.username,
                          "level": params["level"], "code": params["code"], "sees": params["sees_points"],
                          "annex": params["annex"]})
            out.append({"format": fmt, "name": name, "media_type": MEDIA[fmt], "bytes": len(body),
                        "sha256": digest, "href": f"/reports/files/{fid}"})
        if params["annex"]:
            record(conn, principal, "read_points", "reports", f"{params['level']}/{params['code']}",
                   detail={"start": params["start"], "end": params["end"], "job": ctx.id,
                           "incidents": len(r.annex.rows) if r.annex else 0})
    report_info = {k: params[k] for k in ("level", "code", "kind", "year", "start", "end", "annex", "maps")}
    report_info.update(name=r.name, title=r.title, aggregates_only=not params["sees_points"],
                       tables=len(r.tables), figures=len(r.maps))
    return {"report": report_info, "files": out}


@router.post("/reports/{level}/{code}", status_code=202, responses=responses(401, 403, 404, 422) | {
    202: {"description": "Đang tạo báo cáo: theo dõi Location / running as a job: poll Location"}},
    summary="Tạo báo cáo dưới dạng công việc (có tiến độ) / build a report as a job with progress")
def start_report_job(level: Level, code: Code, body: ReportJobIn,
                     principal: Principal = Depends(get_principal),
                     conn: Connection = Depends(get_conn)) -> JSONResponse:
    from api.jobs import accepted

    p = check_request(conn, principal, level, code, body.kind, body.year, body.start, body.end, body.annex)
    p.update(maps=body.maps, formats=list(body.formats),
             principal={"username": principal.username, "role": principal.role,
                        "scope_level": principal.scope_level, "scope_code": principal.scope_code})
    job_id = jobs.submit(get_engine(), JOB_KIND, p, owner=principal.username, owner_role=principal.role)
    return accepted(job_id)


@router.get("/reports/files/{file_id}", responses=responses(401, 403, 404) | {
    200: {"content": {m: {} for m in MEDIA.values()}, "description": "Tệp báo cáo / the file"}},
    summary="Tải tệp báo cáo do công việc tạo / download a report file made by a job")
def report_file(file_id: Annotated[str, Path(min_length=36, max_length=36)],
                principal: Principal = Depends(get_principal)) -> Response:
    missing = Problem(404, f"Không có tệp báo cáo {file_id}", f"No report file {file_id}",
                      [field_error("file_id", "không tồn tại", "unknown")])
    try:
        uuid.UUID(file_id)
    except ValueError:
        raise missing from None
    # the primary, like /jobs: a file of a job that just finished may not be on a replica yet
    with get_engine().connect() as conn:
        row = conn.execute(text("""SELECT id, job_id, format, filename, media_type, content, owner,
                level, code, sees_points, annex FROM report_file WHERE id = :id"""),
                           {"id": file_id}).mappings().first()
        if row is None or (principal.role != "admin" and row["owner"] != principal.username):
            raise missing  # someone else's file does not exist for the caller
        unit = unit_row(conn, row["level"], row["code"])
        require_scope(principal, unit)
        if (row["sees_points"] or row["annex"]) and not principal.sees_points:
            raise Problem(403, "Tệp có số liệu chi tiết chỉ dành cho lực lượng Công an",
                          "This file holds police figures: for police and admin accounts only",
                          [field_error("file_id", "không được phép với vai trò này",
                                       "not allowed for this role")])
        if row["annex"]:
            record(conn, principal, "read_points", "report_file", file_id,
                   detail={"job": str(row["job_id"]), "report": f"{row['level']}/{row['code']}"})
            conn.commit()
    headers = {"Cache-Control": "private, no-store"}
    if row["format"] != "html":
        headers["Content-Disposition"] = f'attachment; filename="{row["filename"]}"'
    return Response(bytes(row["content"]), media_type=row["media_type"], headers=headers)
