"""Analytics endpoints: coverage per commune/village, uncovered ranked by need, scope, and the
small-count suppression for roles that may not see points (checked by hand)."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import text

from antt.db import get_engine
from api.analytics import clean, clean_records, suppress_small
from api.deps import Principal


def _first_communes(n: int = 2) -> list[str]:
    with get_engine().connect() as conn:
        return list(conn.execute(text("SELECT code FROM admin_unit WHERE level = 'commune' "
                                      "ORDER BY code LIMIT :n"), {"n": n}).scalars())


def _model_in(code: str, rating: str | None) -> None:
    with get_engine().begin() as conn:
        mid = conn.execute(text(
            "INSERT INTO security_model (type_code, name, founded_on, geom) SELECT 'to_tu_quan', 'M', "
            "'2024-01-01', ST_PointOnSurface(geom) FROM admin_unit WHERE level = 'commune' AND code = :c "
            "RETURNING id"), {"c": code}).scalar()
        if rating:
            conn.execute(text("INSERT INTO model_rating (model_id, rating, rated_on) "
                              "VALUES (:m, :r, '2024-06-01')"), {"m": mid, "r": rating})


def test_clean_records_are_the_values_clean_gives():
    import datetime as dt
    from decimal import Decimal

    import numpy as np
    import pandas as pd

    df = pd.DataFrame({
        "share": [0.5, math.nan, math.inf], "n": np.array([1, 2, 3], dtype="int64"),
        "ok": [True, False, True], "nullable": pd.array([1, None, 3], dtype="Int64"),
        "name": ["Xã A", None, "Xã C"], "by_type": [{"a": np.int64(2)}, {}, None],
        "amount": [Decimal("1.5"), None, Decimal("2")], "day": [dt.date(2026, 1, 2), None, None],
    })
    got = clean_records(df)
    assert got == [{k: clean(v) for k, v in rec.items()} for rec in df.to_dict("records")]
    assert got[1] == {"share": None, "n": 2, "ok": False, "nullable": None, "name": None, "by_type": {},
                      "amount": None, "day": None}
    assert got[0]["by_type"] == {"a": 2} and got[0]["day"] == "2026-01-02" and got[2]["share"] is None
    assert [type(v) for v in got[0].values()] == [float, int, bool, int, str, dict, float, str]
    assert clean_records(df.iloc[:0]) == []


def test_suppression_by_hand():
    rows = [{"incidents": 2, "incidents_last_year": 5, "change": -3, "change_pct": -60.0},
            {"incidents": 0, "incidents_last_year": 7, "change": -7, "change_pct": -100.0},
            {"incidents": 3, "incidents_last_year": 1, "change": 2, "change_pct": 200.0}]
    committee = Principal("c", "committee")
    out = suppress_small([dict(r) for r in rows], committee)
    assert out[0] == {"incidents": None, "incidents_last_year": 5, "change": None, "change_pct": None,
                      "suppressed": True}
    assert out[1] == rows[1]  # zero identifies no one
    assert out[2]["incidents_last_year"] is None and out[2]["change"] is None and out[2]["incidents"] == 3
    assert suppress_small([dict(r) for r in rows], Principal("p", "police")) == rows


def test_coverage_communes_geojson_and_scope(haiphong_client, make_user):
    c1, c2 = _first_communes()
    _model_in(c1, "kha")
    _model_in(c2, None)  # unrated: does not qualify under the default rule
    viewer = make_user("viewer")
    r = haiphong_client.get("/analytics/coverage/communes", params={"date": "2025-08-01"}, headers=viewer)
    assert r.status_code == 200, r.text
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and fc["numberReturned"] == 114
    by_code = {f["id"]: f for f in fc["features"]}
    assert by_code[c1]["properties"]["covered"] is True and by_code[c1]["properties"]["rated_kha"] == 1
    assert by_code[c2]["properties"]["covered"] is False and by_code[c2]["properties"]["unrated"] == 1
    assert by_code[c1]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    anyr = haiphong_client.get("/analytics/coverage/communes",
                               params={"date": "2025-08-01", "min_rating": "any", "commune": c2},
                               headers=viewer).json()
    assert [f["id"] for f in anyr["features"]] == [c2] and anyr["features"][0]["properties"]["covered"]
    with get_engine().connect() as conn:
        box = conn.execute(text("SELECT ST_XMin(p), ST_YMin(p), ST_XMax(p), ST_YMax(p) FROM (SELECT "
                                "ST_Expand(ST_PointOnSurface(geom), 0.0001) p FROM admin_unit "
                                "WHERE level = 'commune' AND code = :c) s"), {"c": c1}).one()
    boxed = haiphong_client.get("/analytics/coverage/communes", headers=viewer,
                                params={"bbox": ",".join(f"{v:.6f}" for v in box)}).json()
    assert c1 in [f["id"] for f in boxed["features"]] and boxed["numberReturned"] < 5
    scoped = make_user("committee", "commune", c1)
    r = haiphong_client.get("/analytics/coverage/communes", headers=scoped)
    assert [f["id"] for f in r.json()["features"]] == [c1]
    r = haiphong_client.get("/analytics/coverage/communes", params={"commune": c2}, headers=scoped)
    assert r.status_code == 403 and r.json()["errors"][0]["field"] == "commune"
    haiphong = make_user("committee", "province", "31")
    r = haiphong_client.get("/analytics/coverage/communes", params={"province": "01"}, headers=haiphong)
    assert r.status_code == 403 and r.json()["errors"][0]["field"] == "province"


def test_uncovered_communes_suppress_small_counts_for_committee(haiphong_client, make_user):
    c1, c2 = _first_communes()
    _model_in(c2, "tot")
    with get_engine().begin() as conn:
        for _ in range(2):  # two incidents in c1: a count a committee must not see
            conn.execute(text(
                "INSERT INTO incident (category_code, occurred_at, geom) SELECT 'crime/theft', "
                "'2025-07-15 10:00+07', ST_PointOnSurface(geom) FROM admin_unit "
                "WHERE level = 'commune' AND code = :c"), {"c": c1})
    params = {"level": "commune", "date": "2025-08-01", "province": "31", "simplify": 200}
    police = haiphong_client.get("/analytics/coverage/uncovered", params=params, headers=make_user("police"))
    assert police.status_code == 200, police.text
    feats = {f["id"]: f["properties"] for f in police.json()["features"]}
    assert c2 not in feats and feats[c1]["incidents"] == 2
    committee = haiphong_client.get("/analytics/coverage/uncovered", params=params,
                                    headers=make_user("committee"))
    props = {f["id"]: f["properties"] for f in committee.json()["features"]}[c1]
    assert props["incidents"] is None and props["suppressed"] is True and props["change"] is None
    assert "2" not in [str(v) for k, v in props.items() if k.startswith("incidents")]


def test_bad_parameters_are_422_naming_the_field(haiphong_client, make_user):
    viewer = make_user("viewer")
    for params, field in (({"min_rating": "great"}, "query.min_rating"),
                          ({"model_types": "nope"}, "model_types"),
                          ({"level": "province"}, "query.level")):
        path = "/analytics/coverage/uncovered" if "level" in params else "/analytics/coverage/villages"
        r = haiphong_client.get(path, params=params, headers=viewer)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["errors"][0]["field"] == field
    r = haiphong_client.get("/analytics/coverage/uncovered",
                            params={"start": "2025-05-01", "end": "2025-01-01"}, headers=viewer)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "end"


def _incidents_at(code: str, n: int, away_m: float = 0.0) -> None:
    """N incidents at the commune's inner point, or at an inner point at least AWAY_M from it."""
    with get_engine().begin() as conn:
        conn.execute(text(
            "WITH u AS (SELECT ST_Transform(geom, 3405) g FROM admin_unit WHERE level = 'commune' "
            "AND code = :c), p AS (SELECT CASE WHEN :a > 0 THEN ST_PointOnSurface(ST_Difference(g, "
            "ST_Buffer(ST_PointOnSurface(g), :a))) ELSE ST_PointOnSurface(g) END AS p FROM u) "
            "INSERT INTO incident (category_code, occurred_at, geom) SELECT 'crime/theft', "
            "'2025-08-01 10:00+07', ST_Transform(p, 4326) FROM p, generate_series(1, :n)"),
            {"c": code, "n": n, "a": away_m})


def _largest_commune() -> str:
    with get_engine().connect() as conn:
        return conn.execute(text("SELECT code FROM admin_unit WHERE level = 'commune' "
                                 "ORDER BY ST_Area(geom::geography) DESC LIMIT 1")).scalar()


def test_hex_hotspots_with_privacy_floor(haiphong_client, make_user):
    c1 = _largest_commune()
    _incidents_at(c1, 12)
    _incidents_at(c1, 2, away_m=1100)  # farther than a 500 m hexagon's diameter: another cell
    params = {"commune": c1, "cell": 500, "start": "2025-01-01", "end": "2025-12-31"}
    r = haiphong_client.get("/analytics/hotspots", params=params, headers=make_user("police"))
    assert r.status_code == 200, r.text
    counts = sorted(f["properties"]["count"] for f in r.json()["features"])
    assert counts[-2:] == [2, 12] and sum(counts) == 14
    top = max(r.json()["features"], key=lambda f: f["properties"]["count"])["properties"]
    assert top["z"] > 0 and top["bin"] >= 1 and 0 <= top["p"] <= 1
    viewer = make_user("viewer")
    shown = haiphong_client.get("/analytics/hotspots", params=params, headers=viewer).json()["features"]
    assert sorted(c for c in (f["properties"]["count"] for f in shown) if c)[-1:] == [12]
    assert 2 not in [f["properties"]["count"] for f in shown]
    assert sum(1 for f in shown if f["properties"]["count"] is None) == 1
    small = haiphong_client.get("/analytics/hotspots", params={**params, "cell": 100}, headers=viewer)
    assert small.status_code == 403 and small.json()["errors"][0]["field"] == "cell"
    noarea = haiphong_client.get("/analytics/hotspots", headers=make_user("police"))
    assert noarea.status_code == 422 and noarea.json()["errors"][0]["field"] == "province"


def test_heatmap_formats_and_privacy(haiphong_client, make_user):
    c1 = _largest_commune()
    _incidents_at(c1, 12)
    _incidents_at(c1, 2, away_m=1100)
    police = make_user("police")
    base = {"commune": c1, "cell": 250, "bandwidth": 600, "start": "2025-01-01", "end": "2025-12-31"}
    r = haiphong_client.get("/analytics/heatmap", params=base, headers=police)
    assert r.status_code == 200, r.text
    cells = r.json()
    assert cells["bandwidth_m"] == 600 and cells["n_points"] == 14 and cells["features"]
    # The densest cell is the one holding the 12 incidents: 12 x 3/pi / r^2 per km^2 at d ~ 0.
    peak = max(f["properties"]["density"] for f in cells["features"])
    assert 0.8 * 12 * 3 / math.pi / 0.36 <= peak <= 12 * 3 / math.pi / 0.36
    r = haiphong_client.get("/analytics/heatmap", params={**base, "format": "png"}, headers=police)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content[:4] == b"\x89PNG"
    minx, miny, maxx, maxy = (float(v) for v in r.headers["X-Bounds"].split(","))
    assert 105 < minx < maxx < 108 and 19 < miny < maxy < 22
    meta = haiphong_client.get("/analytics/heatmap.json", params=base, headers=police).json()
    assert meta["bounds"] == pytest.approx([minx, miny, maxx, maxy], abs=1e-6)  # same as the PNG's
    assert meta["png_url"].startswith("/analytics/heatmap?") and "format=png" in meta["png_url"]
    assert haiphong_client.get(meta["png_url"], headers=police).content[:4] == b"\x89PNG"
    contours = haiphong_client.get("/analytics/heatmap", params={**base, "format": "contours"},
                                   headers=police)
    assert contours.status_code == 200 and contours.json()["features"][0]["properties"]["band"] >= 1

    viewer = make_user("viewer")
    assert haiphong_client.get("/analytics/heatmap", params={**base, "bandwidth": 100},
                               headers=viewer).status_code == 403
    assert haiphong_client.get("/analytics/heatmap", params={**base, "cell": 100},
                               headers=viewer).status_code == 403
    public = haiphong_client.get("/analytics/heatmap", params=base, headers=viewer).json()
    # The 2 incidents 1.1 km away are below the suppression limit: only the group of 12 remains.
    assert public["n_points"] == 1 and public["notes"]["aggregated_to_m"] == 250
    bad = haiphong_client.get("/analytics/heatmap", params={"bbox": "1,2,3"}, headers=police)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "bbox"
    # one parser (layers.filters.parse_bbox) with the analytics' stricter rules: an area, in Vietnam
    for box, why in (("106,20,106,21", "no area"), ("90,20,107,21", "outside Vietnam")):
        for path in ("/analytics/heatmap", "/analytics/coverage/communes"):
            r = haiphong_client.get(path, params={"bbox": box}, headers=police)
            assert r.status_code == 422 and r.json()["errors"][0]["field"] == "bbox", (path, box)
            assert why in r.text


def test_clusters_police_exact_hulls_public_coarse(haiphong_client, make_user):
    c1 = _largest_commune()
    with get_engine().begin() as conn:  # 4 incidents on a 40 m square: one cluster
        conn.execute(text(
            "INSERT INTO incident (category_code, occurred_at, geom) SELECT 'crime/theft', "
            "'2025-08-01 10:00+07', ST_Transform(ST_Translate(p, dx, dy), 4326) "
            "FROM (SELECT ST_Transform(ST_PointOnSurface(geom), 3405) p FROM admin_unit "
            "WHERE level = 'commune' AND code = :c) s, "
            "(VALUES (0, 0), (40, 0), (0, 40), (40, 40)) d(dx, dy)"),
            {"c": c1})
        corners = conn.execute(text(
            "SELECT ST_X(geom), ST_Y(geom) FROM incident ORDER BY id")).all()
    params = {"commune": c1, "eps": 100, "min_points": 3}
    police = haiphong_client.get("/analytics/clusters", params=params, headers=make_user("police")).json()
    assert police["numberReturned"] == 1 and police["features"][0]["properties"]["count"] == 4
    ring = {tuple(round(v, 6) for v in c) for c in police["features"][0]["geometry"]["coordinates"][0]}
    assert {(round(x, 6), round(y, 6)) for x, y in corners} == ring
    viewer = make_user("viewer")
    public = haiphong_client.get("/analytics/clusters", params=params, headers=viewer).json()
    feature = public["features"][0]
    assert "first_id" not in feature["properties"] and feature["properties"]["cluster_id"] == 1
    coarse = {tuple(round(v, 6) for v in c) for c in feature["geometry"]["coordinates"][0]}
    assert not coarse & {(round(x, 6), round(y, 6)) for x, y in corners}  # no vertex is an incident
    r = haiphong_client.get("/analytics/clusters", params={**params, "min_points": 2}, headers=viewer)
    assert r.status_code == 403 and r.json()["errors"][0]["field"] == "min_points"


def _dated(code: str, when: str, n: int) -> None:
    with get_engine().begin() as conn:
        conn.execute(text(
            "INSERT INTO incident (category_code, occurred_at, commune_id, geom) SELECT 'crime/theft', "
            "CAST(:w AS timestamptz), id, ST_PointOnSurface(geom) FROM admin_unit, generate_series(1, :n) "
            "WHERE level = 'commune' AND code = :c"), {"c": code, "w": when + " 10:00+07", "n": n})


def test_trends_and_same_period(haiphong_client, make_user):
    c1, c2 = _first_communes()
    _dated(c1, "2025-08-03", 4)
    _dated(c1, "2025-09-03", 1)
    _dated(c1, "2024-08-10", 2)
    _dated(c2, "2025-08-20", 3)
    police, viewer = make_user("police"), make_user("viewer")
    q = {"level": "commune", "code": c1, "start": "2025-07-01", "end": "2025-09-30"}
    r = haiphong_client.get("/analytics/trends", params=q, headers=police)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["months"] == ["2025-07", "2025-08", "2025-09"]
    assert body["series"] == [{"code": c1, "name": body["series"][0]["name"], "counts": [0, 4, 1]}]
    assert haiphong_client.get("/analytics/trends", params=q, headers=viewer).json()["series"][0]["counts"] \
        == [0, 4, None]
    sp = {"start": "2025-08-01", "end": "2025-08-31", "province": "31"}
    r = haiphong_client.get("/analytics/same-period", params={**sp, "level": "province"}, headers=police)
    assert r.status_code == 200, r.text
    assert (r.json()["this_period"], r.json()["last_year"]) == (7, 2)
    rows = haiphong_client.get("/analytics/same-period", params={**sp, "level": "commune"},
                               headers=viewer).json()["rows"]
    mine = {row["code"]: row for row in rows}
    assert mine[c1]["this_period"] == 4 and mine[c1]["last_year"] is None and mine[c1]["change"] is None
    assert mine[c2]["this_period"] == 3 and mine[c2]["last_year"] == 0
    r = haiphong_client.get("/analytics/same-period", params={"level": "province", "start": "2025-08-01",
                                                              "end": "2025-08-31"}, headers=police)
    assert r.status_code == 200 and r.json()["this_period"] == 7  # nationwide: the whole database


def test_emerging_hotspots_shape(haiphong_client, make_user):
    c1 = _largest_commune()
    for month in ("2025-03", "2025-04", "2025-05", "2025-06"):
        with get_engine().begin() as conn:
            conn.execute(text(
                "INSERT INTO incident (category_code, occurred_at, geom) SELECT 'crime/theft', "
                "CAST(:w AS timestamptz), ST_PointOnSurface(geom) FROM admin_unit, generate_series(1, 5) "
                "WHERE level = 'commune' AND code = :c"), {"c": c1, "w": month + "-10 10:00+07"})
    q = {"commune": c1, "cell": 500, "start": "2025-03-01", "end": "2025-06-30"}
    r = haiphong_client.get("/analytics/emerging-hotspots", params=q, headers=make_user("police"))
    assert r.status_code == 200, r.text
    feats = r.json()["features"]
    hot = max(feats, key=lambda f: f["properties"]["total"])["properties"]
    assert hot["total"] == 20 and hot["hot_steps"] == 4 and hot["category"].endswith("hot")
    assert r.json()["parameters"]["steps"] == ["2025-03-01", "2025-04-01", "2025-05-01", "2025-06-01"]
    r = haiphong_client.get("/analytics/emerging-hotspots", params={**q, "cell": 100},
                            headers=make_user("committee"))
    assert r.status_code == 403
