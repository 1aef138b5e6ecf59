"""Before/after figures of a set of new sites, with the coverage rules the analytics use.

Two measures of "covered", both with the sites' radius R in EPSG:3405 metres:

- **within R** (the optimiser's rule): a demand unit, village or institution is covered when
  its point (a village's ``ST_PointOnSurface``) lies within R of an active model or a new
  site (distance <= R). Counts of villages, their population, the incidents in them and the
  institutions covered follow this rule.
- **population within R** (the coverage analytics' figure, ``geo.coverage.commune_coverage``
  with ``radius_m=R``): each village's population times the share of its area inside the
  union of R-buffers (32-gon circles) of all active models, areal weighting. "Before" is read
  from ``geo.reach`` (its memo); "after" re-overlays, in SQL, only the villages a new site's
  circle touches, with the same buffers (``ST_Buffer(..., R, 8)`` of the points as stored in
  EPSG:4326), so once the sites are saved as models the analytics report the same number.
- **villages hosting a model**: the analytics' covered flag with any active model counting
  (``CoverageRule(min_rating=None)``); a new site adds the village it lies in
  (``unit_at``, the rule the database uses when a point is written).

Incident figures use the counts the demand frame holds (suppressed under 3 per village for
roles that see aggregates only).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import text

from antt.crs import METRIC_SRID
from geo._db import ACTIVE_SQL, Bind, connect
from geo.planner import covering as cv
from geo.planner.inputs import Scope, frame
from geo.reach import METRES_PER_DEGREE_FLOOR, unit_reach


def village_reach(bind: Bind, on: date, radius_m: float, scope: Scope, village_ids: list[int],
                  province_codes: list[str]) -> pd.DataFrame:
    """Share of each village's area within R of an active model (geo.reach, memoised):
    id, area_m2, area_within_m2, area_within_share."""
    if scope.polygon is None:
        parts = [unit_reach(bind, on, radius_m, province_code=scope.province_code,
                            commune_code=scope.commune_code)]
    else:
        parts = [unit_reach(bind, on, radius_m, province_code=p) for p in province_codes]
    reach = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["unit_id", "level", "area_m2", "area_within_m2", "area_within_share"])
    reach = reach[(reach["level"] == "village") & reach["unit_id"].isin(village_ids)]
    out = reach.rename(columns={"unit_id": "id"})[["id", "area_m2", "area_within_m2", "area_within_share"]]
    return out.drop_duplicates("id").astype({"id": "int64"}).reset_index(drop=True)


def overlay_with_sites(bind: Bind, on: date, radius_m: float, village_ids: list[int],
                       lons: np.ndarray, lats: np.ndarray) -> pd.DataFrame:
    """Area of each village (of ``village_ids``) within R of an active model or of a new site
    (lon/lat, EPSG:4326), for the villages some new site's circle touches only: id, area_m2,
    area_within_m2. Buffers as in geo.reach: 32-gons around the points in EPSG:3405."""
    if len(lons) == 0 or not village_ids:
        return pd.DataFrame({"id": pd.Series(dtype="int64"), "area_m2": pd.Series(dtype=float),
                             "area_within_m2": pd.Series(dtype=float)})
    return frame(bind, f"""
    WITH s AS MATERIALIZED (
        SELECT ST_Transform(ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326), {METRIC_SRID}) AS g
        FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[])) AS t(lon, lat)),
    sc AS MATERIALIZED (SELECT ST_Collect(g) AS g, ST_Expand(ST_Transform(ST_Collect(g), 4326), :r_deg) AS box
                        FROM s),
    -- index box first (R/100000 degrees >= R metres), then the exact distance in metres: only
    -- the outlines near a site are transformed
    v AS MATERIALIZED (
        SELECT u.id, u.geom, ST_Transform(u.geom, {METRIC_SRID}) AS gm FROM admin_unit u, sc
        WHERE u.id = ANY(:ids) AND u.geom && sc.box
          AND ST_DWithin(ST_Transform(u.geom, {METRIC_SRID}), sc.g, :r)),
    pts AS (
        SELECT v.id, ST_Collect(p.g) AS g FROM v CROSS JOIN LATERAL (
            SELECT ST_Transform(m.geom, {METRIC_SRID}) AS g FROM security_model m
            WHERE m.geom && ST_Expand(v.geom, :r_deg) AND {ACTIVE_SQL}
              AND ST_DWithin(ST_Transform(m.geom, {METRIC_SRID}), v.gm, :r)
            UNION ALL
            SELECT s.g FROM s WHERE ST_DWithin(s.g, v.gm, :r)) p
        GROUP BY v.id)
    SELECT v.id, ST_Area(v.gm) AS area_m2,
           ST_Area(ST_Intersection(v.gm, ST_Buffer(pts.g, :r, 8))) AS area_within_m2
    FROM v JOIN pts ON pts.id = v.id ORDER BY v.id""",
                 {"lons": [float(x) for x in lons], "lats": [float(y) for y in lats], "ids": village_ids,
                  "r": float(radius_m), "r_deg": float(radius_m) / METRES_PER_DEGREE_FLOOR, "on": on})


def host_villages(bind: Bind, on: date, lons: np.ndarray, lats: np.ndarray) -> list[int | None]:
    """The village each point lies in on ``on`` (the database's own unit_at rule)."""
    if len(lons) == 0:
        return []
    with connect(bind) as conn:
        rows = conn.execute(text("""
            SELECT unit_at(ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326), 'village', :on) AS v
            FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[])) WITH ORDINALITY AS t(lon, lat, k)
            ORDER BY t.k"""), {"lons": [float(x) for x in lons], "lats": [float(y) for y in lats],
                               "on": on}).all()
    return [None if r.v is None else int(r.v) for r in rows]


def _block(villages: pd.DataFrame, within: np.ndarray, hosting: np.ndarray, pop_within_r: float,
           inst: pd.DataFrame, inst_within: np.ndarray, demand_w: np.ndarray, demand_cov: np.ndarray,
           ) -> dict[str, Any]:
    pop = pd.to_numeric(villages["population"], errors="coerce").fillna(0).to_numpy(dtype=float)
    inc = villages["incidents"].to_numpy(dtype=float)
    unsafe = ~inst["safe"].to_numpy(dtype=bool) if len(inst) else np.zeros(0, dtype=bool)
    return {
        "villages": int(len(villages)),
        "villages_within_r": int(within.sum()),
        "villages_hosting_model": int(hosting.sum()),
        "population": float(pop.sum()),
        "population_in_villages_within_r": float(pop[within].sum()),
        "population_within_r": float(pop_within_r),
        "incidents": int(inc.sum()),
        "incidents_in_villages_within_r": int(inc[within].sum()),
        "institutions": int(len(inst)),
        "institutions_within_r": int(inst_within.sum()),
        "institutions_unsafe": int(unsafe.sum()),
        "institutions_unsafe_within_r": int((inst_within & unsafe).sum()),
        "demand_weight": float(demand_w.sum()),
        "demand_weight_covered": float(demand_w[demand_cov].sum()),
    }


def before_after(bind: Bind, on: date, radius_m: float, villages: pd.DataFrame, reach: pd.DataFrame,
                 inst: pd.DataFrame, fixed_xy: np.ndarray, demand_xy: np.ndarray, demand_w: np.ndarray,
                 site_xy: np.ndarray, site_lon: np.ndarray, site_lat: np.ndarray,
                 all_models_xy: np.ndarray | None = None) -> dict[str, Any]:
    """The figures before (active models only) and after (plus the sites), and per village
    whether it is within R after. ``fixed_xy``: the models counting for demand coverage;
    ``all_models_xy``: every active model (villages and institutions within R; default
    ``fixed_xy``)."""
    r = float(radius_m)
    models_xy = fixed_xy if all_models_xy is None else all_models_xy
    vxy = villages[["x", "y"]].to_numpy(dtype=float)
    v_before = cv.covered_by(vxy, models_xy, r) if len(models_xy) else np.zeros(len(vxy), dtype=bool)
    v_new = cv.covered_by(vxy, site_xy, r) if len(site_xy) else np.zeros(len(vxy), dtype=bool)
    ixy = inst[["x", "y"]].to_numpy(dtype=float) if len(inst) else np.empty((0, 2))
    i_before = cv.covered_by(ixy, models_xy, r) if len(models_xy) else np.zeros(len(ixy), dtype=bool)
    i_new = cv.covered_by(ixy, site_xy, r) if len(site_xy) else np.zeros(len(ixy), dtype=bool)
    none = np.zeros(len(demand_xy), dtype=bool)
    d_before = cv.covered_by(demand_xy, fixed_xy, r) if len(fixed_xy) else none
    d_new = cv.covered_by(demand_xy, site_xy, r) if len(site_xy) else none
    hosting_before = villages["models"].to_numpy() > 0
    hosts = host_villages(bind, on, site_lon, site_lat)
    hosting_after = hosting_before | villages["id"].isin([h for h in hosts if h is not None]).to_numpy()
    # population within R, areal, as geo.coverage reports it
    pop = pd.to_numeric(villages["population"], errors="coerce").fillna(0)
    share = villages["id"].map(reach.set_index("id")["area_within_share"]).fillna(0.0)
    pop_before = float((pop * share).sum())
    redo = overlay_with_sites(bind, on, r, [int(i) for i in villages["id"]], site_lon, site_lat)
    share_after = share.copy()
    if len(redo):
        new_share = (redo["area_within_m2"] / redo["area_m2"].where(redo["area_m2"] > 0)).fillna(0.0)
        fresh = dict(zip(redo["id"].astype("int64"), new_share, strict=True))
        share_after = pd.Series([fresh.get(int(i), s) for i, s in zip(villages["id"], share, strict=True)],
                                index=share.index)
    pop_after = float((pop * share_after).sum())
    before = _block(villages, v_before, hosting_before, pop_before, inst, i_before, demand_w, d_before)
    after = _block(villages, v_before | v_new, hosting_after, pop_after, inst, i_before | i_new, demand_w,
                   d_before | d_new)
    return {"before": before, "after": after,
            "change": {k: after[k] - before[k] for k in before},
            "village_within_r_after": v_before | v_new, "village_within_r_before": v_before,
            "village_share_after": share_after.to_numpy(), "hosts": hosts}
