"""Emerging hot spots: Gi* per time step, a Mann-Kendall trend on each cell's z series, and
ArcGIS's Emerging Hot Spot categories.

Public functions
----------------
- ``mann_kendall(series)`` -> MannKendall(s, var, z, p) per row of a (units x steps) array
- ``classify(z, p, trend_z, trend_p, alpha=0.05)`` -> array of category names
- ``emerging_hotspots(bind, flt, cell_m=500, step='month', province_code=None, commune_code=None,
  band_m=None, k=None, alpha=0.05, on=None)`` -> DataFrame (i, j, x, y, geometry, category,
  trend_z, trend_p, hot_steps, cold_steps, final_z, total) and the step labels in ``df.attrs['steps']``

Categories (hot; the cold ones mirror them with "cold"), for T steps and significance p < alpha:
- persistent / intensifying / diminishing: hot in >= 90 % of steps including the last; no
  significant trend / a significant upward / downward Mann-Kendall trend of the Gi* z-scores
- historical: hot in >= 90 % of steps but not in the last
- new: hot in the last step only
- consecutive: one unbroken run of >= 2 hot steps ending at the last, never hot before it
- oscillating: hot in the last step, cold in some earlier step
- sporadic: hot in the last step, on and off before, never cold
- no_pattern otherwise.
Simplification against ArcGIS: no space-time cube with time neighbours (each step's Gi* uses
only spatial neighbours), and the trend test is run on every cell, not only cells with data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from scipy.stats import norm

from geo._db import Bind, frame
from geo.area import AREA_SQL, area_params
from geo.filters import IncidentFilter
from geo.getis_ord import gi_star
from geo.grid import hex_counts, hex_index_sql
from geo.hotspots import neighbours

STEPS = {"month": "1 month", "quarter": "3 months"}


@dataclass(frozen=True)
class MannKendall:
    s: np.ndarray
    var: np.ndarray
    z: np.ndarray
    p: np.ndarray


def mann_kendall(series: np.ndarray) -> MannKendall:
    """Mann-Kendall S, its variance with the tie correction, continuity-corrected z and the
    two-sided p-value, for every row."""
    x = np.atleast_2d(np.asarray(series, dtype="float64"))
    n = x.shape[1]
    if n < 3:
        raise ValueError("a trend needs at least 3 time steps")
    s = np.zeros(x.shape[0])
    for i in range(n - 1):
        s += np.sign(x[:, i + 1:] - x[:, [i]]).sum(axis=1)
    var = np.full(x.shape[0], n * (n - 1) * (2 * n + 5) / 18.0)
    xs = np.sort(x, axis=1)
    has_ties = (np.diff(xs, axis=1) == 0).any(axis=1)
    for r in np.nonzero(has_ties)[0]:
        _, t = np.unique(xs[r], return_counts=True)
        t = t[t > 1]
        var[r] -= (t * (t - 1) * (2 * t + 5)).sum() / 18.0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(s > 0, (s - 1) / np.sqrt(var), np.where(s < 0, (s + 1) / np.sqrt(var), 0.0))
    z = np.where(var > 0, z, 0.0)
    return MannKendall(s, var, z, 2.0 * norm.sf(np.abs(z)))


def _one(hot: np.ndarray, cold: np.ndarray, tz: float, tp: float, alpha: float, kind: str) -> str | None:
    t = len(hot)
    share = hot.sum() / t
    if share >= 0.9 and hot[-1]:
        if tp < alpha:
            up = tz > 0 if kind == "hot" else tz < 0  # for cold spots "intensifying" = colder
            return f"intensifying_{kind}" if up else f"diminishing_{kind}"
        return f"persistent_{kind}"
    if share >= 0.9:
        return f"historical_{kind}"
    if not hot[-1]:
        return None
    if hot[:-1].sum() == 0:
        return f"new_{kind}"
    run = t - 1
    while run > 0 and hot[run - 1]:
        run -= 1
    if t - run >= 2 and hot[:run].sum() == 0:
        return f"consecutive_{kind}"
    if cold[:-1].any():
        return f"oscillating_{kind}"
    return f"sporadic_{kind}"


def classify(z: np.ndarray, p: np.ndarray, trend_z: np.ndarray, trend_p: np.ndarray,
             alpha: float = 0.05) -> np.ndarray:
    """Category per row of the (units x steps) Gi* z and p arrays."""
    hot = (p < alpha) & (z > 0)
    cold = (p < alpha) & (z < 0)
    out = []
    for r in range(z.shape[0]):
        label = _one(hot[r], cold[r], trend_z[r], trend_p[r], alpha, "hot")
        if label is None:
            label = _one(cold[r], hot[r], trend_z[r], trend_p[r], alpha, "cold")
        out.append(label or "no_pattern")
    return np.array(out, dtype=object)


def emerging_hotspots(bind: Bind, flt: IncidentFilter, cell_m: float = 500.0, step: str = "month",
                      province_code: str | None = None, commune_code: str | None = None,
                      band_m: float | None = None, k: int | None = None, alpha: float = 0.05,
                      on: date | None = None) -> pd.DataFrame:
    """Emerging hot spot categories for every hexagon of side ``cell_m`` over the filter's
    date range split into months or quarters (local time)."""
    if step not in STEPS:
        raise ValueError("step must be 'month' or 'quarter'")
    if flt.start is None or flt.end is None:
        raise ValueError("emerging hot spots need both start and end dates")
    if band_m is None and k is None:
        band_m = math.sqrt(3.0) * cell_m * 1.01
    where, params = flt.sql("i")
    hi, hj = hex_index_sql("p.x", "p.y")
    sql = f"""
    WITH area AS MATERIALIZED ({AREA_SQL}),
    p AS MATERIALIZED (
        SELECT ST_X(i.geom_m) AS x, ST_Y(i.geom_m) AS y,
               date_trunc('{step}', i.occurred_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS t
        FROM incident i, area WHERE i.geom && area.g4326 AND {where}
    )
    SELECT {hi} AS i, {hj} AS j, t, count(*) AS n FROM p GROUP BY 1, 2, 3"""
    params |= {"hex_size": float(cell_m)} | area_params(bind, province_code, commune_code, on or flt.end)
    counts = frame(bind, sql, params)
    # the cells of the study area (zeros included), same filter
    cells = hex_counts(bind, cell_m, flt, province_code, commune_code, on or flt.end)
    steps = pd.date_range(pd.Timestamp(flt.start).to_period("M" if step == "month" else "Q").start_time,
                          pd.Timestamp(flt.end), freq="MS" if step == "month" else "QS").date
    if len(steps) < 3:
        raise ValueError("need at least 3 time steps / cần ít nhất 3 kỳ")
    index = {(a, b): r for r, (a, b) in enumerate(zip(cells["i"], cells["j"], strict=True))}
    col = {d: c for c, d in enumerate(steps)}
    y = np.zeros((len(cells), len(steps)))
    for a, b, t, n in counts.itertuples(index=False):
        r = index.get((a, b))
        if r is not None and t in col:
            y[r, col[t]] = n
    w = neighbours(cells[["x", "y"]].to_numpy(), band_m, k)
    z = np.zeros_like(y)
    p = np.ones_like(y)
    for c in range(len(steps)):
        res = gi_star(y[:, c], w)
        z[:, c], p[:, c] = res.z, res.p
    mk = mann_kendall(z)
    out = cells.drop(columns=["count"]).assign(
        category=classify(z, p, mk.z, mk.p, alpha), trend_z=mk.z, trend_p=mk.p,
        hot_steps=((p < alpha) & (z > 0)).sum(axis=1), cold_steps=((p < alpha) & (z < 0)).sum(axis=1),
        final_z=z[:, -1], total=y.sum(axis=1).astype("int64"))
    out.attrs["steps"] = [d.isoformat() for d in steps]
    return out
