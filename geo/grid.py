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

import numpy as np
import pandas as pd

from antt.crs import METRIC_SRID
from geo._db import Bind, frame
from geo.area import AREA_SQL, study_area
from geo.filters import IncidentFilter

SQRT3 = math.sqrt(3.0)


HEX_SIZE = "CAST(:hex_size AS float8)"  # psycopg2 sends floats as numeric literals: force float8
HEX_HEIGHT = f"({HEX_SIZE} * {SQRT3!r}::float8)"


def hex_centre_sql(i: str, j: str) -> tuple[str, str]:
    """SQL (x, y) of the centre of hexagon (i, j) of side :hex_size (PostGIS layout)."""
    return (f"(1.5 * {HEX_SIZE} * ({i}))",
            f"(({j}) * {HEX_HEIGHT} + CASE WHEN ({i}) % 2 <> 0 THEN {HEX_HEIGHT} / 2 ELSE 0 END)")


def hex_index_sql(x: str, y: str) -> tuple[str, str]:
    """SQL expressions (i, j) of the hexagon of side :hex_size holding point (x, y) in metres.

    The centres of PostGIS's layout are two rectangular lattices of spacing 3*size by height:
    even columns at (3*size*a, height*b), odd ones shifted by (1.5*size, height/2). The nearest
    centre of each lattice is a rounding per axis; the nearer of the two is the hexagon. About
    20 operations a point, PostgreSQL evaluating no shared sub-expression twice by itself: this
    binned the 1M national incidents in 1.7 s where testing both candidate columns took 2.1 s.
    """
    s, h = HEX_SIZE, HEX_HEIGHT
    ax, ay = f"round({x} / (3 * {s}))", f"round({y} / {h})"
    bx, by = f"round(({x} - 1.5 * {s}) / (3 * {s}))", f"round(({y} - {h} / 2) / {h})"
    d_even = f"(({x} - 3 * {s} * {ax}) ^ 2 + ({y} - {h} * {ay}) ^ 2)"
    d_odd = f"(({x} - 3 * {s} * {bx} - 1.5 * {s}) ^ 2 + ({y} - {h} * {by} - {h} / 2) ^ 2)"
    even = f"{d_even} <= {d_odd}"
    return (f"CASE WHEN {even} THEN 2 * {ax}::int ELSE 2 * {bx}::int + 1 END",
            f"CASE WHEN {even} THEN {ay}::int ELSE {by}::int END")


# The hexagon side stored on every incident (``incident.hex2000``, migration 0016): the web map's
# cell at every zoom up to 10, the whole country included. Same cell as hex_index_sql.
STORED_HEX_CELL_M = 2000
STORED_HEX_COLUMN = "hex2000"


def hex_key_cell_sql(key: str) -> tuple[str, str]:
    """SQL (i, j) of a stored hexagon key ``i * 2^21 + j`` (``antt_hex_key``; |j| < 2^20)."""
    i = f"(({key} + 1048576) >> 21)"
    return f"{i}::int", f"({key} - ({i} << 21))::int"


_CELLS: dict[tuple, pd.DataFrame] = {}
_CELLS_MAX = 32


def hex_cells(bind: Bind, cell_m: float, province_code: str | None = None,
              commune_code: str | None = None, on: date | None = None) -> pd.DataFrame:
    """(i, j, x, y) of every hexagon of side ``cell_m`` touching the study area (``geo.area``:
    a commune, or the union of a province's communes valid on ``on``), from ST_HexagonGrid.

    The set depends only on the area and the size, not on any filter, so it is cached per
    process, keyed by the database, the area's key (its units and their row versions) and the
    size: a re-imported outline gets a new key. Callers must not modify the returned frame."""
    on = on or date.today()
    area = study_area(bind, province_code, commune_code, on)
    if area is None:
        return pd.DataFrame({"i": pd.Series(dtype="int64"), "j": pd.Series(dtype="int64"),
                             "x": pd.Series(dtype="float64"), "y": pd.Series(dtype="float64")})
    key = (_url(bind), area.key, float(cell_m))
    if key in _CELLS:
        return _CELLS[key]
    cells = frame(bind, f"""
    WITH area AS MATERIALIZED ({AREA_SQL}),
    -- grids over the boxes of small pieces of the area hug its shape: far fewer candidate
    -- hexagons to test than one grid over the whole bounding box (5x faster on a province)
    parts AS MATERIALIZED (SELECT ST_Subdivide(area.g, 128) AS g FROM area)
    SELECT DISTINCT h.i, h.j
    FROM parts, ST_HexagonGrid({HEX_SIZE}, parts.g) h
    WHERE ST_Intersects(parts.g, h.geom)
    ORDER BY h.i, h.j""", {"hex_size": float(cell_m), "area_wkb": area.wkb})
    cells = cells.astype({"i": "int64", "j": "int64"})
    x, y = hex_centres(cells["i"].to_numpy(), cells["j"].to_numpy(), cell_m)
    cells["x"], cells["y"] = x, y
    if len(_CELLS) >= _CELLS_MAX:
        _CELLS.pop(next(iter(_CELLS)))
    _CELLS[key] = cells
    return cells


def hexagon_area_m2(cell_m: float) -> float:
    """Area of a hexagon of side ``cell_m``: 3 sqrt(3) / 2 x side^2."""
    return 1.5 * SQRT3 * cell_m * cell_m


def estimated_hexagons(bind: Bind, cell_m: float, province_code: str | None = None,
                       commune_code: str | None = None, on: date | None = None) -> float | None:
    """About how many hexagons of side ``cell_m`` a grid over the study area holds (the area
    of its box in EPSG:3405 / a hexagon's area: an upper estimate, known before building the
    grid, to refuse grids too large); None when there is no such area on ``on``."""
    if cell_m <= 0:
        raise ValueError("cell_m must be > 0")
    area = study_area(bind, province_code, commune_code, on)
    if area is None:
        return None
    box = frame(bind, f"WITH area AS ({AREA_SQL}) SELECT ST_Area(ST_Envelope(g)) AS m2 FROM area",
                {"area_wkb": area.wkb})["m2"].iloc[0]
    return float(box) / hexagon_area_m2(cell_m)


def _url(bind: Bind) -> str:
    engine = bind.engine if hasattr(bind, "engine") else bind
    return engine.url.render_as_string(hide_password=True)


def hex_centres(i: np.ndarray, j: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """Centres (EPSG:3405) of hexagons (i, j) of side ``size`` in PostGIS's layout."""
    height = size * SQRT3
    x = 1.5 * size * i
    y = j * height + np.where(i % 2 != 0, height / 2, 0.0)
    return x, y


# PostGIS's vertex order, starting west, counter-clockwise (in units of size, height/2)
_HEX_DX = np.array([-1.0, -0.5, 0.5, 1.0, 0.5, -0.5, -1.0])
_HEX_DY = np.array([0.0, -1.0, -1.0, 0.0, 1.0, 1.0, 0.0])


def hex_polygons_geojson(i: np.ndarray, j: np.ndarray, size: float) -> list[dict]:
    """GeoJSON Polygons (EPSG:4326, 6 decimals) of hexagons (i, j): the same rings as
    ST_Transform(ST_HexagonGrid cell, 4326), built with one vectorised transform."""
    from antt.crs import to_wgs84

    cx, cy = hex_centres(np.asarray(i), np.asarray(j), size)
    vx = cx[:, None] + _HEX_DX[None, :] * size
    vy = cy[:, None] + _HEX_DY[None, :] * size * SQRT3 / 2
    lon, lat = to_wgs84(METRIC_SRID).transform(vx.ravel(), vy.ravel())
    lon = np.round(np.asarray(lon), 6).reshape(vx.shape)
    lat = np.round(np.asarray(lat), 6).reshape(vx.shape)
    return [{"type": "Polygon", "coordinates": [np.column_stack([lo, la]).tolist()]}
            for lo, la in zip(lon, lat, strict=True)]


def hex_counts(bind: Bind, cell_m: float, flt: IncidentFilter = IncidentFilter(),
               province_code: str | None = None, commune_code: str | None = None,
               on: date | None = None, with_geometry: bool = True) -> pd.DataFrame:
    """Every hexagon of side ``cell_m`` metres that touches the study area (a commune, or the
    union of a province's communes valid on ``on``, default: the filter's end or today: see
    ``geo.area``; so every incident inside one of those communes is in a cell), with its count
    (zeros included: Gi* needs them). Columns: i, j, count, x, y (centre, EPSG:3405) and, with
    ``with_geometry``, geometry (GeoJSON dict in EPSG:4326)."""
    if cell_m <= 0:
        raise ValueError("cell_m must be > 0")
    on = on or flt.end or date.today()
    cells = hex_cells(bind, cell_m, province_code, commune_code, on)
    where, params = flt.sql("i")
    hi, hj = hex_index_sql("p.x", "p.y")
    counts = frame(bind, f"""
    WITH area AS MATERIALIZED ({AREA_SQL}),
    p AS MATERIALIZED (
        SELECT ST_X(i.geom_m) AS x, ST_Y(i.geom_m) AS y FROM incident i, area
        WHERE i.geom && area.g4326 AND {where}
    )
    SELECT {hi} AS i, {hj} AS j, count(*) AS n FROM p GROUP BY 1, 2""",
                   params | {"hex_size": float(cell_m),
                             "area_wkb": _area_wkb(bind, province_code, commune_code, on)})
    df = cells.merge(counts.astype({"i": "int64", "j": "int64"}), on=["i", "j"], how="left")
    df.insert(2, "count", df.pop("n").fillna(0).astype("int64"))
    if with_geometry:
        df["geometry"] = hex_polygons_geojson(df["i"].to_numpy(), df["j"].to_numpy(), cell_m)
    return df


def _area_wkb(bind: Bind, province_code: str | None, commune_code: str | None,
              on: date) -> bytes | None:
    area = study_area(bind, province_code, commune_code, on)
    return None if area is None else area.wkb
