"""Mapbox vector tiles for a layer, generalised by zoom and kept under a size limit.

Why the ladder: a tile over the limit (500 KB) is rebuilt with a coarser simplification
(polygons) and, for point layers, finally as per-cell counts whose sum is the number of
points, so a heavy tile gets lighter without any feature vanishing unannounced. The response
says which step was used (`generalisation`) and how many source features the tile holds.

Generalisation is done in the tile's own CRS (EPSG:3857) because it is about screen pixels,
not ground distance.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import lru_cache

from sqlalchemy import Connection, Dialect, text
from sqlalchemy.exc import DBAPIError

from layers.filters import BBox
from layers.sql import LayerQuery, source_and_where

EXTENT = 4096
BUFFER = 64
MAX_TILE_BYTES = 500_000
WEB_MERCATOR_WIDTH = 40_075_016.685578488
MAX_ZOOM = 24
# Simplification tolerance in tile-grid units (1/4096 of a tile), tried in order.
TOLERANCE_LADDER = (1.0, 4.0, 16.0, 64.0)
CLUSTER_GRID_UNITS = 64  # point fallback: one count per 64x64 grid units (1/64 of a tile)
# A point feature of a tile takes at least this many bytes (feature message and its length,
# geometry type, one MoveTo command and two coordinates; incidents take ~52): a tile of more
# than max_bytes / 8 points is over the limit whatever they carry.
MIN_POINT_FEATURE_BYTES = 8


class TileTooLarge(Exception):
    """Even the coarsest generalisation is over the limit (reported as 413, never cut)."""


@dataclass(frozen=True)
class Tile:
    data: bytes
    features: int
    generalisation: str


HEX_CELLS_PER_TILE = 40  # hexagon tiles: cells no smaller than a tile's width / 40
HEX_CELL_LADDER = (250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000)


def tile_width_m(z: int) -> float:
    return WEB_MERCATOR_WIDTH / (1 << z)


def tile_bbox(z: int, x: int, y: int) -> BBox:
    """The tile's bounds in lon/lat."""
    n = 1 << z

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return BBox(x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y))


def hex_cell_for_zoom(z: int, requested: int) -> int:
    """The requested cell, or a coarser one from the ladder so a tile holds ~40 cells across."""
    wanted = tile_width_m(z) / HEX_CELLS_PER_TILE
    coarser = next((c for c in HEX_CELL_LADDER if c >= wanted), HEX_CELL_LADDER[-1])
    return max(requested, coarser)


def valid_tile(z: int, x: int, y: int) -> bool:
    return 0 <= z <= MAX_ZOOM and 0 <= x < (1 << z) and 0 <= y < (1 << z)


def _select_props(q: LayerQuery) -> str:
    cols = []
    for p in q.layer.tile_properties:
        cast = "::text" if p.type in ("date", "datetime") else ""
        cols.append(f"t.{p.name}{cast} AS {p.name}")
    return "".join(f", {c}" for c in cols)


def point_cap(max_bytes: int) -> int:
    """The fewest points whose full-detail tile is surely over `max_bytes`."""
    return max_bytes // MIN_POINT_FEATURE_BYTES + 1


def tile_sql(q: LayerQuery, tolerance_units: float | None) -> tuple[str, dict]:
    """ST_AsMVT over the tile's features; returns (mvt bytes, features drawn).

    Points stop at :cap features (`point_cap`): a tile that reaches it is over the limit
    anyway, and is only built to be refused, so it is not built whole (the densest national
    z8 tile, 191,392 points and 10 MB, took 1.3 s before its counts). Its bytes are then over
    the limit too (cap x MIN_POINT_FEATURE_BYTES > max_bytes): no such tile is ever served."""
    source, where, params = source_and_where(q, with_bbox=False)
    geom = "ST_Transform(t.geom, 3857)"
    if tolerance_units and q.layer.geometry_type != "Point":
        geom = f"ST_Simplify({geom}, :tol, true)"  # ST_AsMVTGeom repairs what this may break
    has_int_id = q.layer.id != "incident_hexagons"
    id_col = ", t.fid AS fid" if has_int_id else ""
    capped = " WHERE geom IS NOT NULL LIMIT :cap" if q.layer.geometry_type == "Point" else ""
    sql = f"""WITH env AS (SELECT ST_TileEnvelope(:z, :x, :y) AS e),
        rows AS (SELECT * FROM (
                 SELECT ST_AsMVTGeom({geom}, env.e, {EXTENT}, {BUFFER}, true) AS geom{id_col}
                        {_select_props(q)}
                 FROM {source} t, env
                 WHERE t.geom && ST_Transform(ST_Expand(env.e, :margin), 4326)
                   AND {' AND '.join(where)}) r{capped})
        SELECT ST_AsMVT(rows.*, :layer_name, {EXTENT}, 'geom'{", 'fid'" if has_int_id else ""}),
               count(geom)
        FROM rows"""
    return sql, params


def cluster_sql(q: LayerQuery) -> tuple[str, dict]:
    """Points as per-cell counts (the last step for a point tile over the limit): the points of
    the tile grouped by the grid node they snap to (as ST_SnapToGrid rounds), each cell drawn at
    the mean of its points (the centroid of their multipoint). Each point is transformed once
    and the cells are grouped by their two integers: the densest national z8 tile (184,439
    points) took 1.2-1.4 s snapping and sorting geometries, transformed three times."""
    source, where, params = source_and_where(q, with_bbox=False)
    sql = f"""WITH env AS (SELECT ST_TileEnvelope(:z, :x, :y) AS e),
        pts AS MATERIALIZED (SELECT ST_Transform(t.geom, 3857) AS g FROM {source} t, env
                             WHERE t.geom && ST_Transform(env.e, 4326) AND {' AND '.join(where)}),
        inside AS (SELECT ST_X(pts.g) AS px, ST_Y(pts.g) AS py FROM pts, env
                   WHERE ST_Intersects(pts.g, env.e)),
        cells AS (SELECT ST_AsMVTGeom(ST_SetSRID(ST_MakePoint(avg(px), avg(py)), 3857),
                                      (SELECT e FROM env), {EXTENT}, 0, true) AS geom,
                         count(*)::integer AS count, true AS aggregated
                  FROM inside GROUP BY round(px / :cell), round(py / :cell))
        SELECT ST_AsMVT(cells.*, :layer_name, {EXTENT}, 'geom'), coalesce(sum(count), 0)
        FROM cells"""
    return sql, params


@dataclass(frozen=True)
class TileStatement:
    """One statement `build_tile` may run: (mvt bytes, features) from `sql` with `params`."""

    sql: str
    params: dict
    generalisation: str


def tile_statements(q: LayerQuery, z: int, x: int, y: int,
                    max_bytes: int = MAX_TILE_BYTES) -> Iterator[TileStatement]:
    """The statements of the size ladder, in the order `build_tile` tries them (the tile
    benchmark runs the very same ones directly, to compare like with like)."""
    if q.layer.kind == "aggregate":
        # Aggregates are computed for this tile only (the bbox bounds their incident scan).
        q = replace(q, bbox=tile_bbox(z, x, y))
        if q.layer.id == "incident_hexagons":
            q = replace(q, cell_m=hex_cell_for_zoom(z, q.cell_m))
    unit = tile_width_m(z) / EXTENT
    base = {"z": z, "x": x, "y": y, "layer_name": q.layer.id, "margin": unit * BUFFER,
            "cap": point_cap(max_bytes)}
    ladder = TOLERANCE_LADDER if q.layer.geometry_type != "Point" else (None,)
    for step in ladder:
        sql, params = tile_sql(q, step)
        label = "none" if step in (None, 1.0) else f"simplified x{step:g}"
        yield TileStatement(sql, params | base | {"tol": (step or 0) * unit}, label)
    if q.layer.geometry_type == "Point":
        sql, params = cluster_sql(q)
        yield TileStatement(sql, params | base | {"cell": unit * CLUSTER_GRID_UNITS}, "aggregated")


@lru_cache(maxsize=512)
def driver_sql(sql: str, dialect: Dialect) -> str:
    """`sql` (with :name binds) as the driver's own string (%(name)s for psycopg2), compiled by
    SQLAlchemy once per distinct statement: a layer's statements vary by role, scope and
    filters, not by tile, so they repeat."""
    return text(sql).compile(dialect=dialect).string


def run_tile_statement(conn: Connection, st: TileStatement) -> tuple[bytes, int]:
    """One statement on the DBAPI cursor of `conn`. Tiles are the hot path: SQLAlchemy's
    per-execution work (result wrapping, bookkeeping) cost about a quarter of a small tile's
    query time, and buys nothing here: text() binds carry no types, so the values (numbers,
    strings, dates) reach psycopg2 unchanged either way."""
    dbapi = conn.dialect.loaded_dbapi
    raw = conn.connection.driver_connection
    cursor = None
    try:
        cursor = raw.cursor()
        cursor.execute(driver_sql(st.sql, conn.dialect), st.params)
        data, n = cursor.fetchone()
    except dbapi.Error as exc:  # as SQLAlchemy would raise it: the API maps DBAPIError by SQLSTATE
        gone = conn.dialect.is_disconnect(exc, raw, cursor)
        if gone:
            conn.invalidate(exc)
        raise DBAPIError.instance(st.sql, st.params, exc, dbapi.Error,
                                  connection_invalidated=gone) from exc
    finally:
        if cursor is not None and not cursor.closed:
            cursor.close()
    return bytes(data or b""), int(n or 0)


def build_tile(conn: Connection, q: LayerQuery, z: int, x: int, y: int,
               max_bytes: int = MAX_TILE_BYTES) -> Tile:
    """The smallest-effort tile under `max_bytes`; raises TileTooLarge if none is (a point step
    stopped at its cap is over `max_bytes` by its bytes alone: `tile_sql`)."""
    for st in tile_statements(q, z, x, y, max_bytes):
        data, n = run_tile_statement(conn, st)
        if len(data) <= max_bytes:
            return Tile(data, n, st.generalisation)
    raise TileTooLarge(f"tile {z}/{x}/{y} of {q.layer.id} is over {max_bytes} bytes")
