"""`GET /search`: communes and villages by name (diacritics optional) or code, within scope."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Connection, text

from api.deps import Principal, get_conn, get_principal
from api.problems import Problem, field_error
from layers.search import DEFAULT_LEVELS, SEARCH_LEVELS, normalise_query, result_row, search_query

MAX_RESULTS = 50


def make_router() -> APIRouter:
    router = APIRouter(tags=["search"])

    @router.get("/search", summary="Tìm xã, thôn theo tên hoặc mã / find units by name or code")
    def search(q: str = Query(..., description="Tên (có hoặc không dấu) hoặc mã / name or code"),
               limit: int = Query(10, description=f"1–{MAX_RESULTS}"),
               level: str | None = Query(None, description="province, commune, village (comma list)"),
               date_: date | None = Query(None, alias="date", description="Ngày hiệu lực / valid on"),
               principal: Principal = Depends(get_principal),
               conn: Connection = Depends(get_conn)) -> list[dict[str, Any]]:
        if not normalise_query(q):
            raise Problem(400, "Cần nhập tên hoặc mã để tìm", "q must name a unit or a code",
                          [field_error("q", "Không được để trống", "Must not be empty")])
        if not 1 <= limit <= MAX_RESULTS:
            raise Problem(400, f"limit phải từ 1 đến {MAX_RESULTS}",
                          f"limit must be between 1 and {MAX_RESULTS}",
                          [field_error("limit", f"Từ 1 đến {MAX_RESULTS}", f"From 1 to {MAX_RESULTS}")])
        levels = DEFAULT_LEVELS
        if level:
            levels = tuple(x.strip() for x in level.split(",") if x.strip())
            bad = [x for x in levels if x not in SEARCH_LEVELS]
            if bad or not levels:
                raise Problem(400, f"Cấp không hợp lệ: {', '.join(bad)}",
                              f"Unknown level: {', '.join(bad)}; use {', '.join(SEARCH_LEVELS)}",
                              [field_error("level", f"Dùng {', '.join(SEARCH_LEVELS)}",
                                           f"Use {', '.join(SEARCH_LEVELS)}")])
        sql, params = search_query(q, principal, levels, date_, limit)
        return [result_row(r) for r in conn.execute(text(sql), params)]

    return router
