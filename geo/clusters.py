"""Incident clusters: DBSCAN in metres with ST_ClusterDBSCAN, next to the data.

Public function
---------------
``incident_clusters(bind, flt, eps_m=200, min_points=5, province_code=None, commune_code=None,
hull='convex', concave_ratio=0.5, on=None)`` -> DataFrame (cluster, count, youth, first_id,
first_at, last_at, area_m2, geometry GeoJSON in EPSG:4326)

Deterministic: the window is ``ORDER BY id``, so border points shared by two clusters always go
the same way, and clusters are numbered by their smallest incident id. Hulls of clusters whose
points are collinear or coincide (a line or a point) are buffered by eps/2 so every cluster is
a polygon on the map; ``area_m2`` is the hull's area in EPSG:3405.

``coarsen_hull(geometry, grid_m)`` -> GeoJSON: a hull whose vertices (incident points) are
snapped to a ``grid_m`` grid in EPSG:3405 and hulled again, for roles that may see a cluster's
extent but not where its members are.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from antt.crs import METRIC_SRID, pinned
from geo._db import Bind, frame
from geo.area import area_incidents_sql
from geo.filters import IncidentFilter


def incident_clusters(bind: Bind, flt: IncidentFilter = IncidentFilter(), eps_m: float = 200.0,
                      min_points: int = 5, province_code: str | None = None,
                      commune_code: str | None = None, hull: str = "convex",
                      concave_ratio: float = 0.5, on: date | None = None) -> pd.DataFrame:
    """DBSCAN clusters of the filtered incidents inside a province or commune."""
    if eps_m <= 0 or min_points < 1:
        raise ValueError("eps_m must be > 0 and min_points >= 1")
    if hull not in ("convex", "concave"):
        raise ValueError("hull must be 'convex' or 'concave'")
    if not 0 < concave_ratio <= 1:
        raise ValueError("concave_ratio must be within (0, 1]")
    hull_sql = ("ST_ConvexHull(ST_Collect(g))" if hull == "convex"
                else "ST_ConcaveHull(ST_Collect(g), :ratio)")
    where, params = flt.sql("i")
    inside, area = area_incidents_sql(bind, "i.id, i.occurred_at, i.youth_involved, i.geom_m AS g", where,
                                      province_code, commune_code, on or flt.end or date.today())
    sql = f"""
    WITH p AS ({inside}),
    labelled AS (
        SELECT p.*, ST_ClusterDBSCAN(g, eps := :eps, minpoints := :minpts) OVER (ORDER BY id) AS cid
        FROM p
    ),
    hulls AS (
        SELECT cid, count(*) AS count, count(*) FILTER (WHERE youth_involved) AS youth,
               min(id) AS first_id, min(occurred_at) AS first_at, max(occurred_at) AS last_at,
               {hull_sql} AS h
        FROM labelled WHERE cid IS NOT NULL GROUP BY cid
    ),
    poly AS (
        SELECT *, CASE WHEN ST_Dimension(h) < 2 THEN ST_Buffer(h, :eps / 2.0, 8) ELSE h END AS hp
        FROM hulls
    )
    SELECT row_number() OVER (ORDER BY first_id) AS cluster, count, youth, first_id, first_at, last_at,
           ST_Area(hp) AS area_m2, ST_AsGeoJSON(ST_Transform(hp, 4326), 6)::json AS geometry
    FROM poly ORDER BY first_id
    """
    params |= {"eps": float(eps_m), "minpts": int(min_points), "ratio": float(concave_ratio)}
    params |= area
    return frame(bind, sql, params)


@lru_cache
def _metric_transformers() -> tuple[Transformer, Transformer]:
    """(4326 -> 3405, 3405 -> 4326), built once: pyproj transformers are slow to create."""
    return (Transformer.from_crs("EPSG:4326", pinned(METRIC_SRID), always_xy=True),
            Transformer.from_crs(pinned(METRIC_SRID), "EPSG:4326", always_xy=True))


def coarsen_hull(geometry: dict[str, Any], grid_m: float) -> dict[str, Any]:
    """A hull (GeoJSON, EPSG:4326) whose vertices are snapped to a ``grid_m`` grid in EPSG:3405
    (anchored at the origin) and hulled again: the cluster's extent, not its members' places.
    A hull that collapses to a grid node or a line is buffered by half a cell; the buffer keeps
    the grid's precision, so a node becomes the one grid cell whose south-west corner it is."""
    if grid_m <= 0:
        raise ValueError("grid_m must be > 0")
    fwd, back = _metric_transformers()

    def via(tr: Transformer):
        return lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1]))

    metric = shapely.transform(shapely.geometry.shape(geometry), via(fwd))
    snapped = shapely.set_precision(metric, grid_m, mode="pointwise").convex_hull
    if snapped.area == 0:  # collapsed to a grid node or a line: grid cell(s) at it
        snapped = snapped.buffer(grid_m / 2.0, cap_style="square", join_style="mitre")
    out = shapely.transform(snapped, via(back))
    return shapely.geometry.mapping(shapely.set_precision(out, 1e-7))
