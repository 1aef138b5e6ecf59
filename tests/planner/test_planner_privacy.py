"""No incident point, and no count under 3, can be learnt through the planner by a role that
sees aggregates only (QA of issue 10). Fixture: tests/planner/conftest.py — E holds 5 thefts
in the period at (20 k, 30) m from its centre, k = 0..4; M holds 2 traffic accidents.

1. Hexagon demand over a drawn polygon: a hexagon's count must be the hexagon's, whatever the
   polygon. Counting only the incidents inside the polygon's bounding box let a planner move
   one edge of the polygon across a hexagon and read, from the count changing 5 -> 4 -> 3, the
   position of every incident (on the demo: a hexagon of Thôn Bắc read 16, 35, 49, 76, 113, 135,
   140, 141 as the east edge moved by 50 m).
2. A scenario saved by a point role (admin) is shown to others without its incident figures:
   its solver block (objective, bound, weights covered and total) and the formula are weights
   too, and with "1 × incidents" they are the exact count (a committee read total_weight = 1
   for one village).
"""

from __future__ import annotations

import json

import numpy as np

from geo.planner import inputs as pin

from .conftest import ON
from .test_inputs import square
from .test_plan import PERIOD
from .test_planner_api import api, body, client_on, user  # noqa: F401 - fixtures and helpers

WEIGHT_FIELDS = ("objective", "bound", "gap", "total_weight", "fixed_weight", "covered_weight",
                 "target_weight", "reduction", "message")


def _east_edges(psite):
    """Polygons around E whose east edge lies between the thefts (x = +10, +30, +50, +70 m) and
    past them all (+300 m)."""
    cx, cy = psite.xy("E")
    return [square(cx - 400, cy - 400, cx + dx, cy + 400) for dx in (10.0, 30.0, 50.0, 70.0, 300.0)]


def test_hexagon_counts_do_not_depend_on_the_drawn_polygon(planner_engine, psite):
    scope = pin.Scope(commune_code=psite.commune_code)
    commune = pin.hexagons(planner_engine, ON, scope, 250.0, PERIOD, None)
    full = {(int(r.i), int(r.j)): int(r.incidents) for r in commune.itertuples()}
    for poly in _east_edges(psite):
        hexes = pin.hexagons(planner_engine, ON, pin.Scope(polygon=poly), 250.0, PERIOD, None)
        got = {(int(r.i), int(r.j)): int(r.incidents) for r in hexes.itertuples()}
        assert got == {k: full[k] for k in got}, poly
        assert sum(got.values()) == 5  # every cell holding a theft touches each polygon


def test_planner_reads_the_same_hexagon_counts_whatever_the_edge(api, psite):  # noqa: F811
    planner = user("planner", "province", "31")
    seen = []
    for poly in _east_edges(psite):
        payload = {**body(psite), "scope": {"polygon": json.loads(poly)}, "demand": "hexagons",
                   "weights": {"population": 1, "incidents": 100}, "run": "direct"}
        r = api.post("/planner/suggest", json=payload, headers=planner)
        assert r.status_code == 200, r.text
        units = r.json()["demand"]["units"]
        seen.append({(u["i"], u["j"]): u["incidents"] for u in units if u["incidents"]})
    assert all(s == seen[-1] for s in seen) and sum(seen[-1].values()) == 5


def test_exact_scenario_shows_no_weight_to_other_roles(api, psite):  # noqa: F811
    admin = user("admin")
    cx, cy = psite.xy("M")
    around_m = json.loads(square(cx - 450, cy - 450, cx + 450, cy + 450))
    request = {**body(psite), "scope": {"polygon": around_m},
               "weights": {"population": 0, "incidents": 1}, "radius_m": 800}
    sc = api.post("/planner/scenarios", json={"name": "M", "request": request}, headers=admin)
    assert sc.status_code == 201, sc.text
    sid = sc.json()["id"]
    assert sc.json()["solver"]["total_weight"] == 2.0  # the admin sees M's 2 accidents
    assert api.post(f"/planner/scenarios/{sid}/accept", json={}, headers=admin).status_code == 200
    for role, scope in (("committee", ("province", "31")), ("viewer", ("all", None)),
                        ("planner", ("province", "31")), ("police", ("all", None))):
        h = user(role, *scope)
        one = api.get(f"/planner/scenarios/{sid}", headers=h).json()
        listed = [s for s in api.get("/planner/scenarios", headers=h).json()["scenarios"] if s["id"] == sid]
        both = api.get(f"/planner/scenarios/compare?a={sid}&b={sid}", headers=h).json()
        for doc in (one, listed[0], both["a"], both["b"]):
            if role == "police":  # sees points: nothing hidden
                assert not doc["redacted"] and doc["solver"]["total_weight"] == 2.0
                continue
            assert doc["redacted"]
            assert not set(WEIGHT_FIELDS) & set(doc["solver"]), (role, doc["solver"])
            assert doc["parameters"]["weights"] is None and doc["parameters"]["formula"] is None
            assert doc["solver"]["status"] == "optimal"  # what was solved, and how, stays
        assert np.all([f["properties"]["gain"] is None for f in one["features"]]) or role == "police"


# --- huge grids are refused before any work starts ------------------------------------------

VIETNAM_BOX = {"type": "Polygon", "coordinates": [[[102.5, 8.5], [117.5, 8.5], [117.5, 23.0], [102.5, 23.0],
                                                   [102.5, 8.5]]]}


def test_huge_hexagon_grids_are_refused_naming_the_field(api, psite, monkeypatch):  # noqa: F811
    """A drawn polygon the size of Vietnam with 50 m hexagons (allowed to point roles) is ~2.6e8
    cells of demand or of candidates: the API must refuse it (413, the field named) before a job
    or a query starts, not hand it to a worker (the analytics refuse grids over 250,000 cells)."""
    import api.planner as ap

    started = []
    monkeypatch.setattr(ap.jobs, "submit", lambda *a, **k: started.append(a) or "0" * 32)
    monkeypatch.setattr(ap.jobs, "run_direct", lambda *a, **k: started.append(a) or {"features": []})
    admin = user("admin")
    vn = {"polygon": VIETNAM_BOX}
    cases = [({"scope": vn, "demand": "hexagons", "cell_m": 50, "run": "job"}, "cell_m"),
             ({"scope": vn, "demand": "hexagons", "cell_m": 250, "run": "direct"}, "cell_m"),
             ({"scope": vn, "run": "job", "candidates": {"kinds": ["drawn"], "polygons": [VIETNAM_BOX],
                                                         "cell_m": 50}}, "candidates.cell_m")]
    for change, field in cases:
        r = api.post("/planner/suggest", json=body(psite, **change), headers=admin)
        assert r.status_code == 413, (change, r.status_code, r.text[:300])
        assert [e["field"] for e in r.json()["errors"]] == [field]
        assert r.json()["detail_vi"] and r.json()["detail_en"] and r.json()["limit"] == ap.MAX_PLAN_CELLS
        ev = {**{k: v for k, v in body(psite, **change).items() if k != "run"},
              "sites": [{"lon": 106.7, "lat": 20.8}]}
        assert api.post("/planner/evaluate", json=ev, headers=admin).status_code == 413
    assert started == []
    # a commune's 250 m grid and 250 m candidates inside it still run
    fine = body(psite, demand="hexagons", run="direct")
    r = api.post("/planner/suggest", json=fine, headers=admin)
    assert r.status_code == 200 and len(started) == 1
