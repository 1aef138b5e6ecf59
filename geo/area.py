"""The study area of an analysis: a commune, or a province as the union of its communes.

Why the union and not the province outline: outlines and commune polygons come from different
sources and do not agree (in the real files 46 km² of Hải Phòng's communes lie outside the
province-31 polygon), and a grid over the outline dropped incidents that lie inside a commune of
the province. The study area of a province on a date is the union of its communes valid on that
date (``province_code`` of the commune rows); only a province without any commune loaded falls
back to its outline. A commune's study area is its own polygon.

The union of a province's full-resolution communes costs ~0.4 s (Hải Phòng, 114 communes), so
it is kept per process under a key made of the ids and row versions (``xmin``, new on every
rewrite of a row) of the units it is made of: a re-imported or edited commune gives a new key,
nothing is invalidated by hand. Queries get the area as a WKB parameter (``area_params``) and
read it with ``AREA_SQL`` (columns ``g`` in EPSG:3405 and ``g4326``; no row when the area is
unknown). ``area_incidents_sql`` selects the incidents inside it: on today's map by their
stored placement, on an older map by location through the area's pieces (``AREA_PARTS_SQL``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import text

from antt.crs import METRIC_SRID
from geo._db import Bind, connect, valid_on
from geo.placement import is_current, now_column

AREA_SQL = (f"SELECT ST_Transform(a.g4326, {METRIC_SRID}) AS g, a.g4326 FROM "
            "(SELECT ST_SetSRID(ST_GeomFromWKB(CAST(:area_wkb AS bytea)), 4326) AS g4326) a "
            "WHERE a.g4326 IS NOT NULL")
# The area (CTE ``area``) cut into pieces of at most 256 vertices, for "which points lie inside":
# one index probe of the points per piece and each point tested against a small piece, instead
# of every point of the area's box against the whole outline (Hà Nội's 67,462 incidents of a
# year: 0.75-1.0 s instead of 2.2 s). A point on a cut line lies in two pieces: join with
# DISTINCT ON the point's id.
AREA_PARTS_SQL = "SELECT ST_Subdivide(area.g4326, 256) AS g4326 FROM area"


@dataclass(frozen=True)
class StudyArea:
    """A study area: its cache key, its geometry (EPSG:4326 WKB) and what it is made of."""

    key: str
    wkb: bytes
    communes: int  # communes in the union; 0 = a province outline (no commune loaded)
    unit_ids: tuple[int, ...] = ()  # the units it is made of (its communes, or the province)


_AREAS: dict[tuple[str, str], StudyArea] = {}
_AREAS_MAX = 32
_AREAS_LOCK = threading.Lock()  # API requests run in threads


def _scope(province_code: str | None, commune_code: str | None) -> tuple[str, str]:
    if (province_code is None) == (commune_code is None):
        raise ValueError("give exactly one of province_code / commune_code")
    if province_code is not None:
        return "u.province_code = :area_code", province_code
    return "u.code = :area_code", commune_code


def study_area(bind: Bind, province_code: str | None = None, commune_code: str | None = None,
               on: date | None = None) -> StudyArea | None:
    """The area of a province (union of its communes valid on ``on``, default today) or of a
    commune; None when no such unit is valid on that date."""
    where, code = _scope(province_code, commune_code)
    params = {"area_code": code, "on": on or date.today()}
    with connect(bind) as conn:
        row = conn.execute(text(f"""
            SELECT array_agg(u.id ORDER BY u.id) AS ids,
                   md5(string_agg(u.id || ':' || u.xmin, ',' ORDER BY u.id)) AS key
            FROM admin_unit u
            WHERE u.level = 'commune' AND u.geom IS NOT NULL AND {where} AND {valid_on('u')}"""),
            params).one()
        ids, key, communes = row.ids, row.key, len(row.ids or [])
        if not ids and province_code is not None:  # no commune loaded: the outline
            row = conn.execute(text(f"""
                SELECT ARRAY[u.id] AS ids, md5(u.id || ':' || u.xmin) AS key FROM admin_unit u
                WHERE u.level = 'province' AND u.code = :area_code AND u.geom IS NOT NULL
                  AND {valid_on('u')}
                ORDER BY u.valid_from DESC LIMIT 1"""), params).first()
            if row is not None:
                ids, key = row.ids, row.key
        if not ids:
            return None
        cache_key = (conn.engine.url.render_as_string(hide_password=True), key)
        if cache_key in _AREAS:
            return _AREAS[cache_key]
        union = "ST_Union(geom)" if len(ids) > 1 else "(array_agg(geom))[1]"  # one: as it is
        wkb = conn.execute(text(f"SELECT ST_AsBinary(ST_Multi({union})) FROM admin_unit "
                                "WHERE id = ANY(:ids)"), {"ids": list(ids)}).scalar_one()
    area = StudyArea(key, bytes(wkb), communes, tuple(ids))
    with _AREAS_LOCK:
        while len(_AREAS) >= _AREAS_MAX:
            _AREAS.pop(next(iter(_AREAS)))
        _AREAS[cache_key] = area
    return area


def area_params(bind: Bind, province_code: str | None = None, commune_code: str | None = None,
                on: date | None = None) -> dict[str, Any]:
    """Bind parameters for ``AREA_SQL`` (``area_wkb`` None when the area is unknown)."""
    area = study_area(bind, province_code, commune_code, on)
    return {"area_wkb": None if area is None else area.wkb}


def area_incidents_sql(bind: Bind, columns: str, where: str, province_code: str | None = None,
                       commune_code: str | None = None, on: date | None = None) -> tuple[str, dict[str, Any]]:
    """A SELECT of ``columns`` (over ``incident i``) for the incidents matching ``where`` inside
    the study area on ``on``, one row per incident in id order, and its bind parameters.

    On today's map (``geo.placement.is_current``) an incident lies in the area when its stored
    commune (``commune_now_id``, indexed with the time) is one of the area's communes: the
    placement every count uses, kept right by triggers. That reads Hà Nội's 67,305 incidents of
    a year in 0.03 s where the test by location took 0.55-1.0 s. It holds the same incidents as
    the union, except a point on the border between a commune of the area and one outside it,
    which belongs where ``unit_now`` places it, as in every count. On an older map, or for a
    province outline (no commune loaded), the points are tested against the area's pieces."""
    day = on or date.today()
    area = study_area(bind, province_code, commune_code, day)
    if area is not None and area.communes and is_current(bind, "commune", day):
        sql = (f"SELECT {columns} FROM incident i "
               f"WHERE i.{now_column('commune')} = ANY(CAST(:area_units AS int[])) AND {where} ORDER BY i.id")
        return sql, {"area_units": list(area.unit_ids)}
    sql = f"""
    WITH area AS MATERIALIZED ({AREA_SQL}), parts AS MATERIALIZED ({AREA_PARTS_SQL})
    SELECT DISTINCT ON (i.id) {columns}
    FROM parts JOIN incident i ON i.geom && parts.g4326 AND ST_Intersects(parts.g4326, i.geom)
    WHERE {where}
    ORDER BY i.id"""
    return sql, {"area_wkb": None if area is None else area.wkb}
