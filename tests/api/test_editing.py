"""Editing: create/replace/patch/delete with ETag and If-Match, validation (422 naming the field),
roles and scope (403), ratings as events, and the audit row in the same transaction."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from antt.db import get_engine


def point_in(code: str) -> list[float]:
    """A point surely inside commune CODE (PointOnSurface of its polygon)."""
    with get_engine().connect() as conn:
        row = conn.execute(text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM admin_unit "
            "WHERE level = 'commune' AND code = :c) s"), {"c": code}).one()
    return [row[0], row[1]]


def two_communes() -> tuple[str, str]:
    with get_engine().connect() as conn:
        codes = conn.execute(text(
            "SELECT code FROM admin_unit WHERE level = 'commune' ORDER BY code LIMIT 2")).scalars().all()
    return codes[0], codes[1]


def model_feature(lonlat: list[float], **props) -> dict:
    base = {"type_code": "to_tu_quan", "name": "Tổ tự quản số 1", "founded_on": "2024-03-01"}
    base.update(props)
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": lonlat},
            "properties": base}


def audit_rows(entity: str) -> list:
    with get_engine().connect() as conn:
        return conn.execute(text("SELECT action, entity_id, before, after, username FROM audit_log "
                                 "WHERE entity = :e ORDER BY id"), {"e": entity}).all()


def test_create_replace_patch_delete_with_etags(haiphong_client, make_user):
    c1, _ = two_communes()
    planner = make_user("planner", "province", "31")
    client = haiphong_client
    r = client.post("/collections/models/items", json=model_feature(point_in(c1)), headers=planner)
    assert r.status_code == 201, r.text
    fid = r.json()["id"]
    assert r.headers["ETag"] == 'W/"1"'
    assert r.headers["Location"] == f"/collections/models/items/{fid}"
    assert r.json()["properties"]["commune_code"] == c1

    # Missing If-Match -> 428; stale -> 412; current -> 200 and version 2.
    body = model_feature(point_in(c1), name="Tổ tự quản đổi tên")
    r = client.put(f"/collections/models/items/{fid}", json=body, headers=planner)
    assert r.status_code == 428 and r.headers["content-type"].startswith("application/problem+json")
    r = client.put(f"/collections/models/items/{fid}", json=body, headers={**planner, "If-Match": 'W/"7"'})
    assert r.status_code == 412, r.text
    r = client.put(f"/collections/models/items/{fid}", json=body, headers={**planner, "If-Match": 'W/"1"'})
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == 'W/"2"' and r.json()["properties"]["name"] == "Tổ tự quản đổi tên"
    # A second writer still holding version 1 is refused: no silent overwrite.
    r = client.patch(f"/collections/models/items/{fid}", json={"type": "Feature", "properties":
                     {"status": "suspended"}}, headers={**planner, "If-Match": 'W/"1"'})
    assert r.status_code == 412
    r = client.patch(f"/collections/models/items/{fid}", json={"type": "Feature", "properties":
                     {"status": "suspended", "status_since": "2025-01-02"}},
                     headers={**planner, "If-Match": 'W/"2"'})
    assert r.status_code == 200, r.text
    props = r.json()["properties"]
    assert props["status"] == "suspended" and props["name"] == "Tổ tự quản đổi tên"
    assert props["version"] == 3 and r.json()["geometry"]["coordinates"] == pytest.approx(point_in(c1))

    r = client.delete(f"/collections/models/items/{fid}", headers={**planner, "If-Match": 'W/"2"'})
    assert r.status_code == 412
    r = client.delete(f"/collections/models/items/{fid}", headers={**planner, "If-Match": 'W/"3"'})
    assert r.status_code == 204
    r = client.delete(f"/collections/models/items/{fid}", headers={**planner, "If-Match": 'W/"3"'})
    assert r.status_code == 404

    rows = audit_rows("models")
    assert [a.action for a in rows] == ["create", "update", "update", "delete"]
    assert rows[1].before["properties"]["name"] == "Tổ tự quản số 1"
    assert rows[1].after["properties"]["name"] == "Tổ tự quản đổi tên"
    assert rows[3].after is None and rows[3].before["properties"]["version"] == 3
    assert {a.username for a in rows} == {rows[0].username}


@pytest.mark.parametrize(("mutate", "field"), [
    ({"founded_on": "2999-01-01"}, "properties.founded_on"),
    ({"type_code": "khong_co"}, "properties.type_code"),
    ({"status": "sleeping"}, "properties.status"),
    ({"name": ""}, "properties.name"),
])
def test_invalid_properties_give_bilingual_422_naming_the_field(haiphong_client, make_user, mutate, field):
    c1, _ = two_communes()
    admin = make_user("admin")
    r = haiphong_client.post("/collections/models/items", json=model_feature(point_in(c1), **mutate),
                             headers=admin)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert field in [e["field"] for e in problem["errors"]]
    assert problem["detail_vi"] and problem["detail_en"] and problem["detail_vi"] != problem["detail_en"]
    assert audit_rows("models") == []


@pytest.mark.parametrize(("lonlat", "why"), [
    ([2.35, 48.85], "outside Vietnam"),
    ([108.3, 15.0], "in Vietnam but in no loaded commune"),
])
def test_point_outside_vietnam_or_communes_is_422_on_geometry(haiphong_client, make_user, lonlat, why):
    r = haiphong_client.post("/collections/models/items", json=model_feature(lonlat),
                             headers=make_user("admin"))
    assert r.status_code == 422, why
    assert [e["field"] for e in r.json()["errors"]] == ["geometry"]


def test_roles_and_scope(haiphong_client, make_user):
    c1, c2 = two_communes()
    client = haiphong_client
    for role in ("committee", "viewer", "police"):
        r = client.post("/collections/models/items", json=model_feature(point_in(c1)),
                        headers=make_user(role))
        assert r.status_code == 403, role
    scoped = make_user("planner", "commune", c1)
    r = client.post("/collections/models/items", json=model_feature(point_in(c2)), headers=scoped)
    assert r.status_code == 403
    assert [e["field"] for e in r.json()["errors"]] == ["geometry"]
    r = client.post("/collections/models/items", json=model_feature(point_in(c1)), headers=scoped)
    assert r.status_code == 201
    fid = r.json()["id"]
    # Moving it out of scope is refused, and so is editing it from another commune's account.
    r = client.put(f"/collections/models/items/{fid}", json=model_feature(point_in(c2)),
                   headers={**scoped, "If-Match": 'W/"1"'})
    assert r.status_code == 403
    other = make_user("planner", "commune", c2)
    r = client.delete(f"/collections/models/items/{fid}", headers={**other, "If-Match": 'W/"1"'})
    assert r.status_code == 403 and r.json()["errors"][0]["field"] == "featureId"
    r = client.post("/collections/models/items", json=model_feature(point_in(c1)),
                    headers={"Authorization": "Bearer nonsense"})
    assert r.status_code == 401


def test_incidents_by_police_and_future_dates(haiphong_client, make_user):
    c1, _ = two_communes()
    police = make_user("police")
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": point_in(c1)},
               "properties": {"category_code": "crime/theft", "occurred_at": "2024-05-02T21:15:00",
                              "youth_involved": True}}
    r = haiphong_client.post("/collections/incidents/items", json=feature, headers=police)
    assert r.status_code == 201, r.text
    props = r.json()["properties"]
    # Naive times are Vietnamese local time; before the 2025 map the current commune is used.
    assert props["occurred_at"].startswith("2024-05-02T14:15:00") and props["commune_code"] == c1
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat()
    feature["properties"]["occurred_at"] = tomorrow
    r = haiphong_client.post("/collections/incidents/items", json=feature, headers=police)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "properties.occurred_at"
    feature["properties"].update(occurred_at="2024-05-02T21:15:00", category_code="crime/unknown")
    r = haiphong_client.post("/collections/incidents/items", json=feature, headers=police)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "properties.category_code"
    r = haiphong_client.post("/collections/incidents/items", json=feature, headers=make_user("planner"))
    assert r.status_code == 403


def test_ratings_are_events(haiphong_client, make_user):
    c1, _ = two_communes()
    planner = make_user("planner")
    fid = haiphong_client.post("/collections/models/items", json=model_feature(point_in(c1)),
                               headers=planner).json()["id"]
    for rating, day in (("kha", "2024-06-01"), ("tot", "2025-01-10")):
        r = haiphong_client.post(f"/collections/models/items/{fid}/ratings",
                                 json={"rating": rating, "rated_on": day, "note": "kiểm tra"},
                                 headers=planner)
        assert r.status_code == 201, r.text
    r = haiphong_client.post(f"/collections/models/items/{fid}/ratings",
                             json={"rating": "kha", "rated_on": "2020-01-01"}, headers=planner)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "rated_on"
    r = haiphong_client.post(f"/collections/models/items/{fid}/ratings",
                             json={"rating": "great", "rated_on": "2024-01-01"}, headers=planner)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "rating"
    with get_engine().connect() as conn:
        ratings = conn.execute(text("SELECT rating FROM model_rating WHERE model_id = :m ORDER BY rated_on"),
                               {"m": fid}).scalars().all()
        version = conn.execute(text("SELECT version FROM security_model WHERE id = :m"), {"m": fid}).scalar()
    assert ratings == ["kha", "tot"] and version == 1
    assert [a.action for a in audit_rows("models")] == ["create", "rate", "rate"]


def test_launch_point_planned_in_future_only(haiphong_client, make_user):
    c1, _ = two_communes()
    planner = make_user("planner")
    future = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": point_in(c1)},
               "properties": {"name": "Trường THCS", "theme": "Ngày hội 19/8", "launch_date": future}}
    r = haiphong_client.post("/collections/launch_points/items", json=feature, headers=planner)
    assert r.status_code == 201, r.text
    assert r.json()["properties"]["created_by"]
    feature["properties"]["status"] = "launched"
    r = haiphong_client.post("/collections/launch_points/items", json=feature, headers=planner)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "properties.launch_date"
    r = haiphong_client.post("/collections/launch_points/items",
                             json={"type": "Feature", "geometry": None, "properties": {
                                 "name": "x", "theme": "y", "launch_date": "2025-01-01"}}, headers=planner)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "geometry"
