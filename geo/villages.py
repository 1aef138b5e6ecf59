"""Village polygons derived from village centre points: Voronoi cells clipped to the commune.

Why: Vietnam publishes no village (thôn/xóm/tổ dân phố) boundaries, only commune polygons and,
at best, a point per village. A Voronoi partition of each commune around its village centres is
the honest minimum: every part of the commune belongs to the nearest village centre, the cells
tile the commune exactly, and each cell holds its own centre. The tessellation is computed in
SQL next to the commune polygons, in metres (EPSG:3405), never in degrees.
"""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection

from antt.crs import METRIC_SRID, WGS84

# Centres closer than this (metres) to another centre of the same commune are nudged apart,
# because ST_VoronoiPolygons merges coincident sites into one cell.
DUPLICATE_TOLERANCE_M = 1.0
# Centres outside their commune are moved this far inside its boundary (metres).
INSIDE_MARGIN_M = 5.0
DEFAULT_DATE = dt.date(2025, 7, 1)


class VillageCellError(ValueError):
    """Bad village centres: unknown commune, missing coordinates or duplicate codes."""


def _centre_arrays(centres: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """lon/lat arrays from a GeoDataFrame's point geometry or from 'lon'/'lat' columns."""
    if isinstance(centres, gpd.GeoDataFrame) and centres.geometry.name in centres:
        geoms = centres.geometry
        if geoms.crs is not None and geoms.crs.to_epsg() != WGS84:
            geoms = geoms.to_crs(WGS84)
        return shapely.get_x(geoms.values), shapely.get_y(geoms.values)
    if {"lon", "lat"} <= set(centres.columns):
        return centres["lon"].to_numpy(float), centres["lat"].to_numpy(float)
    raise VillageCellError("Thiếu tọa độ tâm thôn / centres need a point geometry or lon/lat columns")


def voronoi_village_cells(conn: Connection, centres: pd.DataFrame,
                          on_date: dt.date = DEFAULT_DATE) -> gpd.GeoDataFrame:
    """Village polygons (MultiPolygon, EPSG:4326) from village centre points.

    ``centres``: one row per village with ``code`` (unique) and either ``commune_id``
    (admin_unit.id) or ``commune_code`` (resolved among communes valid on ``on_date``), plus
    the point: a GeoDataFrame geometry (any CRS) or ``lon``/``lat`` columns in EPSG:4326.

    Returns a GeoDataFrame with ``code``, ``commune_id``, ``commune_code``, ``moved`` (the
    centre lay outside its commune and was moved just inside it) and ``geometry``, in the
    input order. A commune with one centre gives the whole commune to that village.

    The caller decides where the cells go (e.g. ``data.boundaries.units.upsert_units`` with
    ``parent_level='commune'``); nothing is written here except a temporary staging table,
    so this runs inside the caller's transaction.
    """
    if "code" not in centres:
        raise VillageCellError("Thiếu cột 'code' / centres need a 'code' column")
    if centres.empty:
        return gpd.GeoDataFrame({"code": [], "commune_id": [], "commune_code": [], "moved": []},
                                geometry=[], crs=WGS84)
    codes = centres["code"].astype(str)
    dupes = codes[codes.duplicated()].unique()
    if len(dupes):
        raise VillageCellError(f"Mã thôn trùng / duplicate village codes: {list(dupes[:10])}")
    lon, lat = _centre_arrays(centres)
    bad = ~(np.isfinite(lon) & np.isfinite(lat))
    if bad.any():
        raise VillageCellError(
            f"Tâm thôn thiếu tọa độ / centres without coordinates: {list(codes[bad][:10])}")
    if "commune_id" in centres:
        by_id = True
        refs = [str(int(x)) for x in centres["commune_id"]]
    elif "commune_code" in centres:
        by_id = False
        refs = centres["commune_code"].astype(str).tolist()
    else:
        raise VillageCellError("Thiếu xã / centres need 'commune_id' or 'commune_code'")

    raw = conn.connection.dbapi_connection
    with raw.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS village_centre_stage")
        cur.execute(
            "CREATE TEMP TABLE village_centre_stage (ord integer PRIMARY KEY, code text, "
            "commune_ref text, commune_id integer, moved boolean NOT NULL DEFAULT false, "
            f"p geometry(Point, {METRIC_SRID}))")
        cur.execute(
            "INSERT INTO village_centre_stage (ord, code, commune_ref, p) "
            "SELECT o::int - 1, c, r, ST_Transform(ST_SetSRID(ST_MakePoint(x, y), 4326), %(srid)s) "
            "FROM unnest(%(codes)s::text[], %(refs)s::text[], %(lon)s::float8[], %(lat)s::float8[]) "
            "WITH ORDINALITY AS t(c, r, x, y, o)",
            {"codes": codes.tolist(), "refs": refs, "lon": lon.tolist(), "lat": lat.tolist(),
             "srid": METRIC_SRID})
        if by_id:
            cur.execute(
                "UPDATE village_centre_stage s SET commune_id = u.id FROM admin_unit u "
                "WHERE u.id = s.commune_ref::int AND u.level = 'commune'")
        else:
            cur.execute(
                "UPDATE village_centre_stage s SET commune_id = u.id FROM admin_unit u "
                "WHERE u.level = 'commune' AND u.code = s.commune_ref "
                "AND u.valid_from <= %(d)s AND (u.valid_to IS NULL OR %(d)s < u.valid_to)",
                {"d": on_date})
        cur.execute("SELECT DISTINCT commune_ref FROM village_centre_stage "
                    "WHERE commune_id IS NULL ORDER BY 1 LIMIT 10")
        missing = [r[0] for r in cur.fetchall()]
        if missing:
            raise VillageCellError(f"Không tìm thấy xã / unknown communes: {missing}")
        _move_inside(cur)
        _separate_duplicates(cur)
        cur.execute(CELLS_SQL, {"srid": METRIC_SRID})
        rows = cur.fetchall()
        cur.execute("DROP TABLE village_centre_stage")
    frame = pd.DataFrame(rows, columns=["ord", "code", "commune_id", "commune_code", "moved", "wkb"])
    frame = frame.sort_values("ord").reset_index(drop=True)
    if len(frame) != len(codes):
        lost = sorted(set(codes) - set(frame["code"]))
        raise VillageCellError(f"Không tạo được ô cho / no cell for villages: {lost[:10]}")
    geoms = shapely.from_wkb([bytes(b) for b in frame.pop("wkb")])
    empty = shapely.is_empty(geoms)
    if empty.any():
        raise VillageCellError(
            f"Ô thôn rỗng / empty village cells (centre on a degenerate commune part): "
            f"{frame.loc[empty, 'code'].tolist()[:10]}")
    return gpd.GeoDataFrame(frame.drop(columns="ord"), geometry=geoms, crs=WGS84)


def _move_inside(cur) -> None:
    """Centres outside their commune go to the nearest point a few metres inside it."""
    cur.execute(
        """
        UPDATE village_centre_stage s SET moved = true, p = CASE
            WHEN ST_IsEmpty(m.inner_g) THEN ST_PointOnSurface(m.g)
            ELSE ST_ClosestPoint(m.inner_g, s.p) END
        FROM admin_unit u,
             LATERAL (SELECT ST_Transform(u.geom, %(srid)s) AS g) mg,
             LATERAL (SELECT mg.g AS g, ST_Buffer(mg.g, -%(margin)s) AS inner_g) m
        WHERE u.id = s.commune_id
          AND NOT EXISTS (SELECT 1 FROM admin_unit_part pt WHERE pt.unit_id = u.id
                          AND ST_Intersects(pt.geom, ST_Transform(s.p, 4326)))
        """,
        {"margin": INSIDE_MARGIN_M, "srid": METRIC_SRID})


def _separate_duplicates(cur) -> None:
    """Coincident centres in one commune are spread on a small circle, in input order."""
    cur.execute(
        """
        WITH ranked AS (
          SELECT a.ord, count(*) AS k
          FROM village_centre_stage a JOIN village_centre_stage b
            ON a.commune_id = b.commune_id AND b.ord < a.ord
           AND ST_DWithin(a.p, b.p, %(tol)s)
          GROUP BY a.ord
        )
        UPDATE village_centre_stage s
        SET p = ST_Translate(s.p, 3 * %(tol)s * r.k * cos(r.k), 3 * %(tol)s * r.k * sin(r.k))
        FROM ranked r WHERE r.ord = s.ord
        """,
        {"tol": DUPLICATE_TOLERANCE_M})


# Voronoi in metres per commune; the cells (straight edges, shared vertices) go back to 4326
# and are clipped against the commune's own 4326 polygon, so the cells tile it exactly.
CELLS_SQL = """
WITH groups AS (
  SELECT commune_id, count(*) AS n, ST_Collect(p) AS sites
  FROM village_centre_stage GROUP BY commune_id
),
cells AS (
  SELECT g.commune_id, (ST_Dump(ST_VoronoiPolygons(g.sites, 0,
            ST_Expand(ST_Transform(ST_Envelope(u.geom), %(srid)s), 2000)))).geom AS cell
  FROM groups g JOIN admin_unit u ON u.id = g.commune_id
  WHERE g.n > 1
),
owned AS (
  SELECT s.ord, ST_Transform(c.cell, 4326) AS cell
  FROM cells c JOIN village_centre_stage s
    ON s.commune_id = c.commune_id AND ST_Intersects(c.cell, s.p)
  UNION ALL
  SELECT s.ord, NULL::geometry
  FROM village_centre_stage s JOIN groups g ON g.commune_id = s.commune_id AND g.n = 1
)
SELECT s.ord, s.code, u.id, u.code, s.moved,
       ST_AsBinary(ST_Multi(ST_CollectionExtract(ST_MakeValid(
           CASE WHEN o.cell IS NULL THEN u.geom ELSE ST_Intersection(u.geom, o.cell) END), 3)))
FROM owned o
JOIN village_centre_stage s ON s.ord = o.ord
JOIN admin_unit u ON u.id = s.commune_id
"""
