"""geo.planner.figures: the "after" figures are what the coverage analytics report once the
sites exist as models (hand-built fixture, tests/planner/conftest.py)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from pyproj import Transformer
from sqlalchemy import text

from geo import coverage
from geo.filters import IncidentFilter
from geo.planner import figures as fg
from geo.planner import inputs as pin
from geo.planner import plan as gpl

from .conftest import ON

TO_LONLAT = Transformer.from_crs(3405, 4326, always_xy=True)


def _request(psite, radius: float = 800.0) -> gpl.PlanRequest:
    return gpl.PlanRequest(scope=pin.Scope(commune_code=psite.commune_code), on=ON, p=2, radius_m=radius,
                           weights=pin.WeightFormula(population=1, no_model=1000),
                           period=IncidentFilter(start=dt.date(2025, 11, 1), end=ON),
                           candidates=pin.CandidateRequest(kinds=("villages",)), solver="exact")


def _analytics(conn, psite, radius: float) -> tuple[float, int]:
    """population within R (commune_coverage) and villages hosting an active model."""
    com = coverage.commune_coverage(conn, ON, radius_m=radius, commune_code=psite.commune_code)
    vil = coverage.village_coverage(conn, ON, coverage.CoverageRule(min_rating=None),
                                    commune_code=psite.commune_code)
    return float(com["population_within_r"].iloc[0]), int(vil["covered"].sum())


def _found_models(conn, lons, lats) -> None:
    for lon, lat in zip(lons, lats, strict=True):
        conn.execute(text("INSERT INTO security_model (type_code, name, founded_on, geom) "
                          "VALUES ('to_tu_quan', 'new', :d, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"),
                     {"d": ON, "lon": lon, "lat": lat})


def test_suggestion_equals_the_analytics_once_founded(planner_engine, psite):
    out = gpl.suggest(planner_engine, _request(psite))
    assert [s["name"] for s in out["sites"]] == ["Thôn E", "Thôn M"]
    with planner_engine.connect() as conn:
        before = out["figures"]["before"]
        assert _analytics(conn, psite, 800.0) == pytest.approx(
            (before["population_within_r"], before["villages_hosting_model"]))
        _found_models(conn, [s["lon"] for s in out["sites"]], [s["lat"] for s in out["sites"]])
        pop, hosting = _analytics(conn, psite, 800.0)
        conn.rollback()
    assert pop == pytest.approx(out["figures"]["after"]["population_within_r"], rel=1e-9)
    assert pop == pytest.approx(7000.0, rel=1e-9)  # W, E, M wholly within R; N not
    assert hosting == out["figures"]["after"]["villages_hosting_model"] == 3


@pytest.mark.parametrize("radius", [800.0, 1300.0])
def test_partial_overlaps_equal_the_analytics(planner_engine, psite, radius):
    # sites placed by hand so that circles cut villages (and, at 1300 m, overlap each other and
    # MW's circle): the areal figure must still be the analytics' to float precision
    pts = [psite.xy("E", 900.0, 200.0), psite.xy("M", -600.0, 300.0), psite.xy("W", 700.0, 0.0)]
    lon, lat = TO_LONLAT.transform([p[0] for p in pts], [p[1] for p in pts])
    ev = gpl.evaluate(planner_engine, _request(psite, radius), list(lon), list(lat))
    after = ev["figures"]["after"]["population_within_r"]
    assert 1000.0 < after < 7500.0
    with planner_engine.connect() as conn:
        _found_models(conn, lon, lat)
        pop, _ = _analytics(conn, psite, radius)
        conn.rollback()
    assert pop == pytest.approx(after, rel=1e-9)


def test_overlay_only_touches_villages_near_a_site(planner_engine, psite):
    ids = list(psite.villages.values())
    lon, lat = TO_LONLAT.transform(*psite.xy("E"))
    redo = fg.overlay_with_sites(planner_engine, ON, 800.0, ids, np.array([lon]), np.array([lat]))
    assert redo["id"].tolist() == [psite.villages["E"]]
    assert redo["area_within_m2"].iloc[0] == pytest.approx(redo["area_m2"].iloc[0], rel=1e-9)
    assert fg.overlay_with_sites(planner_engine, ON, 800.0, ids, np.array([]), np.array([])).empty
    assert fg.host_villages(planner_engine, ON, np.array([lon]), np.array([lat])) == [psite.villages["E"]]
    far_lon, far_lat = TO_LONLAT.transform(*psite.xy("E", 1500.0, 0.0))
    assert fg.host_villages(planner_engine, ON, np.array([far_lon]), np.array([far_lat])) == [None]
