"""Incident points, in data.police.uk's idiom: `GET /incidents/{category}?date=YYYY-MM` with a
point and radius (`lat`, `lng`, `radius` in metres) or a polygon (`poly=lat,lng:lat,lng:...`),
and `POST /incidents/query` for polygons too long for a URL.

Why police/admin only: exact locations are police data (DOMAIN.md); every other role gets 403
here and uses the aggregate layers and analytics instead. Every answered read is audited.
A query matching more than settings.incident_query_cap incidents answers 413 — never a
silently truncated list. Distances are measured in metres in EPSG:3405.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import Connection, text

from antt.crs import METRIC_SRID
from antt.settings import get_settings
from api.audit import record
from api.deps import Principal, get_conn, get_principal
from api.guards import reject_nul
from api.problems import Problem, field_error
from api.scope import row_filter
from geo.filters import IncidentFilter

ALL = ("all", "all-crime", "all-incidents")
MONTH = re.compile(r"^(\d{4})-(\d{2})$")
MAX_GET_VERTICES = 200
MAX_VERTICES = 20_000
MAX_RADIUS_M = 50_000.0
PROBLEM = "application/problem+json"


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    words = {401: "Chưa đăng nhập / not authenticated",
             403: "Chỉ công an và quản trị xem điểm / points are for police and admin only",
             404: "Không có loại vụ việc / unknown category",
             413: "Vượt giới hạn; thu hẹp truy vấn / over the cap; narrow the query",
             422: "Tham số không hợp lệ / invalid parameter"}
    return {c: {"description": words[c], "content": {PROBLEM: {}}} for c in codes}


class IncidentQuery(BaseModel):
    """The body of POST /incidents/query (the same filters as the GET form)."""

    model_config = ConfigDict(extra="forbid")
    category: str = Field("all", max_length=100, description="'all' or a path such as crime/theft")
    date: str | None = Field(None, description="Tháng / month YYYY-MM")
    start: dt.date | None = None
    end: dt.date | None = None
    youth: bool | None = None
    lat: float | None = Field(None, ge=-90, le=90, allow_inf_nan=False)
    lng: float | None = Field(None, ge=-180, le=180, allow_inf_nan=False)
    radius: float | None = Field(None, gt=0, le=MAX_RADIUS_M, allow_inf_nan=False,
                                 description="metres (default 1000 with lat/lng)")
    poly: list[tuple[float, float]] | None = Field(
        None, min_length=3, max_length=MAX_VERTICES,
        description="[[lat, lng], ...] vertices of one polygon (closed automatically)")

    @model_validator(mode="after")
    def _finite(self) -> IncidentQuery:
        for lat, lng in self.poly or ():
            if not (-90 <= lat <= 90 and -180 <= lng <= 180):
                raise ValueError("poly vertices must be [lat, lng] in degrees")
        return self


class IncidentFeature(BaseModel):
    type: str = "Feature"
    id: int
    geometry: dict[str, Any]
    properties: dict[str, Any]


class IncidentCollection(BaseModel):
    type: str = "FeatureCollection"
    features: list[IncidentFeature]
    numberReturned: int  # noqa: N815 - OGC API Features spelling
    cap: int


def _bad(field: str, vi: str, en: str) -> Problem:
    return Problem(422, f"{field}: {vi}", f"{field}: {en}", [field_error(field, vi, en)])


def parse_poly(value: str) -> list[tuple[float, float]]:
    """'lat,lng:lat,lng:...' (police.uk) → [(lat, lng), ...]."""
    points = []
    for pair in value.split(":"):
        parts = pair.split(",")
        try:
            lat, lng = float(parts[0]), float(parts[1])
        except (ValueError, IndexError) as exc:
            raise _bad("poly", f"cặp tọa độ không hợp lệ {pair!r}", f"bad 'lat,lng' pair {pair!r}") from exc
        if len(parts) != 2 or not (-90 <= lat <= 90 and -180 <= lng <= 180):
            raise _bad("poly", f"cặp tọa độ không hợp lệ {pair!r}", f"bad 'lat,lng' pair {pair!r}")
        points.append((lat, lng))
    if len(points) < 3:
        raise _bad("poly", "cần ít nhất 3 đỉnh", "needs at least 3 vertices")
    if len(points) > MAX_GET_VERTICES:
        raise _bad("poly", f"quá {MAX_GET_VERTICES} đỉnh; dùng POST /incidents/query",
                   f"over {MAX_GET_VERTICES} vertices; use POST /incidents/query")
    return points


def month_range(value: str) -> tuple[dt.date, dt.date]:
    m = MONTH.match(value)
    if not m or not (1 <= int(m.group(2)) <= 12) or not (1900 <= int(m.group(1)) <= 2100):
        raise _bad("date", "phải có dạng YYYY-MM", "must be YYYY-MM")
    first = dt.date(int(m.group(1)), int(m.group(2)), 1)
    nxt = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, nxt - dt.timedelta(days=1)


def build_filter(conn: Connection, q: IncidentQuery) -> IncidentFilter:
    category = None if q.category in ALL else q.category
    if category is not None and not conn.execute(
            text("SELECT 1 FROM incident_category WHERE code = :c"), {"c": category}).first():
        raise Problem(404, f"Không có loại vụ việc {category!r}", f"Unknown category {category!r}",
                      [field_error("category", "không có trong danh mục", "not in the catalogue")])
    start, end = q.start, q.end
    if q.date is not None:
        if start or end:
            raise _bad("date", "không dùng cùng start/end", "do not combine with start/end")
        start, end = month_range(q.date)
    try:
        return IncidentFilter(start=start, end=end, category=category, youth=q.youth)
    except ValueError as exc:
        raise _bad("end", "trước start", str(exc)) from exc


def place_sql(q: IncidentQuery) -> tuple[str, dict[str, Any]]:
    """The WHERE fragment for the point+radius or polygon (index-friendly prefilter first)."""
    has_point = q.lat is not None or q.lng is not None
    if has_point and q.poly:
        raise _bad("poly", "không dùng cùng lat/lng", "do not combine with lat/lng")
    if q.radius is not None and not has_point:
        raise _bad("radius", "cần lat và lng", "needs lat and lng")
    if has_point:
        if q.lat is None or q.lng is None:
            raise _bad("lat" if q.lat is None else "lng", "cần cả lat và lng", "needs both lat and lng")
        radius = q.radius or 1000.0
        # Square envelope in metres (1% margin) → 4326 for the GiST index, then exact metres.
        return (" AND i.geom && ST_Transform(ST_Expand(c.p, :r * 1.01), 4326)"
                " AND ST_DWithin(i.geom_m, c.p, :r)",
                {"lat": q.lat, "lng": q.lng, "r": radius})
    if q.poly:
        ring = list(q.poly) + ([q.poly[0]] if q.poly[0] != q.poly[-1] else [])
        wkt = "POLYGON((" + ", ".join(f"{lng!r} {lat!r}" for lat, lng in ring) + "))"
        return " AND ST_Intersects(i.geom, ST_GeomFromText(:poly, 4326))", {"poly": wkt}
    return "", {}


def check_poly(conn: Connection, params: dict[str, Any]) -> None:
    """A simple polygon with an area, checked before PostGIS parses it (no 500 on bad rings)."""
    if "poly" not in params:
        return
    import shapely

    geom = shapely.from_wkt(params["poly"], on_invalid="ignore")
    reason = "not a polygon" if geom is None else (
        shapely.is_valid_reason(geom) if not shapely.is_valid(geom) else
        ("zero area" if geom.area == 0 else None))
    if reason:
        raise _bad("poly", f"đa giác không hợp lệ: {reason}", f"invalid polygon: {reason}")


def run_query(conn: Connection, principal: Principal, q: IncidentQuery) -> IncidentCollection:
    if not principal.sees_points:
        raise Problem(403, "Chỉ công an và quản trị viên xem được vị trí vụ việc; hãy dùng lớp tổng hợp",
                      "Exact incident locations are for police and admin only; use the aggregates",
                      [field_error("role", "không xem được điểm", "may not see points")])
    flt = build_filter(conn, q)
    where, params = flt.sql("i")
    place, place_params = place_sql(q)
    check_poly(conn, place_params)
    scope, scope_params = row_filter(principal, "i", incidents=True)
    cap = get_settings().incident_query_cap
    params.update(place_params, **scope_params, cap=cap + 1, lat=q.lat, lng=q.lng)
    rows = conn.execute(text(f"""
        WITH c AS (SELECT ST_Transform(ST_SetSRID(ST_MakePoint(CAST(:lng AS float8), CAST(:lat AS float8)),
                                                  4326), {METRIC_SRID}) AS p)
        SELECT i.id, ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat, i.category_code, i.occurred_at,
               i.precision, i.deaths, i.injuries, i.youth_involved, i.status,
               cu.code AS commune_code, vu.code AS village_code
        FROM incident i CROSS JOIN c
        LEFT JOIN admin_unit cu ON cu.id = i.commune_id
        LEFT JOIN admin_unit vu ON vu.id = i.village_id
        WHERE {where}{place}{scope}
        ORDER BY i.occurred_at, i.id
        LIMIT :cap"""), params).mappings().all()
    detail = q.model_dump(mode="json", exclude_none=True)
    if len(rows) > cap:
        record(conn, principal, "read_points_refused", "incidents", detail={**detail, "cap": cap})
        conn.commit()
        raise Problem(413, f"Truy vấn khớp hơn {cap} vụ việc; hãy thu hẹp thời gian hoặc vùng",
                      f"The query matches more than {cap} incidents; narrow the period or area",
                      [field_error("query", "vượt giới hạn", "over the cap")], cap=cap)
    features = [IncidentFeature(
        id=r["id"], geometry={"type": "Point", "coordinates": [r["lon"], r["lat"]]},
        properties={"category": r["category_code"], "occurred_at": r["occurred_at"].isoformat(),
                    "month": r["occurred_at"].astimezone(_VN).strftime("%Y-%m"),
                    "precision": r["precision"], "deaths": r["deaths"], "injuries": r["injuries"],
                    "youth_involved": r["youth_involved"], "status": r["status"],
                    "commune_code": r["commune_code"], "village_code": r["village_code"]})
        for r in rows]
    record(conn, principal, "read_points", "incidents", detail={**detail, "count": len(features)})
    conn.commit()
    return IncidentCollection(features=features, numberReturned=len(features), cap=cap)


_VN = dt.timezone(dt.timedelta(hours=7))

router = APIRouter(tags=["incidents"], dependencies=[Depends(reject_nul)])


@router.post("/incidents/query", response_model=IncidentCollection,
             responses=_responses(401, 403, 404, 413, 422),
             summary="Vụ việc theo đa giác lớn / incidents in a large polygon (police, admin)")
def query_incidents(body: IncidentQuery, principal: Principal = Depends(get_principal),
                    conn: Connection = Depends(get_conn)) -> IncidentCollection:
    return run_query(conn, principal, body)


@router.get("/incidents/{category:path}", response_model=IncidentCollection,
            responses=_responses(401, 403, 404, 413, 422),
            summary="Vụ việc theo loại, tháng, vùng / incidents by category, month, place (police, admin)")
def get_incidents(
    category: str = Path(..., max_length=100, description="'all' or a path: crime, crime/theft, ..."),
    date: str | None = Query(None, description="Tháng / month YYYY-MM"),
    start: dt.date | None = Query(None), end: dt.date | None = Query(None),
    youth: bool | None = Query(None),
    lat: float | None = Query(None, ge=-90, le=90), lng: float | None = Query(None, ge=-180, le=180),
    radius: float | None = Query(None, gt=0, le=MAX_RADIUS_M, description="metres (default 1000)"),
    poly: str | None = Query(None, max_length=10_000, description="lat,lng:lat,lng:... (≤ 200 vertices)"),
    principal: Principal = Depends(get_principal), conn: Connection = Depends(get_conn),
) -> IncidentCollection:
    if not principal.sees_points:  # before parsing anything: no oracle for non-police roles
        return run_query(conn, principal, IncidentQuery())
    try:
        q = IncidentQuery(category=category, date=date, start=start, end=end, youth=youth, lat=lat,
                          lng=lng, radius=radius, poly=parse_poly(poly) if poly else None)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "query"
        raise _bad(field, f"không hợp lệ: {first['msg']}", first["msg"]) from exc
    return run_query(conn, principal, q)
