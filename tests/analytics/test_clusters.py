"""DBSCAN clusters in metres: a hand-placed layout with a known answer."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from geo.clusters import incident_clusters
from geo.filters import IncidentFilter

PERIOD = IncidentFilter(date(2027, 1, 1), date(2027, 12, 31))


def _insert(engine, site, offsets):
    with engine.begin() as conn:
        for k, (dx, dy) in enumerate(offsets):
            conn.execute(text("""
                INSERT INTO incident (category_code, occurred_at, youth_involved, geom)
                VALUES ('crime/theft', '2027-05-01 10:00+07', :y,
                        ST_Transform(ST_SetSRID(ST_MakePoint(:x, :yy), 3405), 4326))"""),
                {"x": site.cx + dx, "yy": site.cy + dy, "y": k % 2 == 0})


def test_two_clusters_and_noise(site_engine, site):
    # A: 5 points on a 50 m square grid (+ centre); B: 3 collinear points 60 m apart, 2 km away;
    # noise: one isolated point. eps 80 m, min 3 points.
    a = [(0, 0), (50, 0), (0, 50), (50, 50), (25, 25)]
    b = [(2000, 0), (2060, 0), (2120, 0)]
    _insert(site_engine, site, a + b + [(-1500, -300)])
    df = incident_clusters(site_engine, PERIOD, eps_m=80, min_points=3, commune_code=site.commune_code)
    assert df["count"].tolist() == [5, 3]
    assert df["cluster"].tolist() == [1, 2]
    assert df["youth"].tolist() == [3, 1]  # ids 0, 2, 4 of A and 6 of B are youth
    assert df.loc[0, "area_m2"] == pytest.approx(2500.0, rel=1e-6)  # 50 x 50 convex hull
    assert df.loc[1, "geometry"]["type"] == "Polygon"  # collinear hull buffered to a polygon
    again = incident_clusters(site_engine, PERIOD, eps_m=80, min_points=3, commune_code=site.commune_code)
    assert again.drop(columns=["geometry"]).equals(df.drop(columns=["geometry"]))
    assert incident_clusters(site_engine, PERIOD, eps_m=30, min_points=3,
                             commune_code=site.commune_code).empty
    with pytest.raises(ValueError):
        incident_clusters(site_engine, PERIOD, eps_m=0, commune_code=site.commune_code)
