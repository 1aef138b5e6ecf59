"""Mann-Kendall by hand, the ArcGIS categories on hand-made series, and a planted emerging cluster."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pytest
from sqlalchemy import text

from geo.emerging import classify, emerging_hotspots, mann_kendall
from geo.filters import IncidentFilter


def test_mann_kendall_by_hand():
    mk = mann_kendall(np.array([[1, 2, 3, 4, 5], [1, 1, 2, 2, 2], [3, 3, 3, 3, 3]]))
    # row 0: S = 10, Var = 5*4*15/18 = 16.667, z = 9/sqrt(16.667) = 2.2045, p = 0.0275
    assert mk.s[0] == 10 and mk.var[0] == pytest.approx(50 / 3)
    assert mk.z[0] == pytest.approx(9 / math.sqrt(50 / 3)) and mk.p[0] == pytest.approx(0.02749, abs=1e-4)
    # row 1: S = 6; tie groups of sizes 2 and 3: Var = (300 - 2*1*9 - 3*2*11)/18 = 12
    assert mk.s[1] == 6 and mk.var[1] == pytest.approx(12.0)
    assert mk.z[2] == 0 and mk.p[2] == 1


def _labels(hot_rows: list[str]) -> list[str]:
    """'H' hot, 'C' cold, '.' nothing; strong z +-3 (p 0.0027) or 0."""
    z = np.array([[{"H": 3.0, "C": -3.0, ".": 0.0}[c] for c in row] for row in hot_rows])
    p = 2 * (1 - 0.5 * (1 + np.vectorize(math.erf)(np.abs(z) / math.sqrt(2))))
    mk = mann_kendall(z)
    return list(classify(z, p, mk.z, mk.p))


def test_categories():
    assert _labels([
        "..........H",   # new
        "........HHH",   # consecutive
        "HHHHHHHHHHH",   # persistent (no trend in constant z)
        "HHHHHHHHHH.",   # historical (10/11 >= 90 %)
        "H..H..H...H",   # sporadic
        "C...H..C..H",   # oscillating
        "...........",   # no pattern
        "..........C",   # new cold
    ]) == ["new_hot", "consecutive_hot", "persistent_hot", "historical_hot", "sporadic_hot",
           "oscillating_hot", "no_pattern", "new_cold"]
    # intensifying: hot throughout with rising z
    z = np.array([np.linspace(2.0, 6.0, 12)])
    p = np.full_like(z, 0.001)
    mk = mann_kendall(z)
    assert classify(z, p, mk.z, mk.p).tolist() == ["intensifying_hot"]
    mk = mann_kendall(z[:, ::-1])
    assert classify(z[:, ::-1], p, mk.z, mk.p).tolist() == ["diminishing_hot"]


def test_emerging_cluster_in_the_database(site_engine, site):
    with site_engine.begin() as conn:  # a cluster that appears in the last 3 months of 2027
        for month, n in [(10, 12), (11, 15), (12, 20)]:
            conn.execute(text("""
                INSERT INTO incident (category_code, occurred_at, geom)
                SELECT 'crime/theft', make_timestamptz(2027, :m, 10, 12, 0, 0, 'Asia/Ho_Chi_Minh'),
                       ST_Transform((ST_Dump(ST_GeneratePoints(
                           ST_Buffer(ST_SetSRID(ST_MakePoint(:x, :y), 3405), 200), :n, :m))).geom, 4326)"""),
                {"m": month, "n": n, "x": site.cx + 500, "y": site.cy + 500})
        conn.execute(text("""
            INSERT INTO incident (category_code, occurred_at, geom)
            SELECT 'crime/theft',
                   make_timestamptz(2027, (1 + k % 12)::int, 5, 12, 0, 0, 'Asia/Ho_Chi_Minh'), g
            FROM (SELECT row_number() OVER () AS k, (ST_Dump(ST_GeneratePoints(geom, 240, 5))).geom AS g
                  FROM admin_unit WHERE id = :c) t"""), {"c": site.commune_id})
    df = emerging_hotspots(site_engine, IncidentFilter(date(2027, 1, 1), date(2027, 12, 31)), cell_m=500,
                           commune_code=site.commune_code)
    assert len(df.attrs["steps"]) == 12
    d = np.hypot(df["x"] - (site.cx + 500), df["y"] - (site.cy + 500))
    centre = df.loc[d.idxmin()]
    assert centre["category"] == "consecutive_hot" and centre["hot_steps"] == 3
    assert (df["category"] == "no_pattern").mean() > 0.9
    quarters = emerging_hotspots(site_engine, IncidentFilter(date(2027, 1, 1), date(2027, 12, 31)),
                                 cell_m=500, step="quarter", commune_code=site.commune_code)
    assert quarters.attrs["steps"] == ["2027-01-01", "2027-04-01", "2027-07-01", "2027-10-01"]
    assert quarters.loc[d.idxmin(), "category"] == "new_hot"  # the cluster lives in Q4 only
