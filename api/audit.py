"""The audit log: who did what, when, before and after — and `GET /audit` for admins.

Why `record` takes the caller's connection: the audit row is written in the SAME transaction as
the write it describes, so a rolled-back write leaves no audit row and a committed one always
has its row. Reads of exact incident points are recorded too (action ``read_points``); when such
a read comes from a replica (read-only), its row is written and committed on the primary at
once, before the points are sent.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import Connection, text

from antt.db import get_engine, is_replica
from api.deps import Principal, get_conn, require_roles
from api.guards import reject_nul, utc_instant
from api.problems import Problem, field_error

PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": desc, "content": {"application/problem+json": {}}}
    for code, desc in ((401, "Chưa đăng nhập / not authenticated"),
                       (403, "Không có quyền / forbidden"),
                       (422, "Tham số không hợp lệ / invalid parameter"))
}


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


_INSERT = text(  # built once: every incident tile with points writes a row
    "INSERT INTO audit_log (username, role, action, entity, entity_id, before, after, detail) "
    "VALUES (:u, :r, :a, :e, :i, CAST(:b AS jsonb), CAST(:af AS jsonb), CAST(:d AS jsonb))")


# Set in the connection's info by `record`: a response whose request wrote an audit row is never
# stored in the shared result cache (api/resultcache.py), so every such read is audited.
AUDITED = "antt_audited"


def record(conn: Connection, principal: Principal | None, action: str, entity: str,
           entity_id: str | int | None = None, before: Any = None, after: Any = None,
           detail: Any = None) -> None:
    """Append one audit row on the caller's connection (commit is the caller's); a read on a
    replica is recorded on the primary, committed before this returns."""
    params = {"u": principal.username if principal else None,
              "r": principal.role if principal else None, "a": action, "e": entity,
              "i": None if entity_id is None else str(entity_id),
              "b": _json(before), "af": _json(after), "d": _json(detail)}
    conn.info[AUDITED] = True
    if is_replica(conn.engine):
        with get_engine().begin() as primary:
            primary.execute(_INSERT, params)
        return
    conn.execute(_INSERT, params)


class AuditEntry(BaseModel):
    id: int
    at: dt.datetime
    username: str | None
    role: str | None
    action: str
    entity: str
    entity_id: str | None
    before: Any = None
    after: Any = None
    detail: Any = None


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    number_returned: int = Field(description="Rows in this page / số dòng trả về")
    limit: int
    offset: int


router = APIRouter(tags=["audit"], dependencies=[Depends(reject_nul)])


@router.get("/audit", response_model=AuditPage, responses=PROBLEM_RESPONSES,
            summary="Nhật ký thao tác / audit log (admin)")
def list_audit(
    user: str | None = Query(None, description="Tên đăng nhập / username"),
    action: str | None = Query(None, description="create, update, delete, rate, read_points, login…"),
    entity: str | None = Query(None, description="models, incidents, …"),
    since: dt.datetime | None = Query(None, description="ISO 8601 time; rows at or after it"),
    until: dt.datetime | None = Query(None, description="ISO 8601 time; rows before it"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10_000_000),
    principal: Principal = Depends(require_roles("admin")),
    conn: Connection = Depends(get_conn),
) -> AuditPage:
    vn = dt.timezone(dt.timedelta(hours=7))
    since = since and utc_instant(since, "query.since", vn)
    until = until and utc_instant(until, "query.until", vn)
    if since and until and until <= since:
        raise Problem(422, "'until' phải sau 'since'", "'until' must be after 'since'",
                      [field_error("until", "phải sau since", "must be after since")])
    where, params = ["true"], {"limit": limit, "offset": offset}
    for name, value in (("username", user), ("action", action), ("entity", entity)):
        if value is not None:
            where.append(f"{name} = :{name}")
            params[name] = value
    if since is not None:
        where.append("at >= :since")
        params["since"] = since
    if until is not None:
        where.append("at < :until")
        params["until"] = until
    rows = conn.execute(text(
        "SELECT id, at, username, role, action, entity, entity_id, before, after, detail "
        f"FROM audit_log WHERE {' AND '.join(where)} ORDER BY at DESC, id DESC "
        "LIMIT :limit OFFSET :offset"), params).mappings().all()
    entries = [AuditEntry(**r) for r in rows]
    return AuditPage(entries=entries, number_returned=len(entries), limit=limit, offset=offset)
