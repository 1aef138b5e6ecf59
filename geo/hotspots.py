"""Hotspots: Getis-Ord Gi* (and local Moran's I) on hexagons and on villages.

Public functions
----------------
- ``hex_hotspots(bind, cell_m, flt, province_code=None, commune_code=None, band_m=None, k=None,
  fdr=False, on=None)`` -> DataFrame (i, j, count, x, y, geometry, z, p, bin, moran_i, moran_q)
- ``village_counts(bind, flt, province_code=None, commune_code=None, on=None, with_geometry=True)``
- ``village_hotspots(bind, flt, province_code=None, commune_code=None, k=8, band_m=None, fdr=False,
  on=None)`` -> DataFrame (id, code, name, commune_code, population, count, x, y, geometry, z, p, bin, ...)
- ``to_feature_collection(df, properties)`` -> GeoJSON dict

Counts come from SQL (grid.py); neighbours are binary on metric centres (cKDTree): hexagons
default to first-order contiguity (distance band of sqrt(3) x side x 1.01, i.e. the 6 touching
cells), villages to the 8 nearest villages by centroid. Gi* includes the unit itself (star).
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from antt.crs import METRIC_SRID
from geo._db import Bind, frame
from geo.filters import IncidentFilter
from geo.getis_ord import gi_star
from geo.grid import hex_counts
from geo.moran import local_moran
from geo.placement import unit_expr
from geo.weights import distance_band, knn


def neighbours(xy: np.ndarray, band_m: float | None, k: int | None):
    """Binary weights: a distance band (metres) or k nearest; exactly one must be given."""
    if (band_m is None) == (k is None):
        raise ValueError("give exactly one of band_m / k")
    return distance_band(xy, band_m) if band_m is not None else knn(xy, k)


def _attach(df: pd.DataFrame, band_m: float | None, k: int | None, fdr: bool) -> pd.DataFrame:
    if len(df) < 3:
        raise ValueError("fewer than 3 units in the study area / vùng phân tích có ít hơn 3 đơn vị")
    w = neighbours(df[["x", "y"]].to_numpy(), band_m, k)
    res = gi_star(df["count"].to_numpy(), w, fdr=fdr)
    lm = local_moran(df["count"].to_numpy(), w)
    return df.assign(z=res.z, p=res.p, bin=res.bin, moran_i=lm.i, moran_q=lm.quadrant)


def hex_hotspots(bind: Bind, cell_m: float, flt: IncidentFilter = IncidentFilter(),
                 province_code: str | None = None, commune_code: str | None = None,
                 band_m: float | None = None, k: int | None = None, fdr: bool = False,
                 on: date | None = None, with_geometry: bool = True) -> pd.DataFrame:
    """Gi* z, p and Esri bin for every hexagon of side ``cell_m`` over a province or commune.
    Default neighbours: the 6 touching hexagons (plus itself)."""
    if band_m is None and k is None:
        band_m = math.sqrt(3.0) * cell_m * 1.01
    df = hex_counts(bind, cell_m, flt, province_code, commune_code, on, with_geometry)
    return _attach(df, band_m, k, fdr)


def village_counts(bind: Bind, flt: IncidentFilter = IncidentFilter(), province_code: str | None = None,
                   commune_code: str | None = None, on: date | None = None,
                   with_geometry: bool = True) -> pd.DataFrame:
    """Incident counts per village valid on ``on`` (default: filter end or today), zeros
    included, with the village centroid in EPSG:3405 (x, y). Incidents of any date count in
    the village that holds them on that map (``geo.placement``), so the counts add up to the
    hexagons' over the same area."""
    on = on or flt.end or date.today()
    where, params = flt.sql("i")
    unit = unit_expr(bind, "village", on)
    scope = []
    if province_code is not None:
        scope.append("v.province_code = :province_code")
    if commune_code is not None:
        scope.append("c.code = :commune_code")
    geom_col = ", ST_AsGeoJSON(v.geom, 6)::json AS geometry" if with_geometry else ""
    sql = f"""
    WITH v AS (
        SELECT v.id, v.code, v.name, c.code AS commune_code, v.population, v.geom
        FROM admin_unit v JOIN admin_unit c ON c.id = v.parent_id
        WHERE v.level = 'village' AND v.valid_from <= :on AND (v.valid_to IS NULL OR :on < v.valid_to)
          {''.join(' AND ' + s for s in scope)}
    ),
    counts AS (
        SELECT {unit} AS village_id, count(*) AS n FROM incident i
        WHERE {unit} IN (SELECT id FROM v) AND {where} GROUP BY 1
    )
    SELECT v.id, v.code, v.name, v.commune_code, v.population, COALESCE(c.n, 0) AS count,
           ST_X(p) AS x, ST_Y(p) AS y{geom_col}
    FROM v LEFT JOIN counts c ON c.village_id = v.id,
         LATERAL ST_Transform(ST_PointOnSurface(v.geom), {METRIC_SRID}) p
    ORDER BY v.code
    """
    params |= {"on": on, "province_code": province_code, "commune_code": commune_code}
    df = frame(bind, sql, params)
    df["count"] = df["count"].astype("int64")
    return df


def village_hotspots(bind: Bind, flt: IncidentFilter = IncidentFilter(), province_code: str | None = None,
                     commune_code: str | None = None, k: int | None = 8, band_m: float | None = None,
                     fdr: bool = False, on: date | None = None, with_geometry: bool = True) -> pd.DataFrame:
    """Gi* per village on incident counts; neighbours: ``k`` nearest villages (default 8) or a
    distance band ``band_m`` between representative points (pass k=None with band_m)."""
    if band_m is not None:
        k = None
    df = village_counts(bind, flt, province_code, commune_code, on, with_geometry)
    if k is not None:
        k = min(k, len(df) - 1)
    return _attach(df, band_m, k, fdr)


def to_feature_collection(df: pd.DataFrame, properties: list[str]) -> dict[str, Any]:
    """A GeoJSON FeatureCollection from a frame with a ``geometry`` column of GeoJSON dicts."""
    def clean(v: Any) -> Any:
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v

    feats = [{"type": "Feature", "geometry": row["geometry"],
              "properties": {p: clean(row[p]) for p in properties}}
             for row in df.to_dict("records")]
    return {"type": "FeatureCollection", "features": feats}
