"""GET /collections/launch_points/items/{fid}/nearby-uncovered: uncovered villages (geo.coverage)
within R metres of a launch point, nearest first."""

from __future__ import annotations

from sqlalchemy import text

from antt.db import get_engine


def seed() -> tuple[list[float], str]:
    """Three 100 m villages east of a commune's inner point at 400, 1500 and 4000 m; the 1500 m
    one hosts a model rated 'kha' (covered). Returns the launch point [lon, lat] and the commune."""
    with get_engine().begin() as conn:
        cid, code, x, y = conn.execute(text(
            "SELECT id, code, ST_X(p), ST_Y(p) FROM (SELECT id, code, ST_Transform(ST_PointOnSurface(geom), "
            "3405) p FROM admin_unit WHERE level = 'commune' ORDER BY code LIMIT 1) s")).one()
        for n, east in ((1, 400), (2, 1500), (3, 4000)):
            conn.execute(text(
                "INSERT INTO admin_unit (level, code, name, name_search, parent_id, province_code, "
                "valid_from, geom) SELECT 'village', :code, :name, :name, :cid, '31', '2025-07-01', "
                "ST_Multi(ST_Transform(ST_Buffer(ST_SetSRID(ST_MakePoint(:x, :y), 3405), 100), 4326))"),
                {"code": f"{code}0{n}", "name": f"thon {n}", "cid": cid, "x": x + east, "y": y})
        mid = conn.execute(text(
            "INSERT INTO security_model (type_code, name, founded_on, geom) VALUES ('to_tu_quan', 'M', "
            "'2024-01-01', ST_Transform(ST_SetSRID(ST_MakePoint(:x, :y), 3405), 4326)) RETURNING id"),
            {"x": x + 1500, "y": y}).scalar()
        conn.execute(text("INSERT INTO model_rating (model_id, rating, rated_on) VALUES (:m, 'kha', "
                          "'2024-06-01')"), {"m": mid})
        lon, lat = conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM ST_Transform(ST_SetSRID("
                                     "ST_MakePoint(:x, :y), 3405), 4326) p"), {"x": x, "y": y}).one()
    return [lon, lat], code


def test_nearby_uncovered_villages(haiphong_client, make_user):
    lonlat, code = seed()
    planner = make_user("planner")
    r = haiphong_client.post("/collections/launch_points/items", headers=planner, json={
        "type": "Feature", "geometry": {"type": "Point", "coordinates": lonlat},
        "properties": {"name": "Điểm phát động", "theme": "Ngày hội 19/8", "launch_date": "2025-08-19",
                       "status": "launched"}})
    assert r.status_code == 201, r.text
    fid = r.json()["id"]
    url = f"/collections/launch_points/items/{fid}/nearby-uncovered"
    near = haiphong_client.get(url, params={"radius": 2000, "date": "2025-09-01"}, headers=planner).json()
    assert [f["id"] for f in near["features"]] == [f"{code}01"]  # 02 is covered, 03 too far
    assert 290 <= near["features"][0]["properties"]["distance_m"] <= 310  # 400 m minus the 100 m radius
    far = haiphong_client.get(url, params={"radius": 5000, "date": "2025-09-01"}, headers=planner).json()
    assert [f["id"] for f in far["features"]] == [f"{code}01", f"{code}03"]
    assert haiphong_client.get(url, params={"radius": -1}, headers=planner).status_code == 422
    assert haiphong_client.get("/collections/launch_points/items/999/nearby-uncovered",
                               headers=planner).status_code == 404


def test_launch_point_by_village_only(haiphong_client, make_user):
    _, code = seed()
    planner = make_user("planner", "commune", code)
    r = haiphong_client.post("/collections/launch_points/items", headers=planner, json={
        "type": "Feature", "geometry": None,
        "properties": {"name": "Phát động thôn 3", "theme": "ANTQ", "launch_date": "2025-08-19",
                       "status": "launched", "village_code": f"{code}03"}})
    assert r.status_code == 201, r.text
    props = r.json()["properties"]
    assert r.json()["geometry"] is None and props["village_code"] == f"{code}03"
    assert props["commune_code"] == code
    fid = r.json()["id"]
    near = haiphong_client.get(f"/collections/launch_points/items/{fid}/nearby-uncovered",
                               params={"radius": 100, "date": "2025-09-01"}, headers=planner).json()
    assert [f["id"] for f in near["features"]] == [f"{code}03"]  # measured from the village itself
    r = haiphong_client.post("/collections/launch_points/items", headers=planner, json={
        "type": "Feature", "properties": {"name": "x", "theme": "y", "launch_date": "2025-08-19",
                                          "status": "launched", "village_code": "nope"}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "properties.village_code"
