"""geo.planner.inputs on the hand-built fixture (tests/planner/conftest.py)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from pyproj import Transformer

from geo.filters import IncidentFilter
from geo.grid import hex_centres
from geo.planner import inputs as pin

from .conftest import ON, PlannerSite

PERIOD = IncidentFilter(start=dt.date(2025, 11, 1), end=ON)
TO_LONLAT = Transformer.from_crs(3405, 4326, always_xy=True)


def square(x0: float, y0: float, x1: float, y1: float) -> str:
    """A GeoJSON polygon (EPSG:4326) of a square given in EPSG:3405, 20 vertices a side."""
    t = np.linspace(0, 1, 20, endpoint=False)
    xs = np.concatenate([x0 + (x1 - x0) * t, np.full(20, x1), x1 - (x1 - x0) * t, np.full(20, x0)])
    ys = np.concatenate([np.full(20, y0), y0 + (y1 - y0) * t, np.full(20, y1), y1 - (y1 - y0) * t])
    lon, lat = TO_LONLAT.transform(xs, ys)
    ring = [[float(a), float(b)] for a, b in zip(lon, lat, strict=True)]
    return json.dumps({"type": "Polygon", "coordinates": [ring + [ring[0]]]})


def by_key(df, site: PlannerSite):
    ids = {v: k for k, v in site.villages.items()}
    return {ids[int(r.id)]: r for r in df.itertuples()}


def test_villages_counts_and_suppression(planner_engine, psite):
    scope = pin.Scope(commune_code=psite.commune_code)
    exact = by_key(pin.villages(planner_engine, ON, scope, PERIOD, None), psite)
    assert {k: r.incidents for k, r in exact.items()} == {"W": 0, "M": 2, "E": 5, "N": 0}
    assert {k: r.models for k, r in exact.items()} == {"W": 1, "M": 0, "E": 0, "N": 0}  # MS is suspended
    assert {k: r.no_model for k, r in exact.items()} == {"W": 0, "M": 1, "E": 1, "N": 1}
    assert {k: (r.institutions, r.institutions_unsafe) for k, r in exact.items()} == {
        "W": (0, 0), "M": (1, 0), "E": (1, 1), "N": (0, 0)}
    assert exact["M"].name == "Thôn M"
    # the point a village is reached at: its point on surface, here the square's centre
    for key, row in exact.items():
        assert (row.x, row.y) == pytest.approx(psite.xy(key), abs=0.01)
    public = by_key(pin.villages(planner_engine, ON, scope, PERIOD, 3), psite)
    assert public["M"].incidents == 0 and public["M"].incidents_suppressed
    assert public["E"].incidents == 5 and not public["E"].incidents_suppressed
    # the 2024 theft is outside the period; without a period it counts
    assert by_key(pin.villages(planner_engine, ON, scope), psite)["E"].incidents == 6


def test_weight_formula(planner_engine, psite):
    scope = pin.Scope(commune_code=psite.commune_code)
    formula = pin.WeightFormula(population=1, incidents=100, no_model=1000)
    assert formula.describe()["en"] == \
        "1 × population + 100 × incidents in the period + 1000 × [no active model]"
    public = pin.villages(planner_engine, ON, scope, PERIOD, 3)
    weights = dict(zip(by_key(public, psite), formula.apply(public), strict=True))
    assert weights == {"W": 1000.0, "M": 3000.0, "E": 5500.0, "N": 1500.0}
    exact = pin.villages(planner_engine, ON, scope, PERIOD, None)
    assert dict(zip(by_key(exact, psite), formula.apply(exact), strict=True))["M"] == 3200.0
    with pytest.raises(ValueError, match="at least one"):
        pin.WeightFormula(population=0)
    with pytest.raises(ValueError, match="weights.incidents"):
        pin.WeightFormula(incidents=-1)


def test_hexagons_keep_totals(planner_engine, psite):
    scope = pin.Scope(commune_code=psite.commune_code)
    hexes = pin.hexagons(planner_engine, ON, scope, 250.0, PERIOD, None)
    assert hexes["population"].sum() == pytest.approx(7500)
    assert hexes["households"].sum() == pytest.approx(1850)
    assert hexes["incidents"].sum() == 7 and hexes["institutions_unsafe"].sum() == 1
    # a village of 1 km2 holds ~1e6 / (2.598 * 250^2) = 6.2 hexagon centres, population shared evenly
    m = hexes[hexes["village_id"] == psite.villages["M"]]
    assert 5 <= len(m) <= 8 and m["population"].to_numpy() == pytest.approx(2000 / len(m))
    assert m["no_model"].sum() == pytest.approx(1.0)  # M's flag, spread like its population
    assert hexes["no_model"].sum() == pytest.approx(3.0)  # M, E, N
    # the hexagon of a theft holds it: the 5 thefts lie within 100 m of E's centre
    hit = hexes[hexes["incidents"] > 0]
    e_cx, e_cy = psite.xy("E")
    near_e = hit[np.hypot(hit["x"] - e_cx, hit["y"] - e_cy) < 500]
    assert near_e["incidents"].sum() == 5
    public = pin.hexagons(planner_engine, ON, scope, 250.0, PERIOD, 3)
    assert public["incidents"].max() <= public["incidents"].sum()
    assert not ((public["incidents"] > 0) & (public["incidents"] < 3)).any()


def test_candidates_kinds_exclusions_and_drawn(planner_engine, psite):
    scope = pin.Scope(commune_code=psite.commune_code)
    c = pin.candidates(planner_engine, ON, scope, pin.CandidateRequest(kinds=("villages", "institutions",
                                                                              "launch_points")))
    assert c["kind"].value_counts().to_dict() == {"village": 4, "institution": 2, "launch_point": 1}
    assert c.loc[c["kind"] == "launch_point", "name"].tolist() == ["Điểm M"]  # LP2 was launched
    ex, ey = psite.xy("E")
    around_e = square(ex - 800, ey - 800, ex + 800, ey + 800)
    kept = pin.candidates(planner_engine, ON, scope, pin.CandidateRequest(
        kinds=("villages", "institutions"), exclusions=(around_e,)))
    assert len(kept) == 4 and not (np.hypot(kept["x"] - ex, kept["y"] - ey) < 800).any()
    # drawn: one point and a 700 m square between M and E; centres inside it on the 250 m grid
    x0, y0, x1, y1 = psite.cx + 900, psite.cy - 350, psite.cx + 1600, psite.cy + 350
    lon, lat = TO_LONLAT.transform(psite.cx + 1250, psite.cy + 1000)
    drawn = pin.candidates(planner_engine, ON, scope, pin.CandidateRequest(
        kinds=("drawn",), points=((lon, lat),), polygons=(square(x0, y0, x1, y1),), cell_m=250.0))
    i, j = np.meshgrid(np.arange(-10, 10) + int(psite.cx / 375), np.arange(-10, 10) + int(psite.cy / 433),
                       indexing="ij")
    hx, hy = hex_centres(i.ravel(), j.ravel(), 250.0)
    inside = (hx > x0) & (hx < x1) & (hy > y0) & (hy < y1)
    margin = np.minimum.reduce([np.abs(hx - x0), np.abs(hx - x1), np.abs(hy - y0), np.abs(hy - y1)])
    assert margin[inside].min() > 0.5  # no centre on the edge: the count is unambiguous
    areas = drawn[drawn["kind"] == "drawn_area"]
    assert len(areas) == int(inside.sum()) > 0
    got = np.array(sorted(zip(areas["x"], areas["y"], strict=True)))
    want = np.array(sorted(zip(hx[inside], hy[inside], strict=True)))
    np.testing.assert_allclose(got, want, atol=0.01)
    assert drawn["kind"].tolist().count("drawn_point") == 1


def test_fixed_sites_are_the_active_models_within_r(planner_engine, psite):
    scope = pin.Scope(commune_code=psite.commune_code)
    fixed = pin.fixed_sites(planner_engine, ON, scope, 800.0)
    assert fixed["name"].tolist() == ["Tổ tự quản W"]  # MS suspended since 2025
    # a radius reaching M's centre (MS's point) still leaves MS out: it is suspended, not active
    assert pin.fixed_sites(planner_engine, ON, scope, 3000.0)["name"].tolist() == ["Tổ tự quản W"]
    assert pin.fixed_sites(planner_engine, ON, scope, 800.0, model_type="camera_antt").empty
    assert pin.default_radius(planner_engine, None) == 500.0
    assert pin.default_radius(planner_engine, "to_tu_quan") == 500.0


def test_polygon_scope_takes_villages_by_their_point(planner_engine, psite):
    wx, wy = psite.xy("W")
    poly = square(wx - 600, wy - 600, psite.cx + 600, psite.cy + 600)  # W and M, not E or N
    v = pin.villages(planner_engine, ON, pin.Scope(polygon=poly))
    assert sorted(v["name"]) == ["Thôn M", "Thôn W"]
    assert pin.polygon_problem(planner_engine, poly) is None
    bow = json.dumps({"type": "Polygon", "coordinates": [[[106, 20], [106.1, 20.1], [106.1, 20], [106, 20.1],
                                                          [106, 20]]]})
    assert "Self-intersection" in pin.polygon_problem(planner_engine, bow)
    point = '{"type": "Point", "coordinates": [106, 20]}'
    assert pin.polygon_problem(planner_engine, point).startswith("not a")
    assert pin.polygon_problem(planner_engine, '{"type": "Polygon", "coordinates": [[[106, 20]]]}')
    with pytest.raises(ValueError, match="exactly one"):
        pin.Scope(province_code="31", commune_code="x")


def test_incidents_written_before_the_merger_count_where_they_lie(planner_engine, psite):
    """An incident still pointing at a pre-2025 village (valid until 1 July 2025) counts in the
    village valid on the date that holds it (geo.placement), not nowhere."""
    from sqlalchemy import text

    ex, ey = psite.xy("E", 10.0, -10.0)
    with planner_engine.begin() as conn:
        old = conn.execute(text("""
            INSERT INTO admin_unit (level, code, name, name_search, province_code, valid_from, valid_to, geom)
            VALUES ('village', 'OLD-E', 'Thôn cũ', 'thon cu', '31', '2000-01-01', '2025-07-01',
                    ST_Multi(ST_Transform(ST_Buffer(ST_SetSRID(ST_MakePoint(:x, :y), 3405), 400), 4326)))
            RETURNING id"""), {"x": ex, "y": ey}).scalar_one()
        conn.execute(text("""
            INSERT INTO incident (category_code, occurred_at, village_id, commune_id, geom)
            VALUES ('crime/theft', '2026-02-01 10:00+07', :v, :c,
                    ST_Transform(ST_SetSRID(ST_MakePoint(:x, :y), 3405), 4326))"""),
                     {"v": old, "c": psite.commune_id, "x": ex, "y": ey})
    got = by_key(pin.villages(planner_engine, ON, pin.Scope(commune_code=psite.commune_code), PERIOD), psite)
    assert got["E"].incidents == 6
