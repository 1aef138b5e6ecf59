"""/planner over HTTP: roles, scopes, bad input (422 naming the field), jobs, scenarios, and
accepting a scenario changes the coverage analytics by exactly what it said.

Data: the hand-built fixture (tests/planner/conftest.py) and, for one end-to-end check, the
Hải Phòng demo (the same session template as tests/demo)."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from pgtemplates import build_template
from pyproj import Transformer
from sqlalchemy import text

from antt.accounts import create_user
from antt.db import get_engine
from antt.settings import get_settings
from geo import coverage

from .conftest import ON
from .test_inputs import square

TO_LONLAT = Transformer.from_crs(3405, 4326, always_xy=True)
SECRET = "antt-test-signing-key-planner-tests-0123456789"
_seq = itertools.count(1)


def _reset() -> None:
    get_settings.cache_clear()
    try:
        get_engine().dispose()
    except Exception:  # noqa: BLE001 - nothing to dispose when no URL was ever set
        pass
    get_engine.cache_clear()


@pytest.fixture
def client_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], TestClient]]:
    clients: list[TestClient] = []

    def make(url: str) -> TestClient:
        from api.app import create_app

        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("ANTT_SECRET_KEY", SECRET)
        _reset()
        client = TestClient(create_app())
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()
    _reset()


def user(role: str, level: str = "all", code: str | None = None) -> dict[str, str]:
    from api.deps import issue_token

    with get_engine().begin() as conn:
        account = create_user(conn, f"{role}_{next(_seq)}", "mat-khau-thu-nghiem", role, level, code,
                              replace=True)
    return {"Authorization": f"Bearer {issue_token(account)}"}


@pytest.fixture
def api(client_on, planner_url) -> TestClient:
    return client_on(planner_url)


def body(psite, **kw) -> dict:
    base = {"scope": {"commune": psite.commune_code}, "date": ON.isoformat(), "p": 1, "radius_m": 800,
            "weights": {"population": 1, "incidents": 100, "no_model": 1000},
            "period_start": "2025-11-01", "period_end": ON.isoformat(),
            "candidates": {"kinds": ["villages"]}, "solver": "exact"}
    return {**base, **kw}


def errors(r) -> list[str]:
    assert r.headers["content-type"].startswith("application/problem+json"), r.text
    return [e["field"] for e in r.json().get("errors", [])]


# --- roles and scopes -----------------------------------------------------------------------

def test_roles(api, psite):
    for role in ("committee", "viewer", "police"):
        h = user(role)
        assert api.post("/planner/suggest", json=body(psite), headers=h).status_code == 403
        ev = {**body(psite), "sites": [{"lon": 107.0, "lat": 20.8}]}
        assert api.post("/planner/evaluate", json=ev, headers=h).status_code == 403
        save = {"name": "x", "request": body(psite)}
        assert api.post("/planner/scenarios", json=save, headers=h).status_code == 403
        assert api.get("/planner/options", headers=h).json()["tool"] is False
    for role in ("planner", "admin"):
        r = api.post("/planner/suggest", json=body(psite), headers=user(role))
        assert r.status_code == 200, r.text
        assert r.json()["features"][0]["properties"]["name"] == "Thôn E"
    assert api.post("/planner/suggest", json=body(psite)).status_code == 401


def test_scopes(api, psite):
    own = user("planner", "commune", psite.commune_code)
    other = user("planner", "commune", "10507")
    province = user("planner", "province", "31")
    assert api.post("/planner/suggest", json=body(psite), headers=own).status_code == 200
    r = api.post("/planner/suggest", json=body(psite), headers=other)
    assert r.status_code == 403 and errors(r) == ["scope.commune"]
    # no scope given: the account's own unit
    r = api.post("/planner/suggest", json=body(psite, scope={}), headers=own)
    assert r.status_code == 200 and r.json()["inputs"]["communes"] == [psite.commune_code]
    r = api.post("/planner/suggest", json=body(psite, scope={"province": "31"}), headers=own)
    assert r.status_code == 403 and errors(r) == ["scope.province"]
    # a polygon reaching outside a commune-scoped account's commune: 422 naming it
    big = json.loads(square(psite.cx - 20000, psite.cy - 20000, psite.cx + 20000, psite.cy + 20000))
    r = api.post("/planner/suggest", json=body(psite, scope={"polygon": big}), headers=own)
    assert r.status_code == 422 and errors(r) == ["scope.polygon"]
    inside = json.loads(square(psite.cx - 2900, psite.cy - 2900, psite.cx + 2900, psite.cy + 2900))
    for h in (own, province):
        r = api.post("/planner/suggest", json=body(psite, scope={"polygon": inside}), headers=h)
        assert r.status_code == 200 and r.json()["inputs"]["villages"] == 4
    lon, lat = TO_LONLAT.transform(psite.cx + 30000, psite.cy)
    drawn = {"kinds": ["drawn"], "points": [{"lon": lon, "lat": lat}]}
    r = api.post("/planner/suggest", json=body(psite, candidates=drawn), headers=own)
    assert r.status_code == 422 and errors(r) == ["candidates.points.0"]


# --- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "field"), [
    ({"p": 0}, "p"), ({"p": -3}, "p"), ({"p": 5}, "p"),  # 4 candidates
    ({"radius_m": 0}, "radius_m"), ({"radius_m": -10}, "radius_m"), ({"radius_m": 1e6}, "radius_m"),
    ({"demand": "hexagons", "cell_m": 100}, "cell_m"), ({"model_type": "khong_co"}, "model_type"),
    ({"date": "2099-01-01"}, "date"), ({"category": "crimes"}, "category"),
    ({"weights": {"population": 0}}, "weights"), ({"time_limit": 0}, "time_limit"),
    ({"scope": {"commune": "99999"}}, "scope.commune"),
    ({"scope": {"commune": "11914", "province": "31"}}, "scope"),
    ({"problem": "lscp", "candidates": {"kinds": ["institutions"]}}, "share"),
])
def test_bad_input_names_the_field(api, psite, change, field):
    r = api.post("/planner/suggest", json=body(psite, **change), headers=user("planner", "province", "31"))
    assert r.status_code == 422, r.text
    assert errors(r) == [field]
    assert r.json()["detail_vi"] and r.json()["detail_en"]


def test_polygon_problems(api, psite):
    h = user("planner", "province", "31")
    bow = {"type": "Polygon", "coordinates": [[[107.0, 20.8], [107.01, 20.81], [107.01, 20.8], [107.0, 20.81],
                                               [107.0, 20.8]]]}
    r = api.post("/planner/suggest", json=body(psite, scope={"polygon": bow}), headers=h)
    assert r.status_code == 422 and errors(r) == ["scope.polygon"]
    assert "Self-intersection" in r.json()["detail_en"]
    open_ring = {"type": "Polygon", "coordinates": [[[107.0, 20.8], [107.01, 20.81], [107.0, 20.81]]]}
    r = api.post("/planner/suggest", json=body(psite, scope={"polygon": open_ring}), headers=h)
    assert errors(r) == ["scope.polygon.coordinates"]
    outside_vn = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    r = api.post("/planner/suggest", json=body(psite, scope={"polygon": outside_vn}), headers=h)
    assert r.status_code == 422
    empty = json.loads(square(psite.cx + 1200, psite.cy - 1400, psite.cx + 1800, psite.cy - 800))
    r = api.post("/planner/suggest", json=body(psite, scope={"polygon": empty}), headers=h)
    assert r.status_code == 422 and errors(r) == ["scope"]  # no village: no demand


def test_lscp_unreachable_villages_are_listed(api, psite):
    r = api.post("/planner/suggest", json=body(psite, problem="lscp", candidates={"kinds": ["institutions"]}),
                 headers=user("planner"))
    assert r.status_code == 422 and errors(r) == ["share"]
    assert [v["name"] for v in r.json()["unreachable_villages"]] == ["Thôn N"]
    share = body(psite, problem="lscp", share=0.8, candidates={"kinds": ["institutions"]})
    ok = api.post("/planner/suggest", json=share, headers=user("planner"))
    assert ok.status_code == 200 and ok.json()["solver"]["objective"] == 2


# --- jobs -----------------------------------------------------------------------------------

TIMINGS = {"time_s", "phases", "built_s"}


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def test_job_result_equals_the_direct_call(api, psite):
    from antt import jobs

    h = user("planner", "province", "31")
    direct = api.post("/planner/suggest", json={**body(psite, p=2), "run": "direct"}, headers=h)
    assert direct.status_code == 200
    started = api.post("/planner/suggest", json={**body(psite, p=2), "run": "job"}, headers=h)
    assert started.status_code == 202 and started.headers["location"].startswith("/jobs/")
    state = jobs.wait(get_engine(), started.json()["id"], 120)
    assert state.status == "done" and state.progress == 1.0
    result = api.get(f"/jobs/{started.json()['id']}/result", headers=h)
    assert _strip(result.json()) == _strip(direct.json())
    # a province runs as a job by default; its error is the direct call's 422, stored
    auto = api.post("/planner/suggest", json=body(psite, p=2, scope={"province": "31"}), headers=h)
    assert auto.status_code == 202
    bad = api.post("/planner/suggest", json={**body(psite, p=50), "run": "job"}, headers=h)
    failed = jobs.wait(get_engine(), bad.json()["id"], 120)
    assert failed.status == "failed" and failed.error["field"] == "p"


# --- scenarios ------------------------------------------------------------------------------

def test_save_accept_as_models_changes_analytics_exactly(api, psite):
    h = user("planner", "province", "31")
    committee = user("committee", "province", "31")
    saved = api.post("/planner/scenarios", json={"name": "Phương án 1", "request": body(psite, p=2)},
                     headers=h)
    assert saved.status_code == 201, saved.text
    sc = saved.json()
    assert sc["status"] == "draft"
    assert [f["properties"]["name"] for f in sc["features"]] == ["Thôn E", "Thôn M"]
    assert api.get(f"/planner/scenarios/{sc['id']}", headers=committee).status_code == 404  # drafts hidden
    assert api.get("/planner/scenarios", headers=committee).json()["numberReturned"] == 0
    before = sc["figures"]["before"]
    with get_engine().connect() as conn:
        com = coverage.commune_coverage(conn, ON, radius_m=800, commune_code=psite.commune_code)
    assert float(com["population_within_r"].iloc[0]) == pytest.approx(before["population_within_r"], rel=1e-9)
    r = api.post(f"/planner/scenarios/{sc['id']}/accept",
                 json={"as": "models", "type_code": "to_tu_quan", "founded_on": ON.isoformat()}, headers=h)
    assert r.status_code == 200, r.text
    created = r.json()["created"]["items"]
    assert [c["village_id"] for c in created] == [psite.villages["E"], psite.villages["M"]]
    after = sc["figures"]["after"]
    with get_engine().connect() as conn:
        com = coverage.commune_coverage(conn, ON, radius_m=800, commune_code=psite.commune_code)
        vil = coverage.village_coverage(conn, ON, coverage.CoverageRule(min_rating=None),
                                        commune_code=psite.commune_code)
        within = conn.execute(text("""
            SELECT count(*) FROM admin_unit v WHERE v.level = 'village' AND v.parent_id = :c AND EXISTS (
                SELECT 1 FROM security_model m WHERE m.status = 'active' AND m.founded_on <= :on
                  AND ST_DWithin(ST_Transform(m.geom, 3405),
                                 ST_Transform(ST_PointOnSurface(v.geom), 3405), 800))"""),
                              {"c": psite.commune_id, "on": ON}).scalar_one()
        audit = conn.execute(text("SELECT action, entity FROM audit_log WHERE entity IN ('models', "
                                  "'planner_scenarios') ORDER BY id")).all()
    assert float(com["population_within_r"].iloc[0]) == pytest.approx(after["population_within_r"], rel=1e-9)
    assert float(com["population_within_r"].iloc[0]) == pytest.approx(7000.0, rel=1e-9)
    assert int(vil["covered"].sum()) == after["villages_hosting_model"] == 3
    assert within == after["villages_within_r"] == 3
    assert [tuple(a) for a in audit] == [("create", "planner_scenarios"), ("create", "models"),
                                         ("create", "models"), ("accept", "planner_scenarios")]
    # accepted: read-only roles now see it; a second accept is a conflict
    assert api.get(f"/planner/scenarios/{sc['id']}", headers=committee).json()["status"] == "accepted"
    assert api.post(f"/planner/scenarios/{sc['id']}/accept", json={}, headers=h).status_code == 409


def test_accept_as_launch_points(api, psite):
    h = user("planner", "province", "31")
    sites = [{"lon": lon, "lat": lat, "name": name} for (lon, lat), name in
             [(TO_LONLAT.transform(*psite.xy("N", 100, 0)), "Gần thôn N")]]
    sc = api.post("/planner/scenarios", json={"name": "Tay", "request": body(psite, model_type="to_tu_quan"),
                                              "sites": sites}, headers=h).json()
    assert sc["solver"] is None and sc["features"][0]["properties"]["name"] == "Gần thôn N"
    r = api.post(f"/planner/scenarios/{sc['id']}/accept",
                 json={"as": "launch_points", "launch_date": "2027-01-15", "theme": "Ngày hội"}, headers=h)
    assert r.status_code == 200
    lp_id = r.json()["created"]["items"][0]["id"]
    with get_engine().connect() as conn:
        lp = conn.execute(text("SELECT status, theme, launch_date, created_by, village_id, model_type_code, "
                               "ST_X(geom) AS lon FROM launch_point WHERE id = :i"), {"i": lp_id}).one()
    assert (lp.status, lp.theme, str(lp.launch_date)) == ("planned", "Ngày hội", "2027-01-15")
    assert lp.model_type_code == "to_tu_quan"
    assert lp.village_id == psite.villages["N"] and lp.lon == sites[0]["lon"]
    item = api.get(f"/collections/launch_points/items/{lp_id}", headers=h)
    assert item.status_code == 200 and item.json()["properties"]["status"] == "planned"


def test_compare_and_archive(api, psite):
    h = user("planner", "province", "31")
    a = api.post("/planner/scenarios", json={"name": "A", "request": body(psite, p=1)}, headers=h).json()
    b = api.post("/planner/scenarios", json={"name": "B", "request": body(psite, p=2)}, headers=h).json()
    cmp = api.get(f"/planner/scenarios/compare?a={a['id']}&b={b['id']}", headers=h).json()
    assert cmp["after_b_minus_a"]["villages_within_r"] == 1  # + M
    assert cmp["after_b_minus_a"]["population_within_r"] == pytest.approx(2000.0, rel=1e-9)
    assert cmp["sites_in_both"] == ["Thôn E"]
    assert api.post(f"/planner/scenarios/{a['id']}/archive", headers=h).json()["status"] == "archived"
    assert api.post(f"/planner/scenarios/{a['id']}/accept", json={}, headers=h).status_code == 409
    listed = api.get("/planner/scenarios?status=draft", headers=h).json()
    assert [s["name"] for s in listed["scenarios"]] == ["B"]


def test_committee_learns_no_incident_point(api, psite):
    """Every planner endpoint a committee account can reach, after an admin (exact counts) and
    a planner saved and accepted scenarios: no incident coordinate, and no incident figure from
    the admin's exact counts."""
    admin, planner = user("admin"), user("planner", "province", "31")
    ids = []
    for h in (admin, planner):
        sc = api.post("/planner/scenarios", json={"name": "x", "request": body(psite, p=2)}, headers=h).json()
        assert api.post(f"/planner/scenarios/{sc['id']}/accept", json={}, headers=h).status_code == 200
        ids.append(sc["id"])
    committee = user("committee", "province", "31")
    texts = [api.get("/planner/options", headers=committee).text,
             api.get("/planner/scenarios", headers=committee).text,
             api.get(f"/planner/scenarios/compare?a={ids[0]}&b={ids[1]}", headers=committee).text]
    exact, public = (api.get(f"/planner/scenarios/{i}", headers=committee).json() for i in ids)
    texts += [json.dumps(exact), json.dumps(public)]
    for path, payload in [("/planner/suggest", body(psite)),
                          ("/planner/evaluate", {**body(psite), "sites": [{"lon": 107.0, "lat": 20.8}]})]:
        r = api.post(path, json=payload, headers=committee)
        assert r.status_code == 403
        texts.append(r.text)
    with get_engine().connect() as conn:
        points = conn.execute(text("SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat FROM incident")).all()
    numbers = {round(float(n), 6) for t in texts for n in re.findall(r"-?\d+\.\d{6,}", t)}
    assert numbers  # the scenarios' sites are there
    for p in points:
        assert round(p.lon, 6) not in numbers or round(p.lat, 6) not in numbers
    # the admin's scenario (exact counts: M's 2 accidents) is shown without incident figures/gains
    assert exact["redacted"] and "incidents" not in exact["figures"]["after"]
    assert all(f["properties"]["gain"] is None for f in exact["features"])
    assert exact["parameters"]["weights"] is None
    # the planner's (counts under 3 as 0) keeps them: they reveal no small count
    assert not public["redacted"] and public["figures"]["after"]["incidents_in_villages_within_r"] == 5


# --- the Hải Phòng demo ---------------------------------------------------------------------

def _build_demo(url: str) -> None:
    from data.demo import build_haiphong_demo

    build_haiphong_demo(url, until=ON)


@pytest.fixture
def demo_api(client_on, clone_db, pg_admin_url, haiphong_template) -> TestClient:
    template = build_template(pg_admin_url, "tmpl_demo_hp_b", _build_demo, base=haiphong_template)
    return client_on(clone_db(template))


def test_demo_province_round_trip_and_accept(demo_api):
    from antt import jobs

    h = user("planner", "province", "31")
    req = {"scope": {"province": "31"}, "date": ON.isoformat(), "p": 8, "radius_m": 500,
           "weights": {"population": 1, "incidents": 20, "no_model": 2000},
           "candidates": {"kinds": ["villages", "institutions", "launch_points"]}, "time_limit": 20}
    started = demo_api.post("/planner/suggest", json=req, headers=h)
    assert started.status_code == 202
    state = jobs.wait(get_engine(), started.json()["id"], 300)
    assert state.status == "done", state.error
    result = demo_api.get(f"/jobs/{started.json()['id']}/result", headers=h).json()
    assert result["numberReturned"] == 8 and result["solver"]["status"] in ("optimal", "within_gap")
    assert result["figures"]["after"]["villages_within_r"] > result["figures"]["before"]["villages_within_r"]
    assert all(not (0 < u["incidents"] < 3) for u in result["demand"]["units"])  # a planner: suppressed
    sc = demo_api.post("/planner/scenarios", json={"name": "Hải Phòng", "request": req}, headers=h).json()
    assert [f["geometry"]["coordinates"] for f in sc["features"]] == \
        [f["geometry"]["coordinates"] for f in result["features"]]
    r = demo_api.post(f"/planner/scenarios/{sc['id']}/accept",
                      json={"as": "models", "type_code": "to_tu_quan", "founded_on": ON.isoformat()},
                      headers=h)
    assert r.status_code == 200
    with get_engine().connect() as conn:
        com = coverage.commune_coverage(conn, ON, radius_m=500, province_code="31")
        vil = coverage.village_coverage(conn, ON, coverage.CoverageRule(min_rating=None), province_code="31")
    after = sc["figures"]["after"]
    total = float(com["population_within_r"].astype(float).sum())
    assert total == pytest.approx(after["population_within_r"], rel=1e-9)
    assert int(vil["covered"].sum()) == after["villages_hosting_model"]
