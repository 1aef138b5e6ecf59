"""Every endpoint against every role, and a committee account trying every endpoint for an
exact incident coordinate.

The matrix lists each (method, path) of the OpenAPI document; a route added without a row here
fails `test_matrix_covers_every_route`, so nobody ships an endpoint whose roles were not decided.
Writes are probed without If-Match: a role allowed to write gets 428 (it passed the role gate),
a role that is not gets 403 — so the matrix changes nothing in the database.
"""

from __future__ import annotations

import math
import re
from typing import Any

import mapbox_vector_tile
import pytest
from sqlalchemy import text

from antt.db import get_engine

ROLES = ("anon", "admin", "police", "planner", "committee", "viewer")
ALL_200 = dict.fromkeys(ROLES, 200)
AUTH_200 = {**ALL_200, "anon": 401}


def _only(statuses: dict[str, int], allowed: tuple[str, ...], yes: int, no: int = 403) -> dict[str, int]:
    return {r: 401 if r == "anon" else (yes if r in allowed else no) for r in statuses}


POINTS = ("admin", "police")
NO_JOB = "00000000-0000-4000-8000-000000000000"
PLANNING = ("admin", "planner")
PLAN_ROLES = ("admin", "committee", "planner")  # the year's plan: BCĐ 138 and its standing body
DECIDE_ROLES = ("admin", "committee")  # decisions of a review of models


def _feature(collection: str, lonlat: list[float]) -> dict[str, Any]:
    props = {
        "models": {"type_code": "to_tu_quan", "name": "Tổ mới", "founded_on": "2024-01-01"},
        "fire_groups": {"name": "Tổ liên gia mới", "households": 10, "founded_on": "2024-01-01"},
        "incidents": {"category_code": "crime/theft", "occurred_at": "2025-08-20T10:00:00"},
        "institutions": {"kind": "school", "name": "Trường mới"},
        "launch_points": {"name": "Điểm mới", "theme": "ANTQ", "launch_date": "2025-08-19",
                          "status": "launched"},
    }[collection]
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": lonlat}, "properties": props}


EDIT_ROLES = {"models": PLANNING, "fire_groups": PLANNING, "institutions": PLANNING,
              "launch_points": PLANNING, "incidents": POINTS}


def matrix(c1: str, lonlat: list[float]) -> dict[tuple[str, str], tuple[str, dict[str, Any], dict[str, int]]]:
    """(method, OpenAPI path) -> (concrete URL, request kwargs, expected status per role)."""
    m: dict[tuple[str, str], tuple[str, dict[str, Any], dict[str, int]]] = {
        ("GET", "/"): ("/", {}, ALL_200),
        ("GET", "/conformance"): ("/conformance", {}, ALL_200),
        ("GET", "/healthz"): ("/healthz", {}, ALL_200),
        ("GET", "/readyz"): ("/readyz", {}, ALL_200),
        ("POST", "/auth/token"): ("/auth/token", {}, dict.fromkeys(ROLES, 422)),
        ("POST", "/auth/logout"): ("/auth/logout", {}, dict.fromkeys(ROLES, 204)),
        ("GET", "/auth/me"): ("/auth/me", {}, AUTH_200),
        ("GET", "/layers"): ("/layers", {}, AUTH_200),
        ("GET", "/collections"): ("/collections", {}, AUTH_200),
        ("GET", "/collections/{collection_id}"): ("/collections/incidents", {}, _only(AUTH_200, POINTS, 200)),
        ("GET", "/collections/{collection_id}/items"):
            ("/collections/incidents/items", {}, _only(AUTH_200, POINTS, 200)),
        ("GET", "/collections/{collection_id}/items/{feature_id}"):
            ("/collections/incidents/items/1", {}, _only(AUTH_200, POINTS, 200)),
        ("GET", "/collections/{collection_id}/tiles/WebMercatorQuad/{z}/{x}/{y}"):
            ("/collections/incidents/tiles/WebMercatorQuad/3/6/3", {}, _only(AUTH_200, POINTS, 200)),
        ("GET", "/collections/{collection_id}/tilejson.json"):
            ("/collections/incidents/tilejson.json", {}, _only(AUTH_200, POINTS, 200)),
        ("GET", "/search"): ("/search?q=tan+ky", {}, AUTH_200),
        ("POST", "/collections/models/items/{fid}/ratings"):
            ("/collections/models/items/1/ratings", {"json": {"rating": "kha", "rated_on": "2025-01-01"}},
             _only(AUTH_200, PLANNING, 201)),
        ("GET", "/collections/launch_points/items/{fid}/nearby-uncovered"):
            ("/collections/launch_points/items/1/nearby-uncovered", {}, AUTH_200),
        ("POST", "/incidents/query"): ("/incidents/query", {"json": {}}, _only(AUTH_200, POINTS, 200)),
        ("GET", "/incidents/{category}"): ("/incidents/crime", {}, _only(AUTH_200, POINTS, 200)),
        ("GET", "/analytics/coverage/communes"): ("/analytics/coverage/communes?simplify=500", {}, AUTH_200),
        ("GET", "/analytics/coverage/villages"): ("/analytics/coverage/villages", {}, AUTH_200),
        ("GET", "/analytics/coverage/uncovered"):
            ("/analytics/coverage/uncovered?simplify=500", {}, AUTH_200),
        ("GET", "/analytics/hotspots"): (f"/analytics/hotspots?commune={c1}", {}, AUTH_200),
        ("GET", "/analytics/heatmap"): (f"/analytics/heatmap?commune={c1}&bandwidth=500", {}, AUTH_200),
        ("GET", "/analytics/heatmap.json"):
            (f"/analytics/heatmap.json?commune={c1}&bandwidth=500", {}, AUTH_200),
        ("GET", "/analytics/clusters"): (f"/analytics/clusters?commune={c1}&min_points=3", {}, AUTH_200),
        ("GET", "/analytics/trends"): (f"/analytics/trends?code={c1}", {}, AUTH_200),
        ("GET", "/analytics/same-period"): ("/analytics/same-period?province=31", {}, AUTH_200),
        ("GET", "/analytics/emerging-hotspots"):
            (f"/analytics/emerging-hotspots?commune={c1}&start=2025-06-01&end=2025-09-30", {}, AUTH_200),
        ("GET", "/units/{level}/{code}/summary"): (f"/units/commune/{c1}/summary", {}, AUTH_200),
        ("GET", "/audit"): ("/audit", {}, _only(AUTH_200, ("admin",), 200)),
        ("GET", "/exports/map"): (f"/exports/map?commune={c1}", {}, AUTH_200),
        ("GET", "/jobs"): ("/jobs", {}, AUTH_200),
        # the year's plan (issue 11): KPIs are aggregates, every role reads them in its scope;
        # writes are probed with a body that is refused after the role gate (422), so nothing is written
        ("GET", "/targets/definitions"): ("/targets/definitions", {}, AUTH_200),
        ("POST", "/targets/definitions"): ("/targets/definitions", {"json": {}},
                                           _only(AUTH_200, PLAN_ROLES, 422)),
        ("POST", "/targets/values"): ("/targets/values", {"json": {}}, _only(AUTH_200, PLAN_ROLES, 422)),
        ("GET", "/plans/{level}/{code}/{year}"): (f"/plans/commune/{c1}/2026", {}, AUTH_200),
        ("PUT", "/plans/{level}/{code}/{year}"):
            (f"/plans/commune/{c1}/2026", {"json": {"targets": {"x": 1}}}, _only(AUTH_200, PLAN_ROLES, 422)),
        ("GET", "/kpis"): ("/kpis?province=31", {}, AUTH_200),
        ("GET", "/kpis/ranking"): ("/kpis/ranking?province=31", {}, AUTH_200),
        ("GET", "/kpis/{level}/{code}"): (f"/kpis/commune/{c1}", {}, AUTH_200),
        ("POST", "/reviews"): ("/reviews", {"json": {}}, _only(AUTH_200, PLAN_ROLES, 422)),
        ("GET", "/reviews"): ("/reviews", {}, AUTH_200),
        ("GET", "/reviews/{review_id}"): ("/reviews/1", {}, {**dict.fromkeys(ROLES, 404), "anon": 401}),
        ("PUT", "/reviews/{review_id}/items/{item_id}"):
            ("/reviews/1/items/1", {"json": {}}, _only(AUTH_200, DECIDE_ROLES, 422)),
        ("POST", "/reviews/{review_id}/confirm"):
            ("/reviews/1/confirm", {}, _only(AUTH_200, DECIDE_ROLES, 404)),
        ("POST", "/reviews/{review_id}/items/{item_id}/replicas"):
            ("/reviews/1/items/1/replicas", {"json": {}}, _only(AUTH_200, PLAN_ROLES, 422)),
        ("GET", "/events"): ("/events", {}, AUTH_200),
        ("POST", "/events"): ("/events", {"json": {}}, _only(AUTH_200, PLAN_ROLES, 422)),
        ("GET", "/events/{event_id}"): ("/events/1", {}, {**dict.fromkeys(ROLES, 404), "anon": 401}),
        ("PUT", "/events/{event_id}"): ("/events/1", {"json": {}}, _only(AUTH_200, PLAN_ROLES, 422)),
        ("DELETE", "/events/{event_id}"): ("/events/1", {}, _only(AUTH_200, PLAN_ROLES, 428)),
        ("POST", "/events/import"): ("/events/import", {}, _only(AUTH_200, PLAN_ROLES, 422)),
        ("GET", "/templates/{commune}/{year}.xlsx"): (f"/templates/{c1}/2026.xlsx", {},
                                                      _only(AUTH_200, PLAN_ROLES, 200)),
        ("POST", "/templates/{commune}/{year}"):
            (f"/templates/{c1}/2026", {}, _only(AUTH_200, PLAN_ROLES, 422)),
        ("GET", "/reports/{level}/{code}.{fmt}"):
            (f"/reports/commune/{c1}.xlsx?kind=year&year=2025&maps=false", {}, AUTH_200),
        # a report job for every role in scope; probed with no format (422, no job started)
        ("POST", "/reports/{level}/{code}"): (f"/reports/commune/{c1}", {"json": {"formats": []}},
                                              {**dict.fromkeys(ROLES, 422), "anon": 401}),
        # a job's file is its owner's: nobody else's exists for the caller
        ("GET", "/reports/files/{file_id}"): (f"/reports/files/{NO_JOB}", {},
                                              {**dict.fromkeys(ROLES, 404), "anon": 401}),
    }
    # Someone else's (here: nobody's) job does not exist for the caller: 404, never 403.
    no_job = f"/jobs/{NO_JOB}"
    for method, path, url in (("GET", "/jobs/{job_id}", no_job),
                              ("GET", "/jobs/{job_id}/result", no_job + "/result"),
                              ("DELETE", "/jobs/{job_id}", no_job)):
        m[(method, path)] = (url, {}, {**dict.fromkeys(ROLES, 404), "anon": 401})
    # The planner: the tool for planners and admins; everyone signed in reads (accepted) scenarios.
    # Saving is probed with an unknown commune (422 past the role gate, nothing written).
    plan = {"scope": {"commune": c1}, "p": 1, "weights": {"incidents": 1}, "period_start": "2025-01-01"}
    m[("POST", "/planner/suggest")] = ("/planner/suggest", {"json": {**plan, "run": "direct"}},
                                       _only(AUTH_200, PLANNING, 200))
    m[("POST", "/planner/evaluate")] = ("/planner/evaluate", {"json": {**plan, "sites": [
        {"lon": lonlat[0], "lat": lonlat[1]}]}}, _only(AUTH_200, PLANNING, 200))
    m[("POST", "/planner/scenarios")] = ("/planner/scenarios", {"json": {
        "name": "x", "request": {"scope": {"commune": "99999"}}}}, _only(AUTH_200, PLANNING, 422))
    m[("GET", "/planner/scenarios")] = ("/planner/scenarios", {}, AUTH_200)
    m[("GET", "/planner/options")] = ("/planner/options", {}, AUTH_200)
    m[("GET", "/planner/scenarios/compare")] = ("/planner/scenarios/compare?a=999&b=998", {},
                                                {**dict.fromkeys(ROLES, 404), "anon": 401})
    m[("GET", "/planner/scenarios/{sid}")] = ("/planner/scenarios/999", {},
                                              {**dict.fromkeys(ROLES, 404), "anon": 401})
    for action in ("accept", "archive"):
        m[("POST", f"/planner/scenarios/{{sid}}/{action}")] = (f"/planner/scenarios/999/{action}", {},
                                                               _only(AUTH_200, PLANNING, 404))
    for collection, allowed in EDIT_ROLES.items():
        base = f"/collections/{collection}/items"
        m[("POST", base)] = (base, {"json": _feature(collection, lonlat)}, _only(AUTH_200, allowed, 201))
        for method in ("PUT", "PATCH"):
            m[(method, base + "/{fid}")] = (base + "/1", {"json": _feature(collection, lonlat)},
                                            _only(AUTH_200, allowed, 428))
        m[("DELETE", base + "/{fid}")] = (base + "/1", {}, _only(AUTH_200, allowed, 428))
    return m


@pytest.fixture
def setting(layer_client, make_user):
    with get_engine().connect() as conn:
        c1, lon, lat = conn.execute(text(
            "SELECT code, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM admin_unit "
            "WHERE level = 'commune' ORDER BY code LIMIT 1")).one()
    headers = {"anon": {}} | {role: make_user(role) for role in ROLES[1:]}
    return layer_client, headers, c1, [lon, lat]


def test_matrix_covers_every_route(setting):
    client, _, c1, lonlat = setting
    spec = client.get("/openapi.json").json()
    routes = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    assert routes == set(matrix(c1, lonlat))


def test_every_route_for_every_role(setting):
    client, headers, c1, lonlat = setting
    wrong = []
    for (method, _path), (url, kwargs, expected) in sorted(matrix(c1, lonlat).items()):
        for role in ROLES:
            r = client.request(method, url, headers=headers[role], **kwargs)
            if r.status_code != expected[role]:
                wrong.append(f"{method} {url} as {role}: {r.status_code} != {expected[role]}")
            if r.status_code >= 400:  # RFC 9457 shape, bilingual
                assert r.headers["content-type"].startswith("application/problem+json"), (method, url)
                body = r.json()
                assert body["status"] == r.status_code and body["type"] and body["title"], (method, url)
                assert body["detail_vi"] and body["detail_en"] and " / " in body["detail"], (method, url)
    assert wrong == []


# --- no exact incident coordinate for a committee account, on any endpoint ----------------------

NUMBER = re.compile(rb"-?\d{1,3}\.\d+")


def _leaks(body: bytes, points: list[tuple[float, float]], tol: float = 1e-5) -> list[tuple[float, float]]:
    """Incident points whose (lon, lat) or (lat, lon) appear as adjacent numbers in the body."""
    nums = [float(n) for n in NUMBER.findall(body)]
    found = []
    for a, b in zip(nums, nums[1:], strict=False):
        for lon, lat in points:
            if (abs(a - lon) < tol and abs(b - lat) < tol) or (abs(a - lat) < tol and abs(b - lon) < tol):
                found.append((lon, lat))
    return found


def _tile_leaks(body: bytes, z: int, x: int, y: int, points: list[tuple[float, float]]) -> list:
    found = []
    for layer in mapbox_vector_tile.decode(body).values():
        extent = layer.get("extent", 4096)
        for feature in layer["features"]:
            coords = _flatten(feature["geometry"]["coordinates"])
            for px, py in coords:
                lon = (x + px / extent) / 2**z * 360.0 - 180.0
                yy = y + 1 - py / extent  # mapbox_vector_tile flips y (origin bottom-left)
                lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * yy / 2**z))))
                found += [(lo, la) for lo, la in points if abs(lo - lon) < 1e-5 and abs(la - lat) < 1e-5]
    return found


def _flatten(c) -> list[tuple[float, float]]:
    if isinstance(c[0], (int, float)):
        return [(c[0], c[1])]
    return [p for part in c for p in _flatten(part)]


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def test_committee_never_receives_an_exact_incident_coordinate(setting, make_user):
    client, _, c1, _ = setting
    committee = make_user("committee")
    with get_engine().connect() as conn:
        points = [(r[0], r[1]) for r in conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM incident"))]
        fids = list(conn.execute(text("SELECT id FROM incident ORDER BY id")).scalars())
        village = conn.execute(text("SELECT code FROM admin_unit WHERE level = 'village' LIMIT 1")).scalar()
    assert len(points) == 13
    collections = [c["id"] for c in client.get("/collections", headers=committee).json()["collections"]]
    assert "incidents" not in collections and "incident_hexagons" in collections
    urls = ["/layers", "/collections", "/search?q=tan", "/search?q=31", f"/exports/map?commune={c1}",
            "/incidents/all", "/analytics/coverage/communes", "/analytics/coverage/villages",
            "/analytics/coverage/uncovered", f"/units/commune/{c1}/summary",
            f"/units/village/{village}/summary",
            "/collections/launch_points/items/1/nearby-uncovered?radius=20000",
            f"/analytics/trends?code={c1}&level=village", "/analytics/same-period?province=31&level=village",
            "/planner/options", "/planner/scenarios"]
    for cid in collections + ["incidents"]:
        urls += [f"/collections/{cid}", f"/collections/{cid}/items?limit=1000",
                 f"/collections/{cid}/items?limit=1000&f=csv", f"/collections/{cid}/tilejson.json"]
        urls += [f"/collections/{cid}/items/{fid}" for fid in fids]
    for cell in (250, 500):
        urls += [f"/analytics/hotspots?commune={c1}&cell={cell}",
                 f"/analytics/hotspots?commune={c1}&unit=village",
                 f"/analytics/heatmap?commune={c1}&cell={cell}&bandwidth={cell}",
                 f"/analytics/heatmap?commune={c1}&cell={cell}&bandwidth={cell}&format=contours",
                 f"/analytics/emerging-hotspots?commune={c1}&cell={cell}&start=2025-06-01&end=2025-09-30"]
    urls += [f"/analytics/clusters?commune={c1}&min_points={k}&eps={e}" for k in (1, 2, 3) for e in (10, 300)]
    leaked, statuses = [], {}
    for url in urls:
        r = client.get(url, headers=committee)
        statuses[url] = r.status_code
        assert r.status_code < 500, url
        leaked += [(url, p) for p in _leaks(r.content, points)]
    r = client.post("/incidents/query", json={"category": "all"}, headers=committee)
    assert r.status_code == 403 and not _leaks(r.content, points)
    for cid in collections + ["incidents"]:
        for z in (12, 15, 18):
            for lon, lat in points[:3] + points[-2:]:
                x, y = _tile_of(lon, lat, z)
                r = client.get(f"/collections/{cid}/tiles/WebMercatorQuad/{z}/{x}/{y}", headers=committee)
                assert r.status_code in (200, 204, 403), (cid, z)
                if r.status_code == 200:
                    leaked += [(cid, z, p) for p in _tile_leaks(r.content, z, x, y, points)]
    assert leaked == []
    # The probes really reached data: aggregates answered, point endpoints refused.
    assert statuses["/incidents/all"] == 403 and statuses["/collections/incidents/items?limit=1000"] == 403
    assert statuses[f"/analytics/hotspots?commune={c1}&cell=500"] == 200
    assert statuses[f"/analytics/clusters?commune={c1}&min_points=1&eps=10"] == 403


def test_police_do_see_the_points(setting):
    """The leak detector itself works: the police answer contains the coordinates."""
    client, headers, _, _ = setting
    with get_engine().connect() as conn:
        points = [(r[0], r[1]) for r in conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM incident"))]
    r = client.get("/incidents/all", headers=headers["police"])
    assert len(set(_leaks(r.content, points))) == 13
