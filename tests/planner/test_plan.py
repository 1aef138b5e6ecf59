"""geo.planner.plan (suggest, evaluate) on the hand-built fixture (tests/planner/conftest.py).

R = 800 m: MW (at W's centre) reaches W only. Planner weights (1 x population + 100 x
incidents + 1000 x no model, counts under 3 as 0): W 1000 (already covered), M 3000, E 5500,
N 1500. Village candidates: p=1 -> E (5500); p=2 -> E, M (8500); p=3 -> E, M, N (10000).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from pyproj import Transformer
from sqlalchemy import text

from geo.filters import IncidentFilter
from geo.planner import inputs as pin
from geo.planner import plan as gpl

from .conftest import ON
from .test_inputs import square

PERIOD = IncidentFilter(start=dt.date(2025, 11, 1), end=ON)
WEIGHTS = pin.WeightFormula(population=1, incidents=100, no_model=1000)
TO_LONLAT = Transformer.from_crs(3405, 4326, always_xy=True)


def request(psite, **kw) -> gpl.PlanRequest:
    base = dict(scope=pin.Scope(commune_code=psite.commune_code), on=ON, p=1, radius_m=800.0,
                weights=WEIGHTS, period=PERIOD, candidates=pin.CandidateRequest(kinds=("villages",)),
                solver="exact")
    return gpl.PlanRequest(**{**base, **kw})


@pytest.mark.parametrize(("p", "names", "gains"), [
    (1, ["Thôn E"], [5500.0]), (2, ["Thôn E", "Thôn M"], [5500.0, 3000.0]),
    (3, ["Thôn E", "Thôn M", "Thôn N"], [5500.0, 3000.0, 1500.0])])
def test_mclp_by_hand(planner_engine, psite, p, names, gains):
    out = gpl.suggest(planner_engine, request(psite, p=p))
    assert [s["name"] for s in out["sites"]] == names
    assert [s["gain"] for s in out["sites"]] == gains
    assert [s["villages"][0]["name"] for s in out["sites"]] == names  # each brings its own village
    sol = out["solver"]
    assert sol["status"] == "optimal" and sol["objective"] == sum(gains)
    assert sol["fixed_weight"] == 1000.0 and sol["total_weight"] == 11000.0
    assert out["demand"]["total_weight"] == 11000.0
    # units in code order (E, M, N, W) with the formula's weights
    assert [(u["name"], u["weight"]) for u in out["demand"]["units"]] == [
        ("Thôn E", 5500.0), ("Thôn M", 3000.0), ("Thôn N", 1500.0), ("Thôn W", 1000.0)]


def test_figures_by_hand(planner_engine, psite):
    out = gpl.suggest(planner_engine, request(psite, p=1))
    before, after = out["figures"]["before"], out["figures"]["after"]
    assert before["villages"] == after["villages"] == 4
    assert (before["villages_within_r"], after["villages_within_r"]) == (1, 2)  # W; W and E
    assert (before["villages_hosting_model"], after["villages_hosting_model"]) == (1, 2)
    assert before["population"] == 7500.0
    assert before["population_in_villages_within_r"] == 1000
    assert after["population_in_villages_within_r"] == 5000
    # each village square lies wholly inside the 800 m circle of its centre: areal = whole villages
    assert before["population_within_r"] == pytest.approx(1000.0, rel=1e-9)
    assert after["population_within_r"] == pytest.approx(5000.0, rel=1e-9)
    # incidents with counts under 3 as 0 (M's two traffic accidents): 5 thefts in E only
    assert before["incidents"] == 5
    assert (before["incidents_in_villages_within_r"], after["incidents_in_villages_within_r"]) == (0, 5)
    assert (before["institutions_within_r"], after["institutions_within_r"]) == (0, 1)  # I1, 100 m from E
    assert (before["institutions_unsafe_within_r"], after["institutions_unsafe_within_r"]) == (0, 1)
    assert (before["demand_weight_covered"], after["demand_weight_covered"]) == (1000.0, 6500.0)
    assert out["figures"]["change"]["villages_within_r"] == 1
    assert sorted(v["name"] for v in out["uncovered_villages"]) == ["Thôn M", "Thôn N"]


def test_exact_counts_for_point_roles(planner_engine, psite):
    out = gpl.suggest(planner_engine, request(psite, p=2, min_count=None))
    m = next(u for u in out["demand"]["units"] if u["name"] == "Thôn M")
    assert m["incidents"] == 2 and m["weight"] == 3200.0 and not m["incidents_suppressed"]
    assert out["figures"]["after"]["incidents_in_villages_within_r"] == 7
    public = gpl.suggest(planner_engine, request(psite, p=2))
    m = next(u for u in public["demand"]["units"] if u["name"] == "Thôn M")
    assert m["incidents"] == 0 and m["incidents_suppressed"]


def test_candidates_and_exclusions(planner_engine, psite):
    ex, ey = psite.xy("E")
    around_e = square(ex - 800, ey - 800, ex + 800, ey + 800)
    kinds = ("villages", "institutions")
    req = request(psite, candidates=pin.CandidateRequest(kinds=kinds, exclusions=(around_e,)))
    out = gpl.suggest(planner_engine, req)
    # E's village point and I1 are excluded; M's village (3000) beats N (1500); I2 ties with M's
    # village (both reach only M) and the village comes first
    assert [(s["kind"], s["name"]) for s in out["sites"]] == [("village", "Thôn M")]
    with pytest.raises(gpl.PlanError) as err:
        gpl.suggest(planner_engine, request(psite, p=5))
    assert err.value.field == "p" and err.value.detail["candidates"] == 4


def test_hexagon_demand(planner_engine, psite):
    out = gpl.suggest(planner_engine, request(psite, p=1, demand="hexagons", cell_m=250.0))
    assert out["demand"]["kind"] == "hexagons" and out["demand"]["total_weight"] == pytest.approx(11000.0)
    assert out["sites"][0]["name"] == "Thôn E"
    # E's hexagons share its 4000 people and its no-model 1000; the thefts sit in one or two
    e_units = [u for u in out["demand"]["units"] if u["village_id"] == psite.villages["E"]]
    assert all(u["covered_after"] for u in e_units)
    assert sum(u["population"] for u in e_units) == pytest.approx(4000.0)
    assert sum(u["weight"] for u in e_units) == pytest.approx(5500.0)


def test_lscp_reports_unreachable_villages(planner_engine, psite):
    inst = pin.CandidateRequest(kinds=("institutions",))
    with pytest.raises(gpl.PlanError) as err:
        gpl.suggest(planner_engine, request(psite, problem="lscp", p=None, candidates=inst))
    assert err.value.field == "share"
    assert [v["name"] for v in err.value.detail["unreachable_villages"]] == ["Thôn N"]
    # 80 % of 11,000 = 8,800: W (fixed) 1000 + I1 (E) 5500 + I2 (M) 3000 = 9,500; one is not enough
    out = gpl.suggest(planner_engine, request(psite, problem="lscp", p=None, share=0.8, candidates=inst))
    assert out["solver"]["objective"] == 2 and out["solver"]["status"] == "optimal"
    assert sorted(s["name"] for s in out["sites"]) == ["I1", "I2"]
    assert [v["name"] for v in out["unreachable_villages"]] == ["Thôn N"]


def test_evaluate_equals_suggest_for_the_same_sites(planner_engine, psite):
    out = gpl.suggest(planner_engine, request(psite, p=2))
    lons = [s["lon"] for s in out["sites"]][::-1]
    lats = [s["lat"] for s in out["sites"]][::-1]
    ev = gpl.evaluate(planner_engine, request(psite, p=2), lons, lats)
    assert ev["figures"] == out["figures"]
    assert [s["gain"] for s in ev["sites"]] == [s["gain"] for s in out["sites"]]  # re-ranked by gain
    assert [s["input_index"] for s in ev["sites"]] == [1, 0]
    # moving E's site 900 m east: E's village point is no longer within 800 m
    ex, ey = psite.xy("E")
    lon, lat = TO_LONLAT.transform(ex + 900, ey)
    moved = gpl.evaluate(planner_engine, request(psite, p=2), [lon, lons[0]], [lat, lats[0]])
    assert moved["figures"]["after"]["villages_within_r"] == 2  # W and M
    # the circle now holds only part of E's square: 0 < areal share < 1
    assert 1000 + 2000 < moved["figures"]["after"]["population_within_r"] < 1000 + 2000 + 4000


def test_bad_requests_name_the_field(planner_engine, psite):
    with pytest.raises(gpl.PlanError, match="radius_m"):
        request(psite, radius_m=0.0)
    with pytest.raises(gpl.PlanError, match="radius_m"):
        request(psite, radius_m=1e6)
    with pytest.raises(gpl.PlanError, match="^p:"):
        request(psite, p=0)
    far = square(psite.cx + 1200, psite.cy - 1400, psite.cx + 1800, psite.cy - 800)  # no village point inside
    with pytest.raises(gpl.PlanError) as err:
        gpl.suggest(planner_engine, request(psite, scope=pin.Scope(polygon=far)))
    assert err.value.field == "scope"
    with pytest.raises(gpl.PlanError) as err:
        gpl.suggest(planner_engine, request(psite, weights=pin.WeightFormula(population=0, incidents=1),
                                            period=IncidentFilter(start=dt.date(2026, 10, 1), end=ON)))
    assert err.value.field == "weights"


def test_inputs_are_reused_within_the_ttl(planner_engine, psite):
    gpl._CACHE.clear()
    gpl.suggest(planner_engine, request(psite, p=1))
    ctx = gpl.build_context(planner_engine, request(psite, p=3, solver="greedy"))  # same inputs
    assert ctx is gpl.build_context(planner_engine, request(psite, p=2))
    assert ctx is not gpl.build_context(planner_engine, request(psite, p=2), use_cache=False)
    assert gpl.build_context(planner_engine, request(psite, radius_m=700.0)).radius_m == 700.0
    assert np.isclose(ctx.weight.sum(), 11000.0)
    # a model founded meanwhile (any worker, any path) gives new inputs: N's no-model bonus goes
    lon, lat = TO_LONLAT.transform(*psite.xy("N"))
    with planner_engine.begin() as conn:
        conn.execute(text("INSERT INTO security_model (type_code, name, founded_on, geom) VALUES "
                          "('to_tu_quan', 'new', '2026-01-01', ST_SetSRID(ST_MakePoint(:x, :y), 4326))"),
                     {"x": lon, "y": lat})
    fresh = gpl.build_context(planner_engine, request(psite, p=2))
    assert fresh is not ctx and np.isclose(fresh.weight.sum(), 10000.0)
