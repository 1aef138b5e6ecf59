"""Hexagon counts and Gi* hotspots in the database, on a real Hải Phòng commune."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from sqlalchemy import text

from geo.filters import IncidentFilter
from geo.grid import hex_counts
from geo.hotspots import hex_hotspots, to_feature_collection, village_counts, village_hotspots

YEAR = IncidentFilter(date(2026, 1, 1), date(2026, 12, 31))


def _plant(engine, site, n_background=400, n_cluster=150):
    """Uniform background over the commune plus a tight cluster 300 m around V2's centre (the
    commune is large and made of many islands, so the background is sparse)."""
    with engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO incident (category_code, occurred_at, geom)
            SELECT 'crime/theft', '2026-03-01 12:00+07', (ST_Dump(ST_GeneratePoints(geom, :n, 11))).geom
            FROM admin_unit WHERE id = :c"""), {"n": n_background, "c": site.commune_id})
        conn.execute(text("""
            INSERT INTO incident (category_code, occurred_at, geom)
            SELECT 'crime/drugs', '2026-04-01 12:00+07',
                   ST_Transform((ST_Dump(ST_GeneratePoints(
                       ST_Buffer(ST_SetSRID(ST_MakePoint(:x, :y), 3405), 300), :n, 12))).geom, 4326)"""),
            {"n": n_cluster, "x": site.cx + 500, "y": site.cy + 500})


def test_hex_binning_matches_spatial_join(site_engine, site):
    _plant(site_engine, site)
    df = hex_counts(site_engine, 250, YEAR, commune_code=site.commune_code)
    with site_engine.connect() as conn:
        joined = dict(conn.execute(text("""
            WITH area AS MATERIALIZED (SELECT ST_Transform(geom, 3405) g FROM admin_unit WHERE id = :c),
            p AS MATERIALIZED (SELECT ST_Transform(geom, 3405) g FROM incident
                               WHERE occurred_at >= '2026-01-01 00:00+07'),
            h AS MATERIALIZED (SELECT h.* FROM area, ST_HexagonGrid(250, area.g) h
                               WHERE ST_Intersects(h.geom, area.g))
            SELECT h.i || ',' || h.j, count(*) FROM h JOIN p ON ST_Intersects(h.geom, p.g)
            GROUP BY 1"""), {"c": site.commune_id}).all())
        planted = conn.execute(text(
            "SELECT count(*) FROM incident WHERE occurred_at >= '2026-01-01 00:00+07'")).scalar_one()
    ours = {f"{i},{j}": n for i, j, n in zip(df["i"], df["j"], df["count"], strict=True) if n}
    assert ours == joined
    assert df["count"].sum() == planted > 500  # ST_GeneratePoints may return a few less than asked
    assert (df["count"] == 0).sum() > 0  # empty cells are kept for Gi*
    # 'crime' includes crime/theft and crime/drugs; 'crime/drugs' only the cluster
    drugs = hex_counts(site_engine, 250, IncidentFilter(date(2026, 1, 1), date(2026, 12, 31), "crime/drugs"),
                       commune_code=site.commune_code, with_geometry=False)
    assert drugs["count"].sum() == 150


def test_hex_hotspots_find_the_cluster_and_equal_esda(site_engine, site):
    from esda.getisord import G_Local
    from libpysal.weights import DistanceBand

    _plant(site_engine, site)
    df = hex_hotspots(site_engine, 250, YEAR, commune_code=site.commune_code)
    xy = df[["x", "y"]].to_numpy()
    w = DistanceBand(xy, threshold=np.sqrt(3) * 250 * 1.01, binary=True, silence_warnings=True)
    theirs = G_Local(df["count"].to_numpy(float), w, transform="B", star=True, permutations=0)
    assert np.abs(df["z"].to_numpy() - theirs.Zs).max() < 1e-6
    hot = df[df["bin"] == 3]
    assert len(hot) >= 3
    d = np.hypot(hot["x"] - (site.cx + 500), hot["y"] - (site.cy + 500))
    assert (d < 800).all()  # every 99 % hotspot is at the planted cluster
    fc = to_feature_collection(df.head(3), ["i", "j", "count", "z", "p", "bin"])
    assert fc["features"][0]["geometry"]["type"] == "Polygon"
    assert set(fc["features"][0]["properties"]) == {"i", "j", "count", "z", "p", "bin"}


def test_village_counts_and_hotspots(site_engine, site):
    period = IncidentFilter(date(2025, 7, 1), date(2026, 6, 30))
    df = village_counts(site_engine, period, commune_code=site.commune_code, on=date(2026, 6, 30))
    names = {v: k for k, v in site.villages.items()}
    assert {names[i]: n for i, n in zip(df["id"], df["count"], strict=True)} == {
        "V1": 0, "V2": 0, "V3": 3, "V4": 1}
    hs = village_hotspots(site_engine, period, commune_code=site.commune_code, k=None, band_m=1001.0,
                          on=date(2026, 6, 30))
    # square of 4 villages 1 km apart: band 1001 m -> each has 2 neighbours + itself, W_i = 3.
    # y = 0,0,3,1 (V1..V4): n=4, sum=4, mean=1, var = 10/4 - 1 = 1.5;
    # Var(G*) = 3*1/3/16 * 1.5 = 0.09375; V3 (-1,-1) neighbours V1, V4: G* = (0+3+1)/4 = 1
    z_v3 = (1 - 0.75) / np.sqrt(0.09375)
    assert hs.loc[hs["id"] == site.villages["V3"], "z"].item() == pytest.approx(z_v3)
    with pytest.raises(ValueError):
        hex_hotspots(site_engine, 250, YEAR)


def test_hex_geometry_and_centres_equal_postgis(site_engine, site):
    df = hex_counts(site_engine, 300, YEAR, commune_code=site.commune_code)
    sample = df.iloc[:: max(1, len(df) // 7)]
    with site_engine.connect() as conn:
        for row in sample.itertuples():
            ring, cx, cy = conn.execute(text("""
                SELECT ST_AsGeoJSON(ST_Transform(h, 4326), 6)::json,
                       ST_X(ST_Centroid(h)), ST_Y(ST_Centroid(h))
                FROM ST_Hexagon(300, :i, :j, ST_SetSRID(ST_MakePoint(0, 0), 3405)) h"""),
                {"i": int(row.i), "j": int(row.j)}).one()
            ours = np.array(row.geometry["coordinates"][0])
            theirs = np.array(ring["coordinates"][0])
            assert ours.shape == theirs.shape and np.abs(ours - theirs).max() <= 2e-6
            assert (row.x, row.y) == (pytest.approx(cx, abs=1e-6), pytest.approx(cy, abs=1e-6))
