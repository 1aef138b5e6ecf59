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
import math
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import Connection, text

from antt.settings import get_settings
from api.deps import Principal, get_conn, get_principal
from api.geojson import feature_collection_entry, unit_geometries
from api.guards import reject_nul
from api.problems import Problem, field_error
from api.resultcache import (
    COVERAGE,
    INCIDENTS,
    NO_STORE,
    PRIVATE,
    UNCOVERED,
    Context,
    cached,
    json_entry,
)
from geo import coverage as cov
from geo.filters import IncidentFilter
from layers.filters import VIETNAM_BBOX, FilterError, parse_bbox
from layers.resultcache import Entry

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


def bbox_param(value: str | None) -> tuple[float, float, float, float] | None:
    """The analytics ``bbox``: parsed by the one parser (layers.filters.parse_bbox, OGC rules,
    a box with an area) and required to lie in Vietnam; 422 naming ``bbox`` otherwise."""
    if not value:
        return None
    try:
        box = parse_bbox(value, within=VIETNAM_BBOX)
    except FilterError as exc:
        raise bad(exc.field or "bbox", exc.vi, exc.en) from exc
    return box.minx, box.miny, box.maxx, box.maxy


# --- shared helpers (also used by api/units.py) ---------------------------------------------

def today_vn() -> dt.date:
    """Today in Asia/Ho_Chi_Minh (UTC+7 all year): the day parameters default to."""
    return dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).date()


def result(request: Request, principal: Principal, conn: Connection, name: str,
           tables: tuple[str, ...], build: Callable[[Context], Entry],
           cache_control: str = PRIVATE) -> Response:
    """The analysis `name` through the shared result cache (api/resultcache.py), keyed with
    today's date here (parameters default to it)."""
    return cached(request, principal, conn, today_vn(), name, tables, build, cache_control)


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


def clean_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """``df``'s rows as dicts of plain JSON values, as ``clean`` gives them, column by column:
    numpy float, int and bool columns convert in one step each (value by value, the whole
    country's coverage rows took 0.45 s); other columns go through ``clean``."""
    names = [str(n) for n in df.columns]
    columns = []
    for name in df.columns:
        col = df[name]
        kind = col.dtype.kind if isinstance(col.dtype, np.dtype) else "O"
        if kind == "f":
            values = col.to_numpy(dtype="float64")
            finite = np.isfinite(values).tolist()
            columns.append([v if ok else None for v, ok in zip(values.tolist(), finite, strict=True)])
        elif kind in "iub":
            columns.append(col.to_numpy().tolist())
        else:
            columns.append([clean(v) for v in col.tolist()])
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


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


def unit_collection(conn: Connection, df: pd.DataFrame, simplify_m: float, principal: Principal,
                    bbox: tuple[float, float, float, float] | None, parameters: dict[str, Any]) -> Entry:
    """One Feature per row of ``df`` (a unit: ``id``, ``code``), in order, with its outline
    simplified by ``simplify_m`` (api.geojson: spliced as PostGIS wrote it), keeping the units
    meeting ``bbox``; counts of 1-2 suppressed for roles that do not see points."""
    records = clean_records(df)
    if bbox is not None and records:
        inside = set(conn.execute(text(
            "SELECT id FROM admin_unit WHERE id = ANY(:ids) AND ST_Intersects(geom, "
            "ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326))"),
            {"ids": [int(r["id"]) for r in records], "x0": bbox[0], "y0": bbox[1], "x1": bbox[2],
             "y1": bbox[3]}).scalars())
        records = [r for r in records if int(r["id"]) in inside]
    records = suppress_small(records, principal)
    geoms = unit_geometries(conn, [int(r["id"]) for r in records], simplify_m)
    return feature_collection_entry(((r["code"], geoms.get(int(r["id"])), r) for r in records),
                                    numberReturned=len(records), parameters=parameters)


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
        bbox: str | None = Query(None, max_length=200,
                                 description="minx,miny,maxx,maxy: units meeting it"),
    ) -> None:
        self.bbox = bbox_param(bbox)
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


router = APIRouter(prefix="/analytics", tags=["analytics"], dependencies=[Depends(reject_nul)])


@router.get("/coverage/communes", response_model=FeatureCollection, responses=responses(401, 403, 404, 422),
            summary="Độ phủ mô hình theo xã / model coverage per commune")
def coverage_communes(request: Request, p: CoverageParams = Depends(),
                      radius: float = Query(500, gt=0, le=20_000, description="R (m), population within R"),
                      principal: Principal = Depends(get_principal),
                      conn: Connection = Depends(get_conn)) -> Response:
    def build(_: Context) -> Entry:
        _check_types(conn, p.rule)
        province, commune = resolve_area(conn, principal, p.province, p.commune)
        df = cov.commune_coverage(conn, p.on, p.rule, radius_m=radius, province_code=province,
                                  commune_code=commune)
        return unit_collection(conn, df, p.simplify, principal, p.bbox, {**p.echo, "radius": radius})

    return result(request, principal, conn, "coverage/communes", COVERAGE, build)


@router.get("/coverage/villages", response_model=FeatureCollection, responses=responses(401, 403, 404, 422),
            summary="Độ phủ mô hình theo thôn / model coverage per village")
def coverage_villages(request: Request, p: CoverageParams = Depends(),
                      principal: Principal = Depends(get_principal),
                      conn: Connection = Depends(get_conn)) -> Response:
    def build(_: Context) -> Entry:
        _check_types(conn, p.rule)
        province, commune = resolve_area(conn, principal, p.province, p.commune)
        df = cov.village_coverage(conn, p.on, p.rule, province_code=province, commune_code=commune)
        return unit_collection(conn, df, p.simplify, principal, p.bbox, p.echo)

    return result(request, principal, conn, "coverage/villages", COVERAGE, build)


@router.get("/coverage/uncovered", response_model=FeatureCollection, responses=responses(401, 403, 404, 422),
            summary="Thôn/xã chưa có mô hình, xếp theo nhu cầu / uncovered units ranked by need")
def coverage_uncovered(request: Request, level: str = Query("village", pattern="^(village|commune)$"),
                       p: CoverageParams = Depends(), period: PeriodParams = Depends(),
                       radius: float = Query(500, gt=0, le=20_000),
                       principal: Principal = Depends(get_principal),
                       conn: Connection = Depends(get_conn)) -> Response:
    def build(_: Context) -> Entry:
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
        return unit_collection(conn, df, p.simplify, principal, p.bbox,
                               {**p.echo, "level": level, "start": str(flt.start), "end": str(flt.end),
                                "category": flt.category})

    return result(request, principal, conn, "coverage/uncovered", UNCOVERED, build)


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


MAX_GRID_CELLS = 250_000


def check_grid(conn: Connection, province: str | None, commune: str | None, cell_m: float,
               on: dt.date, field: str = "cell") -> None:
    """404 without a study area on ``on``; 413 before building a hexagon grid of more than
    MAX_GRID_CELLS cells over it (geo.grid.estimated_hexagons)."""
    from geo.grid import estimated_hexagons

    cells = estimated_hexagons(conn, cell_m, province, commune, on)
    if cells is None:
        raise Problem(404, "Không tìm thấy vùng", "Study area not found",
                      [field_error("commune" if commune else "province", "không tồn tại", "unknown")])
    if cells > MAX_GRID_CELLS:
        raise Problem(413, f"Khoảng {cells:,.0f} ô; hãy tăng '{field}' hoặc chọn vùng nhỏ hơn",
                      f"About {cells:,.0f} cells; use a larger '{field}' or a smaller area",
                      [field_error(field, "quá nhỏ cho vùng này", "too small for this area")],
                      limit=MAX_GRID_CELLS)


def _geo_value_error(exc: ValueError) -> Problem:
    return Problem(422, f"Không phân tích được: {exc}", f"Cannot analyse: {exc}",
                   [field_error("area", "không đủ dữ liệu", str(exc))])


@router.get("/hotspots", response_model=FeatureCollection, responses=responses(401, 403, 404, 422),
            summary="Điểm nóng Gi* theo lục giác hoặc thôn / Gi* hotspots on hexagons or villages")
def hotspots(request: Request, unit: str = Query("hex", pattern="^(hex|village)$"),
             cell: float = Query(500, ge=50, le=20_000, description="Cạnh lục giác (m) / hexagon side (m)"),
             band: float | None = Query(None, gt=0, le=100_000, description="Distance band (m)"),
             k: int | None = Query(None, ge=1, le=50, description="k nearest neighbours"),
             fdr: bool = Query(False, description="Benjamini-Hochberg FDR"),
             date: dt.date | None = Query(None, description="Units valid on / ranh giới ngày"),
             province: str | None = Query(None, max_length=10, pattern=r"^\d+$"),
             commune: str | None = Query(None, max_length=10, pattern=r"^\d+$"),
             period: PeriodParams = Depends(),
             principal: Principal = Depends(get_principal),
             conn: Connection = Depends(get_conn)) -> Response:
    def build() -> FeatureCollection:
        nonlocal province, commune
        from geo import hotspots as hs

        if band is not None and k is not None:
            raise bad("k", "không dùng cùng band", "give band or k, not both")
        if unit == "hex":
            min_cell(principal, "cell", cell)
        flt = period.filter(conn)
        province, commune = resolve_area(conn, principal, province, commune)
        require_area(province, commune)
        on = date or today_vn()  # the current map: incidents of any period fall in it
        if unit == "hex":
            check_grid(conn, province, commune, cell, on)
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

    return result(request, principal, conn, "hotspots", INCIDENTS, lambda _: json_entry(build()))


# --- heatmap (kernel density) ------------------------------------------------------------------

class HeatmapParams:
    """Where and how finely: a province, a commune or a bbox (lon/lat); cell and bandwidth in metres."""

    def __init__(
        self,
        bbox: str | None = Query(None, max_length=200, description="minx,miny,maxx,maxy (lon/lat)"),
        province: str | None = Query(None, max_length=10, pattern=r"^\d+$"),
        commune: str | None = Query(None, max_length=10, pattern=r"^\d+$"),
        cell: float = Query(250, ge=25, le=20_000, description="Ô lưới (m) / grid cell (m)"),
        bandwidth: float | None = Query(None, gt=0, le=50_000,
                                        description="Bán kính nhân / kernel radius (m); default Silverman"),
        weight: str | None = Query(None, pattern="^(deaths|injuries|casualties)$"),
        classes: int = Query(5, ge=1, le=12), method: str = Query("quantile", pattern="^(quantile|equal)$"),
        date: dt.date | None = Query(None, description="Units valid on / ranh giới ngày"),
        size: int = Query(512, ge=64, le=2048, description="PNG: longest side in pixels"),
    ) -> None:
        self.bbox_text, self.province, self.commune, self.size = bbox, province, commune, size
        self.cell, self.bandwidth, self.weight = cell, bandwidth, weight
        self.classes, self.method, self.date = classes, method, date
        self.bbox = bbox_param(bbox)


MAX_KDE_CELLS = 250_000


def kde_for(conn: Connection, principal: Principal, hp: HeatmapParams, flt: IncidentFilter):
    """(KdeGrid, xy, weights, notes): the density grid over the study area (geo.heatmap).

    Non-police roles: the cell and the bandwidth are at least settings.min_public_hex_m, and the
    incidents are first counted on squares of that size, squares with fewer than
    settings.suppress_below incidents dropped, and the kernel run on the square centres — so the
    surface carries no more than the public aggregate does (a density peak cannot point at a
    household)."""
    from geo import heatmap as hm
    from geo.kde import GridTooLarge

    s = get_settings()
    public = not principal.sees_points
    if public:
        min_cell(principal, "cell", hp.cell)
        if hp.bandwidth is not None:
            min_cell(principal, "bandwidth", hp.bandwidth)
    province, commune = resolve_area(conn, principal, hp.province, hp.commune)
    if hp.bbox is None:
        require_area(province, commune)
    # A bbox is the area; the account's scope (or the chosen unit) still bounds the incidents.
    area = hm.area_wkb(conn, province, commune, hp.bbox, hp.date or today_vn())
    if area is None:
        raise Problem(404, "Không tìm thấy vùng", "Study area not found",
                      [field_error("commune" if commune else "province", "không tồn tại", "unknown")])
    try:
        res = hm.heatmap(conn, flt, area, hp.cell, hp.bandwidth, hp.weight, province, commune,
                         square_m=max(s.min_public_hex_m, hp.cell) if public else None,
                         min_count=s.suppress_below if public else 1,
                         floor_m=s.min_public_hex_m if public else None, max_cells=MAX_KDE_CELLS)
    except hm.TooFewPoints as exc:
        raise Problem(422, f"Không đủ điểm để tự chọn bán kính: {exc}",
                      f"Too few incidents for a default bandwidth: {exc}; give 'bandwidth'",
                      [field_error("bandwidth", "cần nhập", "required here")]) from exc
    except GridTooLarge as exc:
        raise Problem(413, f"{exc.cells} ô lưới; hãy tăng 'cell' hoặc thu hẹp vùng",
                      f"{exc.cells} grid cells; use a larger 'cell' or a smaller area",
                      [field_error("cell", "quá nhỏ cho vùng này", "too small for this area")],
                      limit=MAX_KDE_CELLS) from exc
    return res.grid, res.xy, res.weights, res.notes


class HeatmapJson(BaseModel):
    png_url: str
    bounds: list[float]
    bandwidth_m: float
    cell_m: float
    n_points: int
    notes: dict[str, Any] = {}


def png_entry(grid, xy, weights, principal: Principal, hp: HeatmapParams) -> Entry:
    """The heatmap PNG of a computed grid, with its bounds and bandwidth headers. Police get
    pixels recomputed from the points; other roles the grid (already aggregated)."""
    from geo import kde

    png, ((south, west), (north, east)) = kde.grid_png(grid, xy if principal.sees_points else None,
                                                        weights if principal.sees_points else None,
                                                        max_pixels=hp.size)
    return Entry(png, "image/png", {"X-Bounds": ",".join(f"{v:.7f}" for v in (west, south, east, north)),
                                    "X-Bandwidth-M": f"{grid.bandwidth_m:.1f}"})


@router.get("/heatmap", responses={**responses(401, 403, 404, 413, 422),
                                   200: {"content": {"application/geo+json": {}, "image/png": {}},
                                         "description": "GeoJSON cells/contours, or a PNG"}},
            summary="Bản đồ nhiệt KDE / kernel density heatmap (geojson | contours | png)")
def heatmap(request: Request, format: str = Query("geojson", pattern="^(geojson|contours|png)$"),
            hp: HeatmapParams = Depends(), period: PeriodParams = Depends(),
            principal: Principal = Depends(get_principal), conn: Connection = Depends(get_conn)) -> Response:
    """The PNG is `no-store` (it may be drawn from exact points); the GeoJSON `private`."""
    from geo import kde

    def build(_: Context) -> Entry:
        flt = period.filter(conn)
        grid, xy, w, notes = kde_for(conn, principal, hp, flt)
        if format == "png":
            return png_entry(grid, xy, w, principal, hp)
        body = kde.grid_cells_geojson(grid) if format == "geojson" else \
            kde.grid_contours_geojson(grid, hp.classes, hp.method)
        body["notes"] = notes
        return json_entry(clean(body), "application/geo+json")

    return result(request, principal, conn, HEATMAP, INCIDENTS, build,
                  NO_STORE if format == "png" else PRIVATE)


HEATMAP = "heatmap"  # the cache name of /analytics/heatmap, which heatmap.json fills for its PNG


@router.get("/heatmap.json", response_model=HeatmapJson, responses=responses(401, 403, 404, 413, 422),
            summary="URL và khung của ảnh nhiệt / the PNG heatmap's URL and bounds")
def heatmap_json(request: Request, hp: HeatmapParams = Depends(), period: PeriodParams = Depends(),
                 principal: Principal = Depends(get_principal),
                 conn: Connection = Depends(get_conn)) -> Response:
    """With the result cache on, the PNG at `png_url` is drawn from the same grid and stored
    under the key that request will look up: the page's next request costs one lookup."""
    from geo.kde import png_bounds

    def build(ctx: Context) -> Entry:
        flt = period.filter(conn)
        grid, xy, w, notes = kde_for(conn, principal, hp, flt)
        bounds = png_bounds(grid)
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "format"] + [("format", "png")]
        png_url = f"{request.url_for('heatmap').path}?{urlencode(query)}"
        if ctx.storing:  # the PNG request's own items: png_url parsed as Starlette parses it
            ctx.also(HEATMAP, parse_qsl(urlsplit(png_url).query, keep_blank_values=True),
                     png_entry(grid, xy, w, principal, hp))
        return json_entry(HeatmapJson(png_url=png_url, bounds=bounds, bandwidth_m=grid.bandwidth_m,
                                      cell_m=grid.cell_m, n_points=grid.n_points, notes=notes))

    return result(request, principal, conn, "heatmap.json", INCIDENTS, build)


# --- DBSCAN clusters -----------------------------------------------------------------------------

@router.get("/clusters", response_model=FeatureCollection, responses=responses(401, 403, 404, 422),
            summary="Cụm vụ việc DBSCAN (đường bao) / DBSCAN incident clusters as hulls")
def clusters(request: Request, eps: float = Query(200, gt=0, le=10_000, description="Bán kính / eps (m)"),
             min_points: int = Query(5, ge=1, le=10_000),
             hull: str = Query("convex", pattern="^(convex|concave)$"),
             concave_ratio: float = Query(0.5, gt=0, le=1),
             date: dt.date | None = Query(None, description="Units valid on / ranh giới ngày"),
             province: str | None = Query(None, max_length=10, pattern=r"^\d+$"),
             commune: str | None = Query(None, max_length=10, pattern=r"^\d+$"),
             period: PeriodParams = Depends(),
             principal: Principal = Depends(get_principal),
             conn: Connection = Depends(get_conn)) -> Response:
    def build() -> FeatureCollection:
        nonlocal province, commune
        from geo.clusters import coarsen_hull, incident_clusters

        s = get_settings()
        public = not principal.sees_points
        if public and min_points < s.suppress_below:
            raise Problem(403, f"min_points tối thiểu {s.suppress_below} với vai trò '{principal.role}'",
                          f"min_points must be at least {s.suppress_below} for role '{principal.role}'",
                          [field_error("min_points", f"tối thiểu {s.suppress_below}",
                                       f"at least {s.suppress_below}")])
        flt = period.filter(conn)
        province, commune = resolve_area(conn, principal, province, commune)
        require_area(province, commune)
        try:
            df = incident_clusters(conn, flt, eps_m=eps, min_points=min_points, province_code=province,
                                   commune_code=commune, hull=hull, concave_ratio=concave_ratio,
                                   on=date or today_vn())
        except ValueError as exc:
            raise _geo_value_error(exc) from exc
        features = []
        for rec in df.to_dict("records"):
            props = {"cluster_id": clean(rec["cluster"]), "count": clean(rec["count"]),
                     "youth": clean(rec["youth"]), "area_m2": clean(rec["area_m2"])}
            geometry = rec["geometry"]
            if public:
                if props["count"] < s.suppress_below:
                    continue
                geometry = coarsen_hull(geometry, s.min_public_hex_m)
                suppress_small([props], principal, counts=("youth",), derived=())
            else:
                props.update(first_id=clean(rec["first_id"]), first_at=clean(rec["first_at"]),
                             last_at=clean(rec["last_at"]))
            features.append({"type": "Feature", "geometry": geometry, "properties": props})
        return FeatureCollection(features=features, numberReturned=len(features),
                                 parameters={"eps": eps, "min_points": min_points, "hull": hull,
                                             "province": province, "commune": commune,
                                             "coarsened_to_m": s.min_public_hex_m if public else None})

    return result(request, principal, conn, "clusters", INCIDENTS, lambda _: json_entry(build()))


# --- time: trends, same period last year, emerging hot spots -------------------------------------

def _period_or(flt: IncidentFilter, start: dt.date, end: dt.date) -> IncidentFilter:
    """The filter with its missing ends filled in (documented defaults, echoed in the answer)."""
    return IncidentFilter(start=flt.start or start, end=flt.end or end, category=flt.category,
                          youth=flt.youth)


def _year_to_date(flt: IncidentFilter) -> IncidentFilter:
    end = flt.end or today_vn()
    try:
        return _period_or(flt, dt.date(end.year, 1, 1), end)
    except ValueError as exc:
        raise bad("start", "sau end", str(exc)) from exc


class TrendOut(BaseModel):
    level: str
    months: list[str]
    series: list[dict[str, Any]]
    total: list[float | None]
    parameters: dict[str, Any] = {}


@router.get("/trends", response_model=TrendOut, responses=responses(401, 403, 404, 422),
            summary="Số vụ theo tháng / monthly incident counts per commune or village")
def trends(request: Request, level: str = Query("commune", pattern="^(commune|village)$"),
           code: str | None = Query(None, max_length=10, pattern=r"^\d+$",
                                    description="Mã xã (level=commune: that commune; village: its villages)"),
           province: str | None = Query(None, max_length=10, pattern=r"^\d+$"),
           period: PeriodParams = Depends(),
           principal: Principal = Depends(get_principal),
           conn: Connection = Depends(get_conn)) -> Response:
    """Default period: the 12 calendar months ending with the current one."""
    def build() -> TrendOut:
        nonlocal province
        from geo.timeseries import monthly_series

        today = today_vn()
        first = dt.date(today.year - 1, today.month, 1) + dt.timedelta(days=32)
        flt = period.filter(conn)
        try:
            flt = _period_or(flt, first.replace(day=1), today)
        except ValueError as exc:
            raise bad("start", "sau end", str(exc)) from exc
        province, commune = resolve_area(conn, principal, province, code)
        require_area(province, commune)
        df = monthly_series(conn, flt, level, province_code=province, commune_code=commune, on=today_vn())
        months = sorted({m.isoformat()[:7] for m in df["month"]})
        series = []
        for (code_, name), grp in df.groupby(["code", "name"], sort=True):
            counts = [clean(v) for v in grp.sort_values("month")["count"]]
            series.append({"code": code_, "name": name, "counts": counts})
        totals = [float(sum(s["counts"][k] for s in series)) for k in range(len(months))]
        if not principal.sees_points:
            limit = get_settings().suppress_below
            for s in series:
                s["suppressed"] = any(0 < c < limit for c in s["counts"])
                s["counts"] = [None if 0 < c < limit else c for c in s["counts"]]
            totals = [None if 0 < t < limit else t for t in totals]
        return TrendOut(level=level, months=months, series=series, total=totals,
                        parameters={"start": str(flt.start), "end": str(flt.end), "category": flt.category,
                                    "youth": flt.youth, "province": province, "commune": commune})

    return result(request, principal, conn, "trends", INCIDENTS, lambda _: json_entry(build()))


class SamePeriodOut(BaseModel):
    level: str
    rows: list[dict[str, Any]]
    this_period: float | None
    last_year: float | None
    change: float | None
    change_pct: float | None
    parameters: dict[str, Any] = {}


@router.get("/same-period", response_model=SamePeriodOut, responses=responses(401, 403, 404, 422),
            summary="So với cùng kỳ năm trước / against the same period last year")
def same_period(request: Request, level: str = Query("commune", pattern="^(province|commune|village)$"),
                code: str | None = Query(None, max_length=10, pattern=r"^\d+$", description="Mã xã"),
                province: str | None = Query(None, max_length=10, pattern=r"^\d+$"),
                period: PeriodParams = Depends(),
                principal: Principal = Depends(get_principal),
                conn: Connection = Depends(get_conn)) -> Response:
    """Default period: 1 January to today (year to date). level=province sums the communes."""
    def build() -> SamePeriodOut:
        nonlocal province
        from geo.timeseries import same_period_last_year

        flt = _year_to_date(period.filter(conn))
        # Without a province or commune a nationwide account gets the whole country.
        province, commune = resolve_area(conn, principal, province, code)
        df = same_period_last_year(conn, flt, "village" if level == "village" else "commune",
                                   province_code=province, commune_code=commune, on=today_vn())
        cur, last = float(df["count"].sum()), float(df["count_last_year"].sum())
        records = [] if level == "province" else [
            {"code": r["code"], "name": r["name"], "this_period": clean(r["count"]),
             "last_year": clean(r["count_last_year"]), "change": clean(r["change"]),
             "change_pct": clean(r["change_pct"])} for r in df.to_dict("records")]
        totals = [{"this_period": cur, "last_year": last, "change": cur - last,
                   "change_pct": (cur - last) * 100.0 / last if last else None}]
        if not principal.sees_points:
            counts, derived = ("this_period", "last_year"), ("change", "change_pct")
            records = suppress_small(records, principal, counts, derived)
            totals = suppress_small(totals, principal, counts, derived)
        t = totals[0]
        return SamePeriodOut(level=level, rows=records, this_period=t["this_period"],
                             last_year=t["last_year"], change=t["change"], change_pct=t["change_pct"],
                             parameters={"start": str(flt.start), "end": str(flt.end),
                                         "last_year_start": str(flt.last_year().start),
                                         "last_year_end": str(flt.last_year().end), "category": flt.category,
                                         "youth": flt.youth, "province": province, "commune": commune})

    return result(request, principal, conn, "same-period", INCIDENTS, lambda _: json_entry(build()))


@router.get("/emerging-hotspots", response_model=FeatureCollection, responses=responses(401, 403, 404, 422),
            summary="Điểm nóng mới nổi / emerging hot spots (Gi* per step + Mann-Kendall)")
def emerging(request: Request,
             cell: float = Query(500, ge=50, le=20_000, description="Cạnh lục giác (m) / hexagon side"),
             step: str = Query("month", pattern="^(month|quarter)$"),
             date: dt.date | None = Query(None, description="Units valid on (default today)"),
             alpha: float = Query(0.05, gt=0, lt=1),
             province: str | None = Query(None, max_length=10, pattern=r"^\d+$"),
             commune: str | None = Query(None, max_length=10, pattern=r"^\d+$"),
             period: PeriodParams = Depends(),
             principal: Principal = Depends(get_principal),
             conn: Connection = Depends(get_conn)) -> Response:
    """Default period: the 12 months ending today."""
    def build() -> FeatureCollection:
        nonlocal province, commune
        from geo.emerging import emerging_hotspots

        min_cell(principal, "cell", cell)
        flt = period.filter(conn)
        end = flt.end or today_vn()
        try:
            flt = _period_or(flt, end - dt.timedelta(days=365), end)
        except ValueError as exc:
            raise bad("start", "sau end", str(exc)) from exc
        province, commune = resolve_area(conn, principal, province, commune)
        require_area(province, commune)
        check_grid(conn, province, commune, cell, date or today_vn())
        try:
            df = emerging_hotspots(conn, flt, cell_m=cell, step=step, province_code=province,
                                   commune_code=commune, alpha=alpha, on=date or today_vn())
        except ValueError as exc:
            raise _geo_value_error(exc) from exc
        props = ["i", "j", "category", "trend_z", "trend_p", "hot_steps", "cold_steps", "final_z", "total"]
        features = [{"type": "Feature", "geometry": rec["geometry"],
                     "properties": {k: clean(rec[k]) for k in props}} for rec in df.to_dict("records")]
        for f in features:
            suppress_small([f["properties"]], principal, counts=("total",), derived=())
        return FeatureCollection(features=features, numberReturned=len(features),
                                 parameters={"steps": df.attrs.get("steps", []), "cell": cell, "step": step,
                                             "alpha": alpha, "start": str(flt.start), "end": str(flt.end)})

    return result(request, principal, conn, "emerging-hotspots", INCIDENTS, lambda _: json_entry(build()))
