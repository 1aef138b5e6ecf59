"""Hexagon grids in metres (EPSG:3405) and point counts per hexagon, in SQL.

Cells are PostGIS ``ST_HexagonGrid`` hexagons: flat-topped, ``size`` = side length (= the
circumradius, so a hexagon is 2*size wide and 2.598*size^2 in area), anchored at the CRS
origin, so (i, j) is a stable cell id for a given size. Points are binned analytically to the
hexagon whose centre is nearest (the hexagons are exactly the Voronoi cells of their centres):
each point is counted once even on a shared edge, where a spatial join would count it twice.
A hexagon straddling the area's border counts all its incidents, on both sides of the border:
cells describe space, not administrative units.
"""

from __future__ import annotations

import math
from datetime import date

import pandas as pd

from antt.crs import METRIC_SRID
from geo._db import Bind, frame
from geo.filters import IncidentFilter

SQRT3 = math.sqrt(3.0)


def area_sql(province_code: str | None, commune_code: str | None) -> str:
    """SQL for the study area (one row, column g in EPSG:3405, g4326 for index filters)."""
    if (province_code is None) == (commune_code is None):
        raise ValueError("give exactly one of province_code / commune_code")
    level = "province" if province_code is not None else "commune"
    return f"""
    SELECT ST_Transform(geom, {METRIC_SRID}) AS g, geom AS g4326 FROM admin_unit
    WHERE level = '{level}' AND code = :area_code
      AND valid_from <= :on AND (valid_to IS NULL OR :on < valid_to)
    ORDER BY valid_from DESC LIMIT 1"""


HEX_SIZE = "CAST(:hex_size AS float8)"  # psycopg2 sends floats as numeric literals: force float8
HEX_HEIGHT = f"({HEX_SIZE} * {SQRT3!r}::float8)"


def hex_centre_sql(i: str, j: str) -> tuple[str, str]:
    """SQL (x, y) of the centre of hexagon (i, j) of side :hex_size (PostGIS layout)."""
    return (f"(1.5 * {HEX_SIZE} * ({i}))",
            f"(({j}) * {HEX_HEIGHT} + CASE WHEN ({i}) % 2 <> 0 THEN {HEX_HEIGHT} / 2 ELSE 0 END)")


def hex_index_sql(x: str, y: str) -> tuple[str, str]:
    """SQL expressions (i, j) of the hexagon of side :hex_size holding point (x, y) in metres."""
    # candidate columns i0 and i0+1; odd columns are shifted up by half a row (PostGIS layout)
    h = HEX_HEIGHT
    i0 = f"floor({x} / (1.5 * {HEX_SIZE}))::int"

    def row(i: str) -> str:
        return f"round(({y} - CASE WHEN ({i}) % 2 <> 0 THEN {h} / 2 ELSE 0 END) / {h})::int"

    def d2(i: str) -> str:
        cx, cy = hex_centre_sql(i, row(i))
        return f"(({x} - {cx}) ^ 2 + ({y} - {cy}) ^ 2)"

    ia, ib = i0, f"({i0} + 1)"
    pick_a = f"{d2(ia)} <= {d2(ib)}"
    return (f"CASE WHEN {pick_a} THEN {ia} ELSE {ib} END",
            f"CASE WHEN {pick_a} THEN {row(ia)} ELSE {row(ib)} END")


def hex_counts(bind: Bind, cell_m: float, flt: IncidentFilter = IncidentFilter(),
               province_code: str | None = None, commune_code: str | None = None,
               on: date | None = None, with_geometry: bool = True) -> pd.DataFrame:
    """Every hexagon of side ``cell_m`` metres that touches the study area (a province or a
    commune valid on ``on``, default: the filter's end or today), with its incident count
    (zeros included: Gi* needs them). Columns: i, j, count, x, y (centre, EPSG:3405) and, with
    ``with_geometry``, geometry (GeoJSON dict in EPSG:4326)."""
    if cell_m <= 0:
        raise ValueError("cell_m must be > 0")
    on = on or flt.end or date.today()
    where, params = flt.sql("i")
    hi, hj = hex_index_sql("p.x", "p.y")
    cx, cy = hex_centre_sql("h.i", "h.j")
    geom_col = ", ST_AsGeoJSON(ST_Transform(h.geom, 4326), 6)::json AS geometry" if with_geometry else ""
    sql = f"""
    WITH area AS MATERIALIZED ({area_sql(province_code, commune_code)}),
    -- grids over the boxes of small pieces of the area hug its shape: far fewer candidate
    -- hexagons to test than one grid over the whole bounding box (5x faster on a province)
    parts AS MATERIALIZED (SELECT ST_Subdivide(area.g, 128) AS g FROM area),
    cells AS MATERIALIZED (
        SELECT DISTINCT ON (h.i, h.j) h.i, h.j, h.geom
        FROM parts, ST_HexagonGrid({HEX_SIZE}, parts.g) h
        WHERE ST_Intersects(parts.g, h.geom)
        ORDER BY h.i, h.j
    ),
    p AS MATERIALIZED (
        SELECT ST_X(g) AS x, ST_Y(g) AS y
        FROM (SELECT ST_Transform(i.geom, {METRIC_SRID}) AS g FROM incident i, area
              WHERE i.geom && area.g4326 AND {where}) t
    ),
    counts AS (SELECT {hi} AS i, {hj} AS j, count(*) AS n FROM p GROUP BY 1, 2)
    SELECT h.i, h.j, COALESCE(c.n, 0) AS count, {cx} AS x, {cy} AS y{geom_col}
    FROM cells h
    LEFT JOIN counts c ON c.i = h.i AND c.j = h.j
    ORDER BY h.i, h.j
    """
    params |= {"hex_size": float(cell_m), "on": on, "area_code": province_code or commune_code}
    df = frame(bind, sql, params)
    df["count"] = df["count"].astype("int64")
    return df
