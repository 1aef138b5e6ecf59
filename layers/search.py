"""Finding units by name (with or without diacritics) or by official code.

Ranking: exact code or exact name > name prefix > word prefix > trigram similarity; ties go to
the higher level (commune before village), then the name. The query is folded with
`antt.text.fold` exactly as `admin_unit.name_search` was, so 'tan ky' finds 'Tân Kỳ'.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from antt.text import _KIND_PREFIXES, fold
from layers.access import Caller

SEARCH_LEVELS = ("province", "commune", "village")
DEFAULT_LEVELS = ("commune", "village")
_FOLDED_KINDS = sorted({fold(k) for k in _KIND_PREFIXES}, key=len, reverse=True)


def normalise_query(raw: str) -> str:
    """Folded query with a leading kind word removed ('Xã Tân Kỳ' -> 'tan ky')."""
    q = fold(raw)
    for kind in _FOLDED_KINDS:
        if q.startswith(kind + " ") and len(q) > len(kind) + 1:
            return q[len(kind) + 1:].strip()
    return q


def _like_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_query(raw: str, caller: Caller, levels: tuple[str, ...] = DEFAULT_LEVELS,
                 on_date: date | None = None, limit: int = 10) -> tuple[str, dict[str, Any]]:
    q = normalise_query(raw)
    params: dict[str, Any] = {
        "raw": raw.strip(), "q": q, "prefix": _like_escape(q) + "%",
        "word": "% " + _like_escape(q) + "%", "levels": list(levels),
        "on_date": on_date or date.today(), "limit": limit,
    }
    scope = "TRUE"
    if caller.scope_level == "province" and caller.scope_code:
        scope = "u.province_code = :scope_code"
        params["scope_code"] = caller.scope_code
    elif caller.scope_level == "commune" and caller.scope_code:
        scope = ("(u.level = 'commune' AND u.code = :scope_code) "
                 "OR (u.level = 'village' AND p.code = :scope_code)")
        params["scope_code"] = caller.scope_code
    sql = f"""
    SELECT u.level, u.code, u.name, u.full_name, u.kind, p.name AS parent_name,
           ST_XMin(u.geom) AS minx, ST_YMin(u.geom) AS miny, ST_XMax(u.geom) AS maxx,
           ST_YMax(u.geom) AS maxy, ST_X(c.pt) AS lon, ST_Y(c.pt) AS lat,
           CASE WHEN u.code = :raw OR u.name_search = :q THEN 0
                WHEN u.name_search LIKE :prefix THEN 1
                WHEN u.name_search LIKE :word THEN 2 ELSE 3 END AS rank,
           similarity(u.name_search, :q) AS score
    FROM admin_unit u
    LEFT JOIN admin_unit p ON p.id = u.parent_id
    CROSS JOIN LATERAL (SELECT ST_PointOnSurface(u.geom) AS pt) c
    WHERE u.level = ANY(:levels) AND u.geom IS NOT NULL
      AND u.valid_from <= :on_date AND (u.valid_to IS NULL OR u.valid_to > :on_date)
      AND (u.code = :raw OR u.name_search LIKE :prefix OR u.name_search LIKE :word
           OR u.name_search % :q)
      AND ({scope})
    ORDER BY rank, score DESC,
             array_position(ARRAY['province', 'commune', 'village'], u.level), u.name_search, u.code
    LIMIT :limit"""
    return sql, params


def result_row(row: Any) -> dict[str, Any]:
    return {
        "level": row.level, "code": row.code, "name": row.name, "full_name": row.full_name,
        "kind": row.kind, "parent_name": row.parent_name,
        "bbox": [round(row.minx, 6), round(row.miny, 6), round(row.maxx, 6), round(row.maxy, 6)],
        "centroid": [round(row.lon, 6), round(row.lat, 6)],
    }
