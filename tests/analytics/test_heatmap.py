"""The served heatmap's pieces (geo.heatmap, geo.kde.grid_frame/density_grid/png_bounds), the
public hull coarsening (geo.clusters.coarsen_hull) and the hexagon-count estimate
(geo.grid.estimated_hexagons), against values computed by hand.

Coordinates are EPSG:3405 metres from X0, Y0 (multiples of 250 and 100, so squares and cells
of those sizes start there).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from sqlalchemy import text

from antt.crs import pinned
from geo import heatmap as hm
from geo.clusters import coarsen_hull
from geo.filters import IncidentFilter
from geo.grid import estimated_hexagons
from geo.kde import GridTooLarge, KdeGrid, density_grid, grid_frame, grid_png, png_bounds

X0, Y0 = 600_000.0, 2_310_000.0
K = 3.0 / math.pi  # the quartic kernel's constant


def _wkb(geom: shapely.Geometry) -> bytes:
    return shapely.to_wkb(geom)


def test_grid_frame_snaps_to_multiples_of_the_cell():
    assert grid_frame((1050, 2030, 1490, 2390), 100, 1000) == (1000, 2000, 5, 4)
    assert grid_frame((1000, 2000, 1500, 2400), 100, 1000) == (1000, 2000, 5, 4)  # edges exact
    with pytest.raises(GridTooLarge) as err:
        grid_frame((1050, 2030, 1490, 2390), 100, 19)
    assert (err.value.cells, err.value.limit) == (20, 19)
    with pytest.raises(ValueError):
        grid_frame((0, 0, 1, 1), 0, 10)


def test_density_grid_by_hand_and_clipped_to_the_area():
    """One point at (1350, 2150), bandwidth 200 m, 100 m cells over a triangle below the
    diagonal of the square (1000, 2000)-(1500, 2500): density = 3/pi (1 - d^2/r^2)^2 / r^2
    per m^2, x 1e6 per km^2."""
    tri = shapely.Polygon([(1000, 2000), (1500, 2000), (1500, 2500), (1000, 2000)])
    g = density_grid(np.array([[1350.0, 2150.0]]), np.array([1.0]), 200.0, _wkb(tri), 100.0)
    assert (g.x0, g.y0, g.density.shape, g.n_points, g.bandwidth_m) == (1000, 2000, (5, 5), 1, 200)

    def at(x: float, y: float) -> float:
        return g.density[int((y - 2000) // 100), int((x - 1000) // 100)]

    per_km2 = K / 200.0**2 * 1e6  # 75 / pi
    assert at(1350, 2150) == pytest.approx(per_km2)
    assert at(1450, 2150) == pytest.approx(per_km2 * 0.75**2)  # d = 100: 1 - 1/4
    assert at(1450, 2050) == pytest.approx(per_km2 * 0.5**2)  # d = 141.4: 1 - 1/2
    assert at(1350, 2350) == 0.0  # d = 200: the kernel's edge
    assert at(1250, 2250) == 0.0  # d = 141.4 but the centre is on the diagonal: clipped
    assert at(1050, 2150) == 0.0  # outside the triangle


def test_png_bounds_are_those_of_the_png():
    grid = KdeGrid(100.0, 200.0, X0, Y0, np.ones((30, 40)), 1, None)
    _, ((south, west), (north, east)) = grid_png(grid, max_pixels=128)
    assert png_bounds(grid) == pytest.approx([west, south, east, north], abs=1e-9)


def test_choose_bandwidth_by_hand():
    square = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0]])
    # centre (50, 50); every distance 70.71 = SD = Dm; 0.9 x min(70.71, 1.2011 x 70.71) x 4^-0.2
    silverman = 0.9 * math.sqrt(5000.0) * 4 ** -0.2
    assert hm.choose_bandwidth(square, np.ones(4)) == (pytest.approx(silverman), None)
    assert silverman == pytest.approx(48.23, abs=0.01)
    assert hm.choose_bandwidth(square, np.ones(4), floor_m=250.0) == (250.0, pytest.approx(silverman))
    assert hm.choose_bandwidth(square, np.ones(4), bandwidth_m=300.0, floor_m=250.0) == (300.0, None)
    with pytest.raises(hm.TooFewPoints):
        hm.choose_bandwidth(square[:1], np.ones(1))


def _point(x: float, y: float) -> str:
    return f"ST_Transform(ST_SetSRID(ST_MakePoint({X0 + x}, {Y0 + y}), 3405), 4326)"


@pytest.fixture
def three(engine):
    """A commune of province 95 over [0, 200] x [0, 200]; incidents at (10, 10) and (20, 30)
    inside it, (260, 10) outside it; all on 1 March 2026."""
    with engine.begin() as conn:
        conn.execute(text(f"""
            INSERT INTO admin_unit (level, code, name, name_search, province_code, valid_from, geom)
            VALUES ('commune', '95001', 'A', 'a', '95', '2025-07-01', ST_Multi(ST_Transform(
                ST_MakeEnvelope({X0}, {Y0}, {X0 + 200}, {Y0 + 200}, 3405), 4326)))"""))
        for x, y in ((10, 10), (20, 30), (260, 10)):
            conn.execute(text(f"INSERT INTO incident (category_code, occurred_at, geom) "
                              f"VALUES ('crime/theft', '2026-03-01 10:00+07', {_point(x, y)})"))
    return engine


FLT = IncidentFilter(dt.date(2026, 1, 1), dt.date(2026, 6, 30))
BOX = shapely.box(X0, Y0, X0 + 500, Y0 + 500)


def test_surface_points_reach_scope_and_squares(three):
    xy, w = hm.surface_points(three, FLT, _wkb(BOX), reach_m=0)
    assert np.allclose(xy, [[X0 + 10, Y0 + 10], [X0 + 20, Y0 + 30], [X0 + 260, Y0 + 10]], atol=1e-3)
    far = shapely.box(X0 + 5000, Y0, X0 + 6000, Y0 + 1000)  # 4,740 m east of the last point
    assert len(hm.surface_points(three, FLT, _wkb(far), reach_m=4000)[0]) == 0
    assert len(hm.surface_points(three, FLT, _wkb(far), reach_m=5000)[0]) == 3
    scoped, _ = hm.surface_points(three, FLT, _wkb(BOX), 0, province_code="95")
    assert len(scoped) == 2  # the third lies in no commune of province 95
    # public: 250 m squares; (10, 10) and (20, 30) share the square centred (125, 125); the one
    # holding (260, 10) has a single incident, under min_count 2: dropped
    xy, w = hm.surface_points(three, FLT, _wkb(BOX), 0, square_m=250, min_count=2)
    assert xy.tolist() == [[X0 + 125, Y0 + 125]] and w.tolist() == [2.0]
    xy, w = hm.surface_points(three, FLT, _wkb(BOX), 0, weight="deaths", square_m=250)
    assert w.tolist() == [0.0, 0.0]  # no deaths recorded


def test_heatmap_public_by_hand(three):
    res = hm.heatmap(three, FLT, _wkb(BOX), cell_m=250, bandwidth_m=300, square_m=250, min_count=2)
    assert res.notes == {"aggregated_to_m": 250, "squares_under_suppression_limit_dropped": True}
    # the square's centre is the centre of cell (0, 0): 2 incidents x 3/pi / 300^2 per m^2
    assert res.grid.density[0, 0] == pytest.approx(2 * K / 300.0**2 * 1e6)
    with pytest.raises(hm.TooFewPoints):  # one square left: no default bandwidth
        hm.heatmap(three, FLT, _wkb(BOX), cell_m=250, square_m=250, min_count=2, floor_m=250)
    with pytest.raises(GridTooLarge):
        hm.heatmap(three, FLT, _wkb(BOX), cell_m=10, bandwidth_m=300, max_cells=2499)
    police = hm.heatmap(three, FLT, _wkb(BOX), cell_m=250)
    assert police.notes == {} and len(police.xy) == 3


def test_area_wkb_box_is_densified_and_units_are_the_study_area(three):
    wkb = hm.area_wkb(three, bbox=(106.0, 20.0, 107.0, 21.0))
    box = shapely.from_wkb(wkb)
    assert shapely.get_num_coordinates(box) > 400  # ~100 km edges, a vertex every 1 km
    assert 104_000 < box.bounds[2] - box.bounds[0] < 106_000  # 1 degree of longitude at 20-21 N
    unit = shapely.from_wkb(hm.area_wkb(three, commune_code="95001", on=dt.date(2026, 6, 30)))
    assert unit.area == pytest.approx(200 * 200, rel=1e-6)
    assert hm.area_wkb(three, commune_code="95001", on=dt.date(2025, 1, 1)) is None


def test_estimated_hexagons_by_hand(three):
    # the commune's box is 200 m x 200 m; a hexagon of side 10 m covers 1.5 sqrt(3) x 100 m^2
    got = estimated_hexagons(three, 10, commune_code="95001", on=dt.date(2026, 6, 30))
    assert got == pytest.approx(40_000 / (1.5 * math.sqrt(3) * 100), rel=1e-6)
    assert estimated_hexagons(three, 10, commune_code="95001", on=dt.date(2025, 1, 1)) is None


def _hull_geojson(points: list[tuple[float, float]]) -> dict:
    to_ll = Transformer.from_crs(pinned(3405), "EPSG:4326", always_xy=True)
    ring = [to_ll.transform(X0 + x, Y0 + y) for x, y in points]
    return shapely.geometry.mapping(shapely.Polygon(ring))


def _metric(geojson: dict) -> shapely.Geometry:
    to_m = Transformer.from_crs("EPSG:4326", pinned(3405), always_xy=True)
    geom = shapely.geometry.shape(geojson)
    return shapely.transform(geom, lambda c: np.column_stack(to_m.transform(c[:, 0], c[:, 1])))


def test_coarsen_hull_snaps_vertices_to_the_grid():
    # (10, 10) -> (0, 0), (490, 20) -> (500, 0), (260, 480) -> (250, 500): area 500 x 500 / 2
    out = _metric(coarsen_hull(_hull_geojson([(10, 10), (490, 20), (260, 480)]), 250))
    assert out.area == pytest.approx(125_000, rel=1e-5)
    xs, ys = shapely.get_coordinates(out).T
    assert np.allclose((xs - X0) / 250, np.round((xs - X0) / 250), atol=1e-4)
    assert np.allclose((ys - Y0) / 250, np.round((ys - Y0) / 250), atol=1e-4)


def test_coarsen_hull_collapsed_becomes_one_grid_cell():
    # every vertex snaps to (0, 0): one grid cell, still on the grid (the buffer of the node,
    # -125..125, is itself snapped, half up): the cell whose south-west corner is the node
    out = _metric(coarsen_hull(_hull_geojson([(10, 10), (100, 20), (60, 100)]), 250))
    assert out.area == pytest.approx(62_500, rel=1e-5)
    assert np.allclose(out.bounds, (X0, Y0, X0 + 250, Y0 + 250), atol=0.05)
    with pytest.raises(ValueError):
        coarsen_hull(_hull_geojson([(0, 0), (10, 0), (0, 10)]), 0)
