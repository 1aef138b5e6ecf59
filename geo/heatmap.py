"""The heatmap as served: which incidents, on which grid, with which bandwidth.

Why here and not in the API: choosing the area, the points that may spread density into it,
the public aggregation, the bandwidth and the grid is analysis; the API only maps parameters
and roles onto ``heatmap(...)`` and its errors onto problems.

Public functions
----------------
- ``area_wkb(bind, province_code=None, commune_code=None, bbox=None, on=None)`` -> EPSG:3405
  WKB of the area (a lon/lat box, or ``geo.area``'s study area), edges segmentized every 1 km
- ``surface_points(bind, flt, area_wkb, reach_m, weight=None, province_code=None,
  commune_code=None, square_m=None, min_count=1)`` -> (xy, weights)
- ``choose_bandwidth(xy, weights, bandwidth_m=None, floor_m=None)`` -> (metres, raised_from)
- ``heatmap(bind, flt, area_wkb, cell_m, ...)`` -> Heatmap(grid, xy, weights, notes)

Rules:
- incidents up to ``reach_m`` outside the area count (their kernel reaches into it; the API
  uses the bandwidth, or 20 km for a default one); ``province_code``/``commune_code`` restrict
  them to incidents placed in that unit (today's commune holding them, else the commune of
  their date: ``geo.placement``), e.g. an account's scope;
- ``square_m`` (roles that may not see points): incidents are first counted on squares of that
  size (EPSG:3405, anchored at the origin), squares with fewer than ``min_count`` dropped, and
  the kernel runs on the square centres with the summed weights: the surface carries no more
  than the public aggregate does;
- the bandwidth is the given one, else ``kde.silverman_bandwidth``, raised to ``floor_m`` when
  below it (noted as ``bandwidth_raised_from_m``); ``TooFewPoints`` when there is none;
- the grid is ``kde.grid_frame`` over the area's bounds (``GridTooLarge`` beyond
  ``max_cells``), clipped to the area.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import text

from antt.crs import METRIC_SRID
from geo._db import Bind, connect
from geo.area import AREA_SQL, area_params
from geo.filters import IncidentFilter
from geo.kde import WEIGHTS, KdeGrid, density_grid, silverman_bandwidth

SEGMENT_M = 1000.0  # a lon/lat box's edges curve in metres: densified before clipping


class TooFewPoints(ValueError):
    """No default bandwidth: fewer than 2 (weighted) points, or all at one place."""


@dataclass(frozen=True)
class Heatmap:
    grid: KdeGrid
    xy: np.ndarray  # the points the kernel ran on (square centres for public roles)
    weights: np.ndarray
    notes: dict[str, Any] = field(default_factory=dict)


def area_wkb(bind: Bind, province_code: str | None = None, commune_code: str | None = None,
             bbox: tuple[float, float, float, float] | None = None,
             on: date | None = None) -> bytes | None:
    """The heatmap's area in EPSG:3405 (WKB): the lon/lat ``bbox`` when given, else the study
    area of the province or commune valid on ``on`` (None when there is none)."""
    if bbox is not None:
        sql = (f"SELECT ST_AsBinary(ST_Segmentize(ST_Transform(ST_MakeEnvelope("
               f":x0, :y0, :x1, :y1, 4326), {METRIC_SRID}), :seg))")
        params: dict[str, Any] = dict(zip(("x0", "y0", "x1", "y1"), map(float, bbox), strict=True))
    else:
        sql = f"WITH area AS ({AREA_SQL}) SELECT ST_AsBinary(ST_Segmentize(g, :seg)) FROM area"
        params = area_params(bind, province_code, commune_code, on)
    with connect(bind) as conn:
        wkb = conn.execute(text(sql), params | {"seg": SEGMENT_M}).scalar()
    return None if wkb is None else bytes(wkb)


def surface_points(bind: Bind, flt: IncidentFilter, area: bytes, reach_m: float,
                   weight: str | None = None, province_code: str | None = None,
                   commune_code: str | None = None, square_m: float | None = None,
                   min_count: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The points (metres, EPSG:3405) and weights the kernel runs on: incidents within
    ``reach_m`` of the area, or, with ``square_m``, the centres of the squares holding at least
    ``min_count`` of them with their summed weights."""
    if weight is not None and weight not in WEIGHTS:
        raise ValueError(f"weight must be one of {sorted(WEIGHTS)} or None")
    where, params = flt.sql("i")
    scope = ""
    if province_code is not None or commune_code is not None:
        unit = "code = :sc_commune" if commune_code is not None else "province_code = :sc_province"
        scope = (" AND coalesce(i.commune_now_id, i.commune_id) IN (SELECT id FROM admin_unit "
                 f"WHERE level = 'commune' AND {unit})")
        params |= {"sc_commune": commune_code, "sc_province": province_code}
    wexpr = WEIGHTS[weight] if weight else "1"
    base = ("FROM incident i "
            f"WHERE i.geom && ST_Transform(ST_Expand(ST_GeomFromWKB(:area, {METRIC_SRID}), :reach), 4326) "
            f"AND {where}{scope}")
    params |= {"area": bytes(area), "reach": float(reach_m)}
    if square_m is not None:
        sql = ("SELECT (floor(ST_X(i.geom_m) / :sq) + 0.5) * :sq AS x, "
               "(floor(ST_Y(i.geom_m) / :sq) + 0.5) * :sq AS y, "
               f"sum({wexpr})::float8 AS w {base} GROUP BY 1, 2 HAVING count(*) >= :k ORDER BY 1, 2")
        params |= {"sq": float(square_m), "k": int(min_count)}
    else:
        sql = f"SELECT ST_X(i.geom_m) AS x, ST_Y(i.geom_m) AS y, ({wexpr})::float8 AS w {base} ORDER BY i.id"
    with connect(bind) as conn:
        rows = conn.execute(text(sql), params).all()
    # flat, not np.array(rows): numpy probes each Row as a sequence (3 s for 67,000 rows)
    xyw = np.fromiter((v for r in rows for v in r), dtype="float64", count=3 * len(rows)).reshape(-1, 3)
    return np.ascontiguousarray(xyw[:, :2]), np.ascontiguousarray(xyw[:, 2])


def choose_bandwidth(xy: np.ndarray, weights: np.ndarray, bandwidth_m: float | None = None,
                     floor_m: float | None = None) -> tuple[float, float | None]:
    """(bandwidth, the Silverman value it was raised from or None). A given bandwidth is used
    as is (the caller checks it against any floor); a default one is raised to ``floor_m``."""
    if bandwidth_m is not None:
        return float(bandwidth_m), None
    try:
        bw = silverman_bandwidth(xy, weights)
    except ValueError as exc:
        raise TooFewPoints(str(exc)) from exc
    if floor_m is not None and bw < floor_m:
        return float(floor_m), bw
    return bw, None


def heatmap(bind: Bind, flt: IncidentFilter, area: bytes, cell_m: float,
            bandwidth_m: float | None = None, weight: str | None = None,
            province_code: str | None = None, commune_code: str | None = None,
            square_m: float | None = None, min_count: int = 1, floor_m: float | None = None,
            max_cells: int = 250_000, default_reach_m: float = 20_000.0) -> Heatmap:
    """The density grid over ``area`` (EPSG:3405 WKB, see ``area_wkb``) with the rules above."""
    xy, w = surface_points(bind, flt, area, bandwidth_m or default_reach_m, weight,
                           province_code, commune_code, square_m, min_count)
    notes: dict[str, Any] = {}
    if square_m is not None:
        notes = {"aggregated_to_m": square_m, "squares_under_suppression_limit_dropped": True}
    bw, raised_from = choose_bandwidth(xy, w, bandwidth_m, floor_m)
    if raised_from is not None:
        notes["bandwidth_raised_from_m"] = raised_from
    return Heatmap(density_grid(xy, w, bw, area, cell_m, max_cells), xy, w, notes)
