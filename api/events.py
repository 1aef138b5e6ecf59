"""Events of the movement: festivals (19/8), forums "Công an xã lắng nghe ý kiến của nhân dân",
launch ceremonies, reviews — date, unit, place, participants, notes, attachment names.

- ``GET /events`` (filters: commune, village, kind, year, start, end), ``GET /events/{id}``
- ``POST /events``, ``PUT /events/{id}`` and ``DELETE /events/{id}`` (If-Match, as editing.py)
- ``POST /events/import``: an Excel workbook with a sheet "Sự kiện" (the template's, see
  api/templates.py): every row checked first, nothing written unless all are valid.

``api.event_rules.check_event`` is the one validation of an event, used here and by the Excel
uploads (api/templates.py), so a row of a workbook is refused for exactly the reasons a request
would be.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Header, Path, Query, Response, UploadFile
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import Connection, text

from api.analytics import bad, clean, responses
from api.audit import record
from api.deps import Principal, get_conn, get_principal, require_roles
from api.editing import etag, parse_if_match, stale
from api.event_rules import check_event
from api.guards import reject_nul
from api.problems import Problem, field_error
from api.scope import commune_ids_sql
from api.targets import CODE_PATTERN, in_scope

EVENT_ROLES = ("admin", "committee", "planner")
KINDS = ("festival", "forum", "launch", "review", "other")
KIND_LABELS = {
    "festival": ("Ngày hội toàn dân bảo vệ ANTQ", "All-people national security festival"),
    "forum": ("Diễn đàn \"Công an xã lắng nghe ý kiến của nhân dân\"", "Forum \"Commune police listen\""),
    "launch": ("Lễ phát động phong trào", "Launch ceremony"),
    "review": ("Hội nghị sơ kết, tổng kết", "Review meeting"),
    "other": ("Hoạt động khác", "Other activity"),
}
MAX_ATTACHMENTS = 20


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _file_name(value: str) -> str:
    if any(c in value for c in "/\\\x00") or value.strip() in ("", ".", ".."):
        raise ValueError("an attachment is a file name, without folders")
    return value.strip()


Text = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_no_nul)]
LongText = Annotated[str, Field(max_length=5000), AfterValidator(_no_nul)]
FileName = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_file_name)]


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["festival", "forum", "launch", "review", "other"]
    title: Text
    held_on: dt.date = Field(description="Ngày tổ chức (không ở tương lai) / date held (not in the future)")
    commune_code: str = Field(pattern=CODE_PATTERN)
    village_code: str | None = Field(None, pattern=CODE_PATTERN)
    institution_id: int | None = Field(None, ge=1, le=2**31 - 1)
    launch_point_id: int | None = Field(None, ge=1, le=2**31 - 1)
    place: Text | None = None
    participants: int | None = Field(None, ge=0, le=1_000_000)
    notes: LongText | None = None
    attachments: list[FileName] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)
    external_id: Text | None = None


EVENT_SELECT = """SELECT e.id, e.external_id, e.kind, e.title, e.held_on, c.code AS commune_code,
    c.name AS commune_name, v.code AS village_code, v.name AS village_name, e.institution_id,
    s.name AS institution_name, e.launch_point_id, e.place, e.participants, e.notes, e.attachments,
    e.created_by, e.version, e.updated_at
    FROM movement_event e LEFT JOIN admin_unit c ON c.id = e.commune_id
    LEFT JOIN admin_unit v ON v.id = e.village_id LEFT JOIN institution s ON s.id = e.institution_id"""


def event_json(row: Any) -> dict[str, Any]:
    out = {k: clean(v) for k, v in dict(row).items()}
    vi, en = KIND_LABELS[out["kind"]]
    out["kind_label"] = {"vi": vi, "en": en}
    return out


def _event(conn: Connection, principal: Principal, event_id: int) -> dict[str, Any]:
    row = conn.execute(text(f"{EVENT_SELECT} WHERE e.id = :id"), {"id": event_id}).mappings().first()
    if row is None:
        raise Problem(404, f"Không có sự kiện {event_id}", f"No event {event_id}",
                      [field_error("event_id", "không tồn tại", "unknown")])
    commune = conn.execute(text("SELECT code, province_code FROM admin_unit WHERE id = "
                                "(SELECT commune_id FROM movement_event WHERE id = :id)"),
                           {"id": event_id}).mappings().first()
    unit = {"level": "commune", "code": commune["code"] if commune else None,
            "commune_code": commune["code"] if commune else None,
            "province_code": commune["province_code"] if commune else None}
    if not in_scope(principal, unit):
        # outside the scope: the same answer as a missing one, so ids reveal nothing
        raise Problem(404, f"Không có sự kiện {event_id}", f"No event {event_id}",
                      [field_error("event_id", "không tồn tại", "unknown")])
    return event_json(row)


def _unprocessable(errors: list[dict[str, str]]) -> Problem:
    fields = ", ".join(e["field"] for e in errors)
    return Problem(422, f"Sự kiện không hợp lệ: {fields}", f"Invalid event: {fields}", errors)


def insert_event(conn: Connection, principal: Principal, cols: dict[str, Any]) -> int:
    if cols.get("external_id") and conn.execute(text("SELECT 1 FROM movement_event WHERE external_id = :x"),
                                                {"x": cols["external_id"]}).first():
        ext = cols["external_id"]
        raise Problem(409, f"Mã sự kiện {ext} đã có", f"Event id {ext} exists",
                      [field_error("external_id", "đã tồn tại", "already exists")])
    eid = conn.execute(text("""INSERT INTO movement_event (external_id, kind, title, held_on, commune_id,
            village_id, institution_id, launch_point_id, place, participants, notes, attachments, created_by)
        VALUES (:external_id, :kind, :title, :held_on, :commune_id, :village_id, :institution_id,
                :launch_point_id, :place, :participants, :notes, :attachments, :by) RETURNING id"""),
        {**cols, "by": principal.username}).scalar_one()
    return eid


router = APIRouter(tags=["events"], dependencies=[Depends(reject_nul)])
EventId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/events", responses=responses(401, 403, 404, 422), summary="Sự kiện / events")
def list_events(commune: str | None = Query(None, pattern=CODE_PATTERN),
                village: str | None = Query(None, pattern=CODE_PATTERN),
                kind: str | None = Query(None, pattern="^(festival|forum|launch|review|other)$"),
                year: int | None = Query(None, ge=2000, le=2100),
                start: dt.date | None = Query(None), end: dt.date | None = Query(None),
                limit: int = Query(200, ge=1, le=2000), offset: int = Query(0, ge=0, le=10_000_000),
                principal: Principal = Depends(get_principal),
                conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    where, params = ["true"], {"limit": limit, "offset": offset}
    sub = commune_ids_sql(principal)
    if sub is not None:
        where.append(f"e.commune_id IN ({sub})")
        params["scope_code"] = principal.scope_code
    if commune is not None:
        where.append("c.code = :commune")
        params["commune"] = commune
    if village is not None:
        where.append("v.code = :village")
        params["village"] = village
    if kind is not None:
        where.append("e.kind = :kind")
        params["kind"] = kind
    if year is not None:
        where.append("e.held_on BETWEEN make_date(:year, 1, 1) AND make_date(:year, 12, 31)")
        params["year"] = year
    if start is not None:
        where.append("e.held_on >= :start")
        params["start"] = start
    if end is not None:
        if start is not None and end < start:
            raise bad("end", "trước ngày bắt đầu", "before start")
        where.append("e.held_on <= :end")
        params["end"] = end
    cond = " AND ".join(where)
    total = conn.execute(text(f"""SELECT count(*) FROM movement_event e LEFT JOIN admin_unit c
        ON c.id = e.commune_id LEFT JOIN admin_unit v ON v.id = e.village_id WHERE {cond}"""),
                         params).scalar_one()
    rows = conn.execute(text(f"{EVENT_SELECT} WHERE {cond} ORDER BY e.held_on DESC, e.id DESC "
                             "LIMIT :limit OFFSET :offset"), params).mappings().all()
    return {"events": [event_json(r) for r in rows], "number_matched": total, "number_returned": len(rows),
            "kinds": {k: {"vi": vi, "en": en} for k, (vi, en) in KIND_LABELS.items()}}


@router.get("/events/{event_id}", responses=responses(401, 404), summary="Một sự kiện / one event")
def get_event(event_id: EventId, response: Response, principal: Principal = Depends(get_principal),
              conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    event = _event(conn, principal, event_id)
    response.headers["ETag"] = etag(event["version"])
    return event


@router.post("/events", status_code=201, responses=responses(401, 403, 422) | {409: {"description": "trùng"}},
             summary="Thêm sự kiện / add an event")
def create_event(body: EventIn, response: Response,
                 principal: Principal = Depends(require_roles(*EVENT_ROLES)),
                 conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    cols, errors = check_event(conn, principal, body.model_dump())
    if errors:
        if any(e["message_en"] == "outside the account's scope" for e in errors):
            raise Problem(403, "Xã ngoài phạm vi tài khoản", "The commune is outside your scope", errors)
        raise _unprocessable(errors)
    eid = insert_event(conn, principal, cols)
    event = _event(conn, principal, eid)
    record(conn, principal, "create", "events", eid, after=event)
    conn.commit()
    response.headers["ETag"] = etag(event["version"])
    return event


@router.put("/events/{event_id}", responses=responses(401, 403, 404, 422) | {
    412: {"description": "If-Match cũ / stale"}, 428: {"description": "Thiếu If-Match / required"}},
    summary="Sửa sự kiện (cần If-Match) / replace an event (If-Match required)")
def replace_event(body: EventIn, event_id: EventId, response: Response,
                  if_match: str | None = Header(None, alias="If-Match"),
                  principal: Principal = Depends(require_roles(*EVENT_ROLES)),
                  conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    versions = parse_if_match(if_match)
    before = _event(conn, principal, event_id)
    if versions is not None and before["version"] not in versions:
        raise stale(before["version"])
    cols, errors = check_event(conn, principal, body.model_dump())
    if errors:
        raise _unprocessable(errors)
    if cols.get("external_id") and conn.execute(text(
            "SELECT 1 FROM movement_event WHERE external_id = :x AND id <> :id"),
            {"x": cols["external_id"], "id": event_id}).first():
        raise Problem(409, "Mã sự kiện đã có", "Event id exists",
                      [field_error("external_id", "đã tồn tại", "already exists")])
    updated = conn.execute(text("""UPDATE movement_event SET external_id = :external_id, kind = :kind,
            title = :title, held_on = :held_on, commune_id = :commune_id, village_id = :village_id,
            institution_id = :institution_id, launch_point_id = :launch_point_id, place = :place,
            participants = :participants, notes = :notes, attachments = :attachments,
            version = version + 1, updated_at = now()
        WHERE id = :id AND version = :v RETURNING id"""),
                           {**cols, "id": event_id, "v": before["version"]}).first()
    if updated is None:
        raise stale(before["version"])
    after = _event(conn, principal, event_id)
    record(conn, principal, "update", "events", event_id, before=before, after=after)
    conn.commit()
    response.headers["ETag"] = etag(after["version"])
    return after


@router.delete("/events/{event_id}", status_code=204, responses=responses(401, 403, 404) | {
    412: {"description": "If-Match cũ / stale"}, 428: {"description": "Thiếu If-Match / required"}},
    summary="Xóa sự kiện (cần If-Match) / delete an event (If-Match required)")
def delete_event(event_id: EventId, if_match: str | None = Header(None, alias="If-Match"),
                 principal: Principal = Depends(require_roles(*EVENT_ROLES)),
                 conn: Connection = Depends(get_conn)) -> Response:
    versions = parse_if_match(if_match)
    before = _event(conn, principal, event_id)
    if versions is not None and before["version"] not in versions:
        raise stale(before["version"])
    conn.execute(text("DELETE FROM movement_event WHERE id = :id"), {"id": event_id})
    record(conn, principal, "delete", "events", event_id, before=before)
    conn.commit()
    return Response(status_code=204)


@router.post("/events/import", responses=responses(401, 403, 422),
             summary="Nhập sự kiện từ Excel / import events from an Excel workbook")
async def import_events(file: UploadFile = File(..., description="Tệp .xlsx có trang \"Sự kiện\""),
                        dry_run: bool = Query(False, description="Chỉ kiểm tra / check only"),
                        principal: Principal = Depends(require_roles(*EVENT_ROLES)),
                        conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    from fastapi.concurrency import run_in_threadpool

    from api.templates import MAX_UPLOAD_BYTES, apply_workbook, read_upload

    data = await read_upload(file, MAX_UPLOAD_BYTES)
    return await run_in_threadpool(apply_workbook, conn, principal, data, None, None, ("events",), dry_run)
