"""Analytics endpoints: thin HTTP wrappers over Helper C's `geo/` functions.

Why thin: the analyses live in geo/ (SQL next to the data, statistics in numpy); this module
only turns query parameters into the geo functions' arguments, applies the caller's scope,
enforces the privacy rules for roles that may not see incident points, and shapes GeoJSON.

Privacy rules for roles other than police/admin (server-enforced here):
- incident counts 1 and 2 are suppressed (null), and so is every figure derived from them
  (change, change %, rate per 1,000); 0 is shown — it identifies no one;
- hexagon cells are at least settings.min_public_hex_m (250 m) across;
- KDE heatmaps use a bandwidth and a cell of at least 250 m (a tiny bandwidth would redraw
  the points);
- DBSCAN clusters are returned only as hulls of clusters with at least 3 incidents, never
  member points.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import Connection, text

from antt.crs import METRIC_SRID
from antt.settings import get_settings
from api.deps import Principal, get_conn, get_principal
from api.problems import Problem, field_error
from geo import coverage as cov
from geo.filters import IncidentFilter

PROBLEM = "application/problem+json"
COUNT_COLUMNS = ("incidents", "youth_incidents", "incidents_last_year")
DERIVED_FROM_COUNTS = ("change", "change_pct", "incidents_per_1000")


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    words = {400: "Yêu cầu sai / bad request", 401: "Chưa đăng nhập / not authenticated",
             403: "Không có quyền hoặc ngoài phạm vi / forbidden or outside your scope",
             404: "Không tìm thấy / not found", 413: "Quá lớn / too large",
             422: "Tham số không hợp lệ / invalid parameter"}
    return {c: {"description": words[c], "content": {PROBLEM: {}}} for c in codes}


class FeatureCollection(BaseModel):
    type: str = "FeatureCollection"
    features: list[dict[str, Any]]
    numberReturned: int  # noqa: N815 - OGC API Features spelling
    parameters: dict[str, Any] = {}


def bad(field: str, vi: str, en: str) -> Problem:
    return Problem(422, f"{field}: {vi}", f"{field}: {en}", [field_error(field, vi, en)])


# --- shared helpers (also used by api/units.py) ---------------------------------------------

def today_vn() -> dt.date:
    return dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).date()


def incident_filter(start: dt.date | None, end: dt.date | None, category: str | None,
                    youth: bool | None, conn: Connection | None = None) -> IncidentFilter:
    if category in ("", "all"):
        category = None
    if category is not None and conn is not None and not conn.execute(
            text("SELECT 1 FROM incident_category WHERE code = :c"), {"c": category}).first():
        raise bad("category", "không có trong danh mục", f"unknown category {category!r}")
    try:
        return IncidentFilter(start=start, end=end, category=category, youth=youth)
    except ValueError as exc:
        field = "category" if "category" in str(exc) else "end"
        raise bad(field, "không hợp lệ", str(exc)) from exc


def resolve_area(conn: Connection, principal: Principal, province: str | None,
                 commune: str | None) -> tuple[str | None, str | None]:
    """(province_code, commune_code) for a geo call, narrowed to the caller's scope (403 outside)."""
    if commune is not None:
        row = conn.execute(text("SELECT province_code FROM admin_unit WHERE level = 'commune' "
                                "AND code = :c LIMIT 1"), {"c": commune}).first()
        if row is None:
            raise Problem(404, f"Không có xã mã {commune}", f"No commune with code {commune}",
                          [field_error("commune", "không tồn tại", "unknown")])
        if province is not None and row.province_code != province:
            raise bad("commune", "không thuộc tỉnh đã chọn", "is not in the given province")
        outside = (principal.scope_level == "province" and row.province_code != principal.scope_code) or \
                  (principal.scope_level == "commune" and commune != principal.scope_code)
        if outside:
            raise _out_of_scope("commune")
        return None, commune
    if principal.scope_level == "commune":
        if province is not None:
            raise _out_of_scope("province")
        return None, principal.scope_code
    if principal.scope_level == "province":
        if province is not None and province != principal.scope_code:
            raise _out_of_scope("province")
        return principal.scope_code, None
    return province, None


def _out_of_scope(field: str) -> Problem:
    return Problem(403, "Ngoài phạm vi tài khoản", "Outside this account's scope",
                   [field_error(field, "ngoài phạm vi", "outside the account's scope")])


def clean(value: Any) -> Any:
    """numpy/pandas/Decimal/date values → plain JSON values (NaN → None)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "__float__") and not isinstance(value, (int, str)):
        return float(value)
    return value


def suppress_small(records: list[dict[str, Any]], principal: Principal,
                   counts: Iterable[str] = COUNT_COLUMNS,
                   derived: Iterable[str] = DERIVED_FROM_COUNTS) -> list[dict[str, Any]]:
    """For non-police roles: counts of 1 or 2 → None, and anything derived from them."""
    if principal.sees_points:
        return records
    limit = get_settings().suppress_below
    counts, derived = tuple(counts), tuple(derived)
    for rec in records:
        hidden = False
        for col in counts:
            value = rec.get(col)
            if value is not None and 0 < value < limit:
                rec[col] = None
                hidden = True
        if hidden:
            for col in derived:
                if col in rec:
                    rec[col] = None
            rec["suppressed"] = True
    return records


def geometries(conn: Connection, ids: list[int], simplify_m: float) -> dict[int, Any]:
    """Unit polygons as GeoJSON, simplified in metres (EPSG:3405) for display."""
    if not ids:
        return {}
    rows = conn.execute(text(
        "SELECT id, ST_AsGeoJSON(CASE WHEN :s > 0 THEN ST_Transform(ST_SimplifyPreserveTopology("
        f"ST_Transform(geom, {METRIC_SRID}), :s), 4326) ELSE geom END, 6) AS g "
        "FROM admin_unit WHERE id = ANY(:ids)"), {"ids": ids, "s": simplify_m}).all()
    return {r.id: json.loads(r.g) if r.g else None for r in rows}


def frame_to_features(conn: Connection, df: pd.DataFrame, simplify_m: float,
                      principal: Principal) -> list[dict[str, Any]]:
    records = [{k: clean(v) for k, v in rec.items()} for rec in df.to_dict("records")]
    records = suppress_small(records, principal)
    geoms = geometries(conn, [int(r["id"]) for r in records], simplify_m)
    return [{"type": "Feature", "id": r["code"], "geometry": geoms.get(int(r["id"])),
             "properties": r} for r in records]


def coverage_rule(min_rating: str | None, model_types: str | None, min_count: int,
                  commune_min_share: float) -> cov.CoverageRule:
    types = tuple(t.strip() for t in model_types.split(",") if t.strip()) if model_types else None
    try:
        return cov.CoverageRule(min_rating=None if min_rating == "any" else min_rating,
                                model_types=types, min_count=min_count,
                                commune_min_share=commune_min_share)
    except ValueError as exc:
        raise bad("min_rating", "không hợp lệ", str(exc)) from exc


# --- query parameter groups -------------------------------------------------------------------

class CoverageParams:
    """Parameters of geo.coverage (the rule, the date, the area)."""

    def __init__(
        self,
        date: dt.date | None = Query(None, description="Ngày / date (default today)"),
        min_rating: str = Query("trung_binh", pattern="^(tot|kha|trung_binh|yeu|any)$",
                                description="Xếp loại tối thiểu / minimum rating ('any': all)"),
        model_types: str | None = Query(None, max_length=500, description="type codes, comma separated"),
        min_count: int = Query(1, ge=1, le=1000),
        commune_min_share: float = Query(0.8, ge=0, le=1),
        province: str | None = Query(None, max_length=10, pattern=r"^\d+$"),
        commune: str | None = Query(None, max_length=10, pattern=r"^\d+$"),
        simplify: float = Query(20.0, ge=0, le=5000, description="Đơn giản hóa (m) / simplify (m)"),
    ) -> None:
        self.on = date or today_vn()
        self.rule = coverage_rule(min_rating, model_types, min_count, commune_min_share)
        self.province, self.commune, self.simplify = province, commune, simplify
        self.echo = {"date": self.on.isoformat(), "min_rating": min_rating, "model_types": model_types,
                     "min_count": min_count, "commune_min_share": commune_min_share}


class PeriodParams:
    """The common incident filters: start, end (dates, inclusive), category (path), youth."""

    def __init__(
        self,
        start: dt.date | None = Query(None, description="Từ ngày / from (inclusive)"),
        end: dt.date | None = Query(None, description="Đến ngày / to (inclusive)"),
        category: str | None = Query(None, max_length=100, description="crime, crime/theft, ..."),
        youth: bool | None = Query(None),
    ) -> None:
        self.start, self.end, self.category, self.youth = start, end, category, youth

    def filter(self, conn: Connection) -> IncidentFilter:
        return incident_filter(self.start, self.end, self.category, self.youth, conn)


def _check_types(conn: Connection, rule: cov.CoverageRule) -> None:
    if rule.model_types:
        known = set(conn.execute(text("SELECT code FROM model_type")).scalars())
        unknown = [t for t in rule.model_types if t not in known]
        if unknown:
            raise bad("model_types", f"không có trong danh mục: {unknown}", f"unknown types {unknown}")


router = APIRouter(prefix="/analytics", tags=["analytics"])


@router.get("/coverage/communes", response_model=FeatureCollection, responses=responses(401, 403, 404, 422),
            summary="Độ phủ mô hình theo xã / model coverage per commune")
def coverage_communes(p: CoverageParams = Depends(),
                      radius: float = Query(500, gt=0, le=20_000, description="R (m), population within R"),
                      principal: Principal = Depends(get_principal),
                      conn: Connection = Depends(get_conn)) -> FeatureCollection:
    _check_types(conn, p.rule)
    province, commune = resolve_area(conn, principal, p.province, p.commune)
    df = cov.commune_coverage(conn, p.on, p.rule, radius_m=radius, province_code=province,
                              commune_code=commune)
    features = frame_to_features(conn, df, p.simplify, principal)
    return FeatureCollection(features=features, numberReturned=len(features),
                             parameters={**p.echo, "radius": radius})


@router.get("/coverage/villages", response_model=FeatureCollection, responses=responses(401, 403, 404, 422),
            summary="Độ phủ mô hình theo thôn / model coverage per village")
def coverage_villages(p: CoverageParams = Depends(), principal: Principal = Depends(get_principal),
                      conn: Connection = Depends(get_conn)) -> FeatureCollection:
    _check_types(conn, p.rule)
    province, commune = resolve_area(conn, principal, p.province, p.commune)
    df = cov.village_coverage(conn, p.on, p.rule, province_code=province, commune_code=commune)
    features = frame_to_features(conn, df, p.simplify, principal)
    return FeatureCollection(features=features, numberReturned=len(features), parameters=p.echo)


@router.get("/coverage/uncovered", response_model=FeatureCollection, responses=responses(401, 403, 404, 422),
            summary="Thôn/xã chưa có mô hình, xếp theo nhu cầu / uncovered units ranked by need")
def coverage_uncovered(level: str = Query("village", pattern="^(village|commune)$"),
                       p: CoverageParams = Depends(), period: PeriodParams = Depends(),
                       radius: float = Query(500, gt=0, le=20_000),
                       principal: Principal = Depends(get_principal),
                       conn: Connection = Depends(get_conn)) -> FeatureCollection:
    _check_types(conn, p.rule)
    province, commune = resolve_area(conn, principal, p.province, p.commune)
    flt = period.filter(conn)
    if flt.start is None and flt.end is None:
        flt = IncidentFilter(start=p.on - dt.timedelta(days=364), end=p.on, category=flt.category,
                             youth=flt.youth)
    if level == "village":
        df = cov.uncovered_villages(conn, p.on, p.rule, period=flt, province_code=province,
                                    commune_code=commune)
    else:
        # geo ranks communes within a province; a commune-scoped call keeps its own row.
        within = province or (commune and conn.execute(text(
            "SELECT province_code FROM admin_unit WHERE level = 'commune' AND code = :c LIMIT 1"),
            {"c": commune}).scalar())
        df = cov.uncovered_communes(conn, p.on, p.rule, radius_m=radius, period=flt,
                                    province_code=within)
        if commune is not None:
            df = df[df["code"] == commune]
    features = frame_to_features(conn, df, p.simplify, principal)
    return FeatureCollection(features=features, numberReturned=len(features),
                             parameters={**p.echo, "level": level, "start": str(flt.start),
                                         "end": str(flt.end), "category": flt.category})


def require_area(province: str | None, commune: str | None) -> None:
    if province is None and commune is None:
        raise bad("province", "cần chọn tỉnh hoặc xã", "give a province or a commune")


def min_cell(principal: Principal, field: str, value: float) -> None:
    """Non-police roles may not ask for cells (or bandwidths) finer than settings.min_public_hex_m."""
    floor = get_settings().min_public_hex_m
    if not principal.sees_points and value < floor:
        raise Problem(403, f"{field} tối thiểu {floor:g} m với vai trò '{principal.role}'",
                      f"{field} must be at least {floor:g} m for role '{principal.role}'",
                      [field_error(field, f"tối thiểu {floor:g} m", f"at least {floor:g} m")])


def _geo_value_error(exc: ValueError) -> Problem:
    return Problem(422, f"Không phân tích được: {exc}", f"Cannot analyse: {exc}",
                   [field_error("area", "không đủ dữ liệu", str(exc))])


@router.get("/hotspots", response_model=FeatureCollection, responses=responses(401, 403, 404, 422),
            summary="Điểm nóng Gi* theo lục giác hoặc thôn / Gi* hotspots on hexagons or villages")
def hotspots(unit: str = Query("hex", pattern="^(hex|village)$"),
             cell: float = Query(500, ge=50, le=20_000, description="Cạnh lục giác (m) / hexagon side (m)"),
             band: float | None = Query(None, gt=0, le=100_000, description="Distance band (m)"),
             k: int | None = Query(None, ge=1, le=50, description="k nearest neighbours"),
             fdr: bool = Query(False, description="Benjamini-Hochberg FDR"),
             date: dt.date | None = Query(None, description="Units valid on / ranh giới ngày"),
             province: str | None = Query(None, max_length=10, pattern=r"^\d+$"),
             commune: str | None = Query(None, max_length=10, pattern=r"^\d+$"),
             period: PeriodParams = Depends(),
             principal: Principal = Depends(get_principal),
             conn: Connection = Depends(get_conn)) -> FeatureCollection:
    from geo import hotspots as hs

    if band is not None and k is not None:
        raise bad("k", "không dùng cùng band", "give band or k, not both")
    if unit == "hex":
        min_cell(principal, "cell", cell)
    flt = period.filter(conn)
    province, commune = resolve_area(conn, principal, province, commune)
    require_area(province, commune)
    on = date or flt.end or today_vn()
    try:
        if unit == "hex":
            df = hs.hex_hotspots(conn, cell, flt, province, commune, band_m=band, k=k, fdr=fdr, on=on)
            props = ["i", "j", "count", "z", "p", "bin", "moran_i", "moran_q"]
        else:
            nearest = None if band is not None else (k or 8)  # geo's default: 8 nearest villages
            df = hs.village_hotspots(conn, flt, province, commune, k=nearest, band_m=band, fdr=fdr, on=on)
            props = ["code", "name", "commune_code", "population", "count", "z", "p", "bin",
                     "moran_i", "moran_q"]
    except ValueError as exc:
        raise _geo_value_error(exc) from exc
    features = []
    for rec in df.to_dict("records"):
        p = {name: clean(rec[name]) for name in props}
        features.append({"type": "Feature", "geometry": rec["geometry"], "properties": p})
    for f in features:
        suppress_small([f["properties"]], principal, counts=("count",), derived=())
    return FeatureCollection(features=features, numberReturned=len(features),
                             parameters={"unit": unit, "cell": cell if unit == "hex" else None,
                                         "band": band, "k": k, "fdr": fdr, "on": on.isoformat(),
                                         "province": province, "commune": commune,
                                         "start": str(flt.start), "end": str(flt.end),
                                         "category": flt.category, "youth": flt.youth})
