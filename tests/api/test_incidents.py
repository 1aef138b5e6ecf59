"""Incident point queries (data.police.uk idioms): radius in metres, month, category prefix,
polygon, scope, the cap (413, never truncated), police/admin only, and audited reads."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from antt.db import get_engine

# (east offset in metres from the commune's PointOnSurface, category, local time, youth)
SEED = [
    (100, "crime/theft", "2025-03-05 10:00", False),
    (900, "crime/fraud/online", "2025-03-20 22:00", True),
    (1500, "crime/theft", "2025-03-28 09:00", False),
    (300, "fire/fire", "2025-04-02 12:00", False),
]


def seed(commune: str) -> tuple[float, float]:
    """Incidents east of the commune's inner point; returns that point (lat, lng)."""
    with get_engine().begin() as conn:
        lon, lat = conn.execute(text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM admin_unit "
            "WHERE level = 'commune' AND code = :c) s"), {"c": commune}).one()
        for east, cat, at, youth in SEED:
            conn.execute(text(
                "INSERT INTO incident (category_code, occurred_at, youth_involved, commune_id, geom) "
                "SELECT :cat, CAST(:at AS timestamp) AT TIME ZONE 'Asia/Ho_Chi_Minh', :y, "
                "(SELECT id FROM admin_unit WHERE level = 'commune' AND code = :c), "
                "ST_Transform(ST_Translate(ST_Transform(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), 3405), "
                ":e, 0), 4326)"), {"cat": cat, "at": at, "y": youth, "c": commune, "lon": lon,
                                   "lat": lat, "e": east})
    return lat, lon


@pytest.fixture
def communes(request) -> tuple[str, str]:
    """Two commune codes of the test's database (after the client bound the app to it)."""
    if "haiphong_client" in request.fixturenames:
        request.getfixturevalue("haiphong_client")
    with get_engine().connect() as conn:
        return tuple(conn.execute(text("SELECT code FROM admin_unit WHERE level = 'commune' "
                                       "ORDER BY code LIMIT 2")).scalars())


def test_radius_month_category_for_police(haiphong_client, make_user, communes):
    lat, lng = seed(communes[0])
    police = make_user("police")
    get = lambda path, **p: haiphong_client.get(path, params=p, headers=police)  # noqa: E731
    r = get("/incidents/all", lat=lat, lng=lng, radius=1000, date="2025-03")
    assert r.status_code == 200, r.text
    categories = [f["properties"]["category"] for f in r.json()["features"]]
    assert categories == ["crime/theft", "crime/fraud/online"]
    assert r.json()["features"][1]["properties"]["month"] == "2025-03"
    # 1500 m is inside 1600 m but not 1400 m: metres, not degrees.
    assert get("/incidents/all", lat=lat, lng=lng, radius=1600, date="2025-03").json()["numberReturned"] == 3
    assert get("/incidents/all", lat=lat, lng=lng, radius=1400, date="2025-03").json()["numberReturned"] == 2
    assert get("/incidents/crime", lat=lat, lng=lng, radius=2000).json()["numberReturned"] == 3
    assert get("/incidents/crime/fraud", lat=lat, lng=lng, radius=2000).json()["numberReturned"] == 1
    assert get("/incidents/all", date="2025-04").json()["numberReturned"] == 1
    assert get("/incidents/all", youth="true").json()["numberReturned"] == 1
    assert get("/incidents/crime/nothing").status_code == 404
    bad = get("/incidents/all", date="2025-13")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "date"
    assert get("/incidents/all", lat=lat).status_code == 422


def test_polygon_get_and_post(haiphong_client, make_user, communes):
    lat, lng = seed(communes[0])
    police = make_user("admin")
    d = 0.011  # ~1.1 km: the box holds the 100 m, 300 m and 900 m incidents, not the 1500 m one
    poly = [(lat - d, lng - d), (lat - d, lng + d), (lat + d, lng + d), (lat + d, lng - d)]
    text_poly = ":".join(f"{a},{b}" for a, b in poly)
    r = haiphong_client.get("/incidents/all", params={"poly": text_poly}, headers=police)
    assert r.status_code == 200 and r.json()["numberReturned"] == 3
    r = haiphong_client.post("/incidents/query", json={"category": "crime", "poly": poly}, headers=police)
    assert r.status_code == 200 and r.json()["numberReturned"] == 2
    bowtie = [(lat, lng), (lat + d, lng + d), (lat, lng + d), (lat + d, lng)]
    r = haiphong_client.post("/incidents/query", json={"poly": bowtie}, headers=police)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "poly"
    r = haiphong_client.get("/incidents/all", params={"poly": "1,2:3"}, headers=police)
    assert r.status_code == 422


def test_non_police_roles_get_403_and_no_points(haiphong_client, make_user, communes):
    lat, lng = seed(communes[0])
    for role in ("planner", "committee", "viewer"):
        headers = make_user(role)
        r = haiphong_client.get("/incidents/all", params={"lat": lat, "lng": lng}, headers=headers)
        assert r.status_code == 403, role
        assert "features" not in r.json()
        r = haiphong_client.post("/incidents/query", json={}, headers=headers)
        assert r.status_code == 403
    assert haiphong_client.get("/incidents/all").status_code == 401


def test_scope_and_audit(haiphong_client, make_user, communes):
    seed(communes[0])
    other = make_user("police", "commune", communes[1], username="cong_an_xa")
    assert haiphong_client.get("/incidents/all", headers=other).json()["numberReturned"] == 0
    mine = make_user("police", "commune", communes[0])
    assert haiphong_client.get("/incidents/all", headers=mine).json()["numberReturned"] == 4
    with get_engine().connect() as conn:
        rows = conn.execute(text("SELECT username, detail FROM audit_log WHERE action = 'read_points' "
                                 "ORDER BY id")).all()
    assert [(r.username, r.detail["count"]) for r in rows][0] == ("cong_an_xa", 0)
    assert rows[1].detail["count"] == 4


def test_over_the_cap_is_413_not_truncated(client_for, haiphong_url, make_user, monkeypatch):
    monkeypatch.setenv("ANTT_INCIDENT_QUERY_CAP", "3")
    client = client_for(haiphong_url)
    with get_engine().connect() as conn:
        assert conn.execute(text("SELECT current_database()")).scalar() in haiphong_url
        first = conn.execute(text("SELECT min(code) FROM admin_unit WHERE level = 'commune'")).scalar()
    seed(first)
    police = make_user("police")
    r = client.get("/incidents/all", headers=police)
    assert r.status_code == 413 and r.json()["cap"] == 3
    assert r.headers["content-type"].startswith("application/problem+json")
    assert client.get("/incidents/crime", headers=police).json()["numberReturned"] == 3
