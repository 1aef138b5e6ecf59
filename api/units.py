"""`GET /units/{level}/{code}/summary`: the map's side panel for a commune or a village.

Why one call: the panel shows coverage (geo.coverage), the unit's models with their rating on
the date, progress against the year's targets (DOMAIN.md, commune plan 2025) and the monthly
incident trend against last year — all scoped, and with incident counts under 3 suppressed for
roles that may not see points (see api/analytics.py for the rules).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel
from sqlalchemy import Connection, text

from api.analytics import clean, responses, today_vn
from api.deps import Principal, get_conn, get_principal
from api.guards import reject_nul
from api.problems import Problem, field_error
from api.scope import commune_in_scope
from geo import coverage as cov
from geo import kpi
from geo.filters import VN_TZ, local_midnight
from geo.placement import now_column


class UnitSummary(BaseModel):
    unit: dict[str, Any]
    coverage: dict[str, Any]
    models: list[dict[str, Any]]
    targets: list[dict[str, Any]]
    trend: dict[str, Any]


def load_unit(conn: Connection, level: str, code: str, on: dt.date) -> dict[str, Any]:
    row = conn.execute(text("""
        SELECT u.id, u.level, u.code, u.name, u.full_name, u.kind, u.province_code, u.population,
               u.households, u.valid_from, u.valid_to, p.level AS parent_level, p.code AS parent_code,
               p.name AS parent_name, p.province_code AS parent_province,
               ST_XMin(u.geom) AS minx, ST_YMin(u.geom) AS miny, ST_XMax(u.geom) AS maxx,
               ST_YMax(u.geom) AS maxy, ST_X(ST_PointOnSurface(u.geom)) AS cx,
               ST_Y(ST_PointOnSurface(u.geom)) AS cy
        FROM admin_unit u LEFT JOIN admin_unit p ON p.id = u.parent_id
        WHERE u.level = :level AND u.code = :code
        ORDER BY (u.valid_from <= :on AND (u.valid_to IS NULL OR :on < u.valid_to)) DESC,
                 u.valid_from DESC LIMIT 1"""), {"level": level, "code": code, "on": on}).mappings().first()
    if row is None:
        raise Problem(404, f"Không có {level} mã {code}", f"No {level} with code {code}",
                      [field_error("code", "không tồn tại", "unknown")])
    return dict(row)


def check_unit_scope(principal: Principal, unit: dict[str, Any]) -> None:
    commune_code = unit["code"] if unit["level"] == "commune" else unit["parent_code"]
    province = unit["province_code"] or unit["parent_province"]
    if not commune_in_scope(principal, commune_code, province):
        raise Problem(403, "Đơn vị ngoài phạm vi tài khoản", "This unit is outside your scope",
                      [field_error("code", "ngoài phạm vi", "outside the account's scope")])


def coverage_of(conn: Connection, unit: dict[str, Any], on: dt.date) -> dict[str, Any]:
    if unit["level"] == "commune":
        df = cov.commune_coverage(conn, on, commune_code=unit["code"])
    else:
        df = cov.village_coverage(conn, on, commune_code=unit["parent_code"])
        df = df[df["code"] == unit["code"]]
    if df.empty:  # the unit is not valid on that date
        return {}
    rec = {k: clean(v) for k, v in df.iloc[0].to_dict().items()}
    for drop in ("id", "code", "name", "commune_id", "population", "households"):
        rec.pop(drop, None)
    return rec


def models_of(conn: Connection, unit: dict[str, Any], on: dt.date) -> list[dict[str, Any]]:
    col = "commune_id" if unit["level"] == "commune" else "village_id"
    rows = conn.execute(text(f"""
        SELECT m.id, m.name, m.type_code AS type, t.name_vi AS type_name, m.status, m.founded_on,
               m.recognition, r.rating, r.rated_on
        FROM security_model m JOIN model_type t ON t.code = m.type_code
        LEFT JOIN LATERAL (SELECT rating, rated_on FROM model_rating
                           WHERE model_id = m.id AND rated_on <= :on
                           ORDER BY rated_on DESC, id DESC LIMIT 1) r ON true
        WHERE m.{col} = :id AND m.founded_on <= :on
        ORDER BY m.founded_on, m.id"""), {"id": unit["id"], "on": on}).mappings().all()
    return [{k: clean(v) for k, v in r.items()} for r in rows]


def targets_of(conn: Connection, unit: dict[str, Any], on: dt.date,
               coverage: dict[str, Any]) -> list[dict[str, Any]]:
    """Progress against the year's targets, from the KPI engine (geo.kpi): shares as 0..1, counts
    as counts; ``met`` None where there is no data; ``status`` the engine's (met, on_track, …)."""
    commune = unit["code"] if unit["level"] == "commune" else unit["parent_code"]
    df = kpi.kpis(conn, on, level=unit["level"], commune_code=commune)
    df = df[df["code"] == unit["code"]]
    defs = {d.code: d for d in kpi.target_defs(conn)}
    out = []
    for rec in df.to_dict("records"):
        d = defs[rec["target"]]
        scale = 100.0 if d.measure == "percent" else 1.0
        actual = clean(rec["actual"])
        if actual is not None and d.measure == "percent" and rec["denominator"]:
            value = rec["numerator"] / rec["denominator"]  # exact share, not 100 x n / d / 100
        else:
            value = None if actual is None else actual / scale
        out.append({"key": d.code, "label": {"vi": d.name_vi, "en": d.name_en},
                    "value": clean(value),
                    "target": rec["threshold"] / scale, "comparison": d.direction,
                    "met": None if rec["status"] == "no_data" else rec["status"] == "met",
                    "status": rec["status"], "measure": d.measure,
                    "basis": {"count": clean(rec["numerator"]), "recorded": clean(rec["denominator"]),
                              "year": on.year}})
    return out


def trend_of(conn: Connection, unit: dict[str, Any], on: dt.date,
             principal: Principal) -> dict[str, Any]:
    """Incidents per month, January to the month of ``on``, this year and last year."""
    # By location, not by the unit of the incident's date: last year's incidents were assigned
    # to the units of their own era, and the trend compares like with like. A current unit has
    # them stored (geo.placement: today's unit holding the point); an older one is tested.
    if unit["valid_to"] is None:
        inside = f"i.{now_column(unit['level'])} = :id"
    else:
        inside = ("EXISTS (SELECT 1 FROM admin_unit_part pt WHERE pt.unit_id = :id "
                  "AND ST_Intersects(pt.geom, i.geom))")
    start = dt.date(on.year - 1, 1, 1)
    rows = conn.execute(text(f"""
        SELECT to_char(occurred_at AT TIME ZONE :tz, 'YYYY-MM') AS month, count(*) AS n
        FROM incident i WHERE {inside} AND occurred_at >= :a AND occurred_at < :b
        GROUP BY 1"""), {"tz": str(VN_TZ), "id": unit["id"], "a": local_midnight(start),
                         "b": local_midnight(on + dt.timedelta(days=1))}).all()
    counts = {r.month: int(r.n) for r in rows}
    months = [f"{m:02d}" for m in range(1, on.month + 1)]
    this_year = [counts.get(f"{on.year}-{m}", 0) for m in months]
    last_year = [counts.get(f"{on.year - 1}-{m}", 0) for m in months]
    # Last year's months run to the same day only for the current month ("cùng kỳ").
    last_cut = conn.execute(text(
        f"SELECT count(*) FROM incident i WHERE {inside} AND occurred_at >= :a AND occurred_at < :b"),
        {"id": unit["id"], "a": local_midnight(dt.date(on.year - 1, on.month, 1)),
         "b": local_midnight(_last_year(on) + dt.timedelta(days=1))}).scalar_one()
    last_year[-1] = int(last_cut)
    suppressed = False
    if not principal.sees_points:
        from antt.settings import get_settings

        limit = get_settings().suppress_below
        hide = lambda n: None if 0 < n < limit else n  # noqa: E731
        suppressed = any(0 < n < limit for n in this_year + last_year)
        this_year, last_year = [hide(n) for n in this_year], [hide(n) for n in last_year]
    total_this = sum(n for n in this_year if n is not None) if None not in this_year else None
    total_last = sum(n for n in last_year if n is not None) if None not in last_year else None
    return {"months": [f"{on.year}-{m}" for m in months], "this_year": this_year,
            "last_year": last_year, "total_this_year": total_this, "total_last_year": total_last,
            "until": on.isoformat(), "suppressed": suppressed}


def _last_year(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return day.replace(year=day.year - 1, day=28)


router = APIRouter(tags=["units"], dependencies=[Depends(reject_nul)])


@router.get("/units/{level}/{code}/summary", response_model=UnitSummary,
            responses=responses(401, 403, 404, 422),
            summary="Bảng tóm tắt xã/thôn / commune or village panel")
def unit_summary(level: str = Path(..., pattern="^(commune|village)$"),
                 code: str = Path(..., max_length=20, pattern=r"^[0-9A-Za-z_.-]+$"),
                 date: dt.date | None = Query(None, description="Ngày / date (default today)"),
                 principal: Principal = Depends(get_principal),
                 conn: Connection = Depends(get_conn)) -> UnitSummary:
    on = date or today_vn()
    if not dt.date(1900, 1, 1) <= on <= dt.date(2100, 12, 31):
        raise Problem(422, "Ngày ngoài khoảng 1900-2100", "date outside 1900-2100",
                      [field_error("date", "ngoài khoảng", "out of range")])
    unit = load_unit(conn, level, code, on)
    check_unit_scope(principal, unit)
    coverage = coverage_of(conn, unit, on)
    info = {k: clean(unit[k]) for k in ("level", "code", "name", "full_name", "kind", "province_code",
                                       "population", "households", "valid_from", "valid_to",
                                       "parent_code", "parent_name")}
    info["bbox"] = [unit["minx"], unit["miny"], unit["maxx"], unit["maxy"]] if unit["minx"] else None
    info["centroid"] = [unit["cx"], unit["cy"]] if unit["cx"] else None
    return UnitSummary(unit=info, coverage=coverage, models=models_of(conn, unit, on),
                       targets=targets_of(conn, unit, on, coverage),
                       trend=trend_of(conn, unit, on, principal))
