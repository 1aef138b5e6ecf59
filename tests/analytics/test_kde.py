"""Kernel density: the bandwidth rule and the kernel by hand, then grids/contours/PNG in the DB."""

from __future__ import annotations

import io
import math
from datetime import date

import numpy as np
import pytest
from PIL import Image

from geo.filters import IncidentFilter
from geo.kde import (
    class_breaks,
    grid_cells_geojson,
    grid_contours_geojson,
    grid_png,
    incident_points,
    kde_grid,
    quartic_density,
    silverman_bandwidth,
)

YEAR = IncidentFilter(date(2026, 1, 1), date(2026, 12, 31))


def test_bandwidth_by_hand():
    # three points at (0,0) and one at (300,0): mean centre (75,0); distances 75,75,75,225
    # SD = sqrt((3*75^2 + 225^2)/4) = 129.90; Dm = 75; sqrt(1/ln2)*75 = 90.08 < SD
    xy = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [300.0, 0.0]])
    expected = 0.9 * math.sqrt(1 / math.log(2)) * 75.0 * 4 ** -0.2
    assert silverman_bandwidth(xy) == pytest.approx(expected)
    assert expected == pytest.approx(61.45, abs=0.01)
    # square corners: SD = Dm = 141.42, SD is the smaller term
    sq = np.array([[-100.0, -100.0], [100.0, -100.0], [-100.0, 100.0], [100.0, 100.0]])
    assert silverman_bandwidth(sq) == pytest.approx(0.9 * math.hypot(100, 100) * 4 ** -0.2)
    with pytest.raises(ValueError):
        silverman_bandwidth(np.zeros((3, 2)))


def test_quartic_kernel_by_hand_and_integrates_to_n():
    pts = np.array([[0.0, 0.0]])
    # at 50 m with r = 100 m: 3/pi * (1 - 0.25)^2 / 100^2 per m^2 = 53.71 per km^2
    d = quartic_density(pts, np.ones(1), 100.0, np.array([[50.0, 0.0], [100.0, 0.0], [0.0, 0.0]]))
    assert d[0] == pytest.approx(3 / math.pi * 0.5625 / 1e4 * 1e6)
    assert d[1] == 0.0 and d[2] == pytest.approx(3 / math.pi / 1e4 * 1e6)
    g = np.arange(-120, 120, 2.0) + 1.0
    gx, gy = np.meshgrid(g, g)
    two = np.array([[0.0, 0.0], [10.0, 5.0]])
    total = quartic_density(two, np.array([1.0, 2.0]), 100.0, np.column_stack([gx.ravel(), gy.ravel()]))
    assert total.sum() * 4.0 / 1e6 == pytest.approx(3.0, rel=2e-3)  # weights 1 + 2


def test_class_breaks():
    v = np.array([0, 1, 2, 3, 4, 0], dtype=float)
    assert class_breaks(v, 2, "equal").tolist() == [2.0, 4.0]
    assert class_breaks(v, 4, "quantile").tolist() == [1.75, 2.5, 3.25, 4.0]
    with pytest.raises(ValueError):
        class_breaks(v, 3, "jenks")


def test_grid_contours_png_on_commune(site_engine, site):
    from analytics.test_hotspots import _plant

    _plant(site_engine, site)
    xy, w = incident_points(site_engine, YEAR, commune_code=site.commune_code)
    grid = kde_grid(site_engine, YEAR, cell_m=100, commune_code=site.commune_code)
    assert grid.n_points == len(xy) and grid.bandwidth_m == pytest.approx(silverman_bandwidth(xy))
    r, c = np.unravel_index(np.argmax(grid.density), grid.density.shape)
    peak = (grid.x0 + (c + 0.5) * 100, grid.y0 + (r + 0.5) * 100)
    assert math.hypot(peak[0] - (site.cx + 500), peak[1] - (site.cy + 500)) < 400
    fixed = kde_grid(site_engine, YEAR, cell_m=100, bandwidth_m=800, commune_code=site.commune_code)
    assert fixed.bandwidth_m == 800

    cells = grid_cells_geojson(grid)
    assert len(cells["features"]) == int((grid.density > 0).sum())
    lon, lat = cells["features"][0]["geometry"]["coordinates"][0][0]
    assert 105 < lon < 108 and 20 < lat < 22

    bands = grid_contours_geojson(grid, classes=4, method="quantile")
    # quartiles of the positive densities, computed here with numpy: four bands, each holding
    # the cells in (lower, upper], about a quarter of them
    positive = grid.density[grid.density > 0]
    edges = [0.0, *np.quantile(positive, [0.25, 0.5, 0.75, 1.0])]
    expected = [int(((positive > lo) & (positive <= hi)).sum())
                for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    assert len(bands["features"]) == 4
    assert [f["properties"]["cells"] for f in bands["features"]] == expected
    assert [f["properties"]["upper"] for f in bands["features"]] == pytest.approx(edges[1:])
    assert all(abs(n - len(positive) / 4) <= len(positive) / 8 for n in expected)
    assert sum(f["properties"]["cells"] for f in bands["features"]) == len(cells["features"])
    assert [f["properties"]["band"] for f in bands["features"]] == sorted(
        f["properties"]["band"] for f in bands["features"])

    png, bounds = grid_png(grid, xy, w, max_pixels=256)
    img = Image.open(io.BytesIO(png))
    assert img.mode == "RGBA" and max(img.size) == 256
    alpha = np.asarray(img)[..., 3]
    assert (alpha == 0).any() and (alpha > 0).any()
    (south, west), (north, east) = bounds
    assert south < north and west < east


def test_pixel_lattice_matches_exact_transform_and_kernel():
    from pyproj import Transformer

    from antt.crs import pinned
    from geo.kde import _lattice_transform, _pixel_density

    from_merc = Transformer.from_crs("EPSG:3857", pinned(3405), always_xy=True)
    to_merc = Transformer.from_crs(pinned(3405), "EPSG:3857", always_xy=True)
    px = 11_800_000 + (np.arange(300) + 0.5) * 50.0  # 15 km of 50 m pixels near Hải Phòng
    py = 2_400_000 - (np.arange(200) + 0.5) * 50.0
    tx, ty = _lattice_transform(from_merc, px, py)
    gx, gy = np.meshgrid(px, py)
    ex, ey = from_merc.transform(gx.ravel(), gy.ravel())
    assert np.abs(tx - ex).max() < 0.01 and np.abs(ty - ey).max() < 0.01  # < 1 cm
    rng = np.random.default_rng(4)
    pts = np.column_stack([rng.uniform(tx.min(), tx.max(), 50), rng.uniform(ty.min(), ty.max(), 50)])
    w = rng.uniform(1, 3, 50)
    windowed = _pixel_density(pts, w, 700.0, tx.reshape(200, 300), ty.reshape(200, 300), to_merc,
                              px[0] - 25, py[0] + 25, 50.0, 50.0)
    brute = quartic_density(pts, w, 700.0, np.column_stack([tx, ty])).reshape(200, 300)
    assert np.abs(windowed - brute).max() < 1e-9


@pytest.mark.parametrize("chunk_elements", [2_000_000, 3_000])
@pytest.mark.parametrize("n", [7, 3000])
def test_grid_density_equals_the_pair_search(monkeypatch, n, chunk_elements):
    """grid_quartic_density (cells within reach found by arithmetic, points in one chunk or in
    many) gives quartic_density's sums at the cell centres, points outside the grid too."""
    from geo import kde
    from geo.kde import grid_quartic_density

    monkeypatch.setattr(kde, "PAIR_CHUNK_ELEMENTS", chunk_elements)

    rng = np.random.default_rng(n)
    x0, y0, cell, nx, ny = 600_000.0, 2_300_000.0, 250.0, 80, 60
    pts = np.column_stack([rng.uniform(x0 - 2_000, x0 + nx * cell + 2_000, n),
                           rng.uniform(y0 - 2_000, y0 + ny * cell + 2_000, n)])
    w = rng.uniform(0.5, 3.0, n)
    gx, gy = np.meshgrid(x0 + (np.arange(nx) + 0.5) * cell, y0 + (np.arange(ny) + 0.5) * cell)
    for bw in (180.0, 1_300.0):
        fast = grid_quartic_density(pts, w, bw, x0, y0, cell, nx, ny)
        brute = quartic_density(pts, w, bw, np.column_stack([gx.ravel(), gy.ravel()])).reshape(ny, nx)
        assert fast.shape == (ny, nx) and brute.max() > 0
        assert np.abs(fast - brute).max() <= 1e-9 * brute.max()


@pytest.mark.parametrize("chunk_elements", [2_000_000, 5_000])
def test_pixel_density_by_chunks_equals_the_brute_sums(monkeypatch, chunk_elements):
    """Few and many points, in one chunk or in many (windows padded to the largest, padding
    weighing 0, points at the image edges clipped), give the brute sums over every pixel."""
    from pyproj import Transformer

    from geo import kde

    monkeypatch.setattr(kde, "PAIR_CHUNK_ELEMENTS", chunk_elements)

    from antt.crs import pinned
    from geo.kde import _lattice_transform, _pixel_density

    from_merc = Transformer.from_crs("EPSG:3857", pinned(3405), always_xy=True)
    to_merc = Transformer.from_crs(pinned(3405), "EPSG:3857", always_xy=True)
    px = 11_800_000 + (np.arange(120) + 0.5) * 100.0
    py = 2_400_000 - (np.arange(90) + 0.5) * 100.0
    tx, ty = _lattice_transform(from_merc, px, py)
    rng = np.random.default_rng(9)
    for n in (5, 4000):
        pts = np.column_stack([rng.uniform(tx.min() - 900, tx.max() + 900, n),
                               rng.uniform(ty.min() - 900, ty.max() + 900, n)])
        w = rng.uniform(1, 2, n)
        windowed = _pixel_density(pts, w, 600.0, tx.reshape(90, 120), ty.reshape(90, 120), to_merc,
                                  px[0] - 50, py[0] + 50, 100.0, 100.0)
        brute = quartic_density(pts, w, 600.0, np.column_stack([tx, ty])).reshape(90, 120)
        assert brute.max() > 0 and np.abs(windowed - brute).max() <= 1e-9 * brute.max()


@pytest.mark.parametrize("todays_map", [True, False])
def test_points_inside_a_province_are_those_its_union_holds(site_engine, todays_map, monkeypatch):
    """incident_points (geo.area.area_incidents_sql) keeps exactly the incidents ST_Intersects
    keeps with the whole union of Hải Phòng's 114 communes, in id order, with points on commune
    outlines (vertices, so on the union's edges and inner seams) and points outside in the
    union's box: on today's map by their stored commune (the fixture holds no neighbouring
    province a border point could be placed in), and through the area's pieces
    (AREA_PARTS_SQL), the path of an older map, when the map is taken as not today's."""
    import geo.area

    if not todays_map:
        monkeypatch.setattr(geo.area, "is_current", lambda *_: False)
    from sqlalchemy import text

    from geo.area import AREA_SQL, area_params

    with site_engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO incident (category_code, occurred_at, geom)
            SELECT 'crime/theft', timestamptz '2026-05-01 10:00+07' + n * interval '1 hour',
                   ST_SetSRID(ST_MakePoint(106.35 + random() * 0.95, 20.55 + random() * 0.75), 4326)
            FROM generate_series(1, 2500) n"""))
        conn.execute(text("""
            INSERT INTO incident (category_code, occurred_at, geom)
            SELECT 'traffic', timestamptz '2026-07-01 10:00+07', (d).geom
            FROM (SELECT ST_DumpPoints(geom) AS d FROM admin_unit
                  WHERE level = 'commune' AND province_code = '31') s
            WHERE ((d).path)[array_length((d).path, 1)] % 41 = 0"""))
    xy, _ = incident_points(site_engine, YEAR, province_code="31")
    params = area_params(site_engine, "31", None, YEAR.end) | {"t0": "2026-01-01", "t1": "2027-01-01"}
    with site_engine.connect() as conn:
        expected = np.array(conn.execute(text(f"""
            WITH area AS ({AREA_SQL})
            SELECT ST_X(i.geom_m), ST_Y(i.geom_m) FROM incident i, area
            WHERE ST_Intersects(area.g4326, i.geom)
              AND i.occurred_at >= CAST(:t0 AS date) + time '00:00' AT TIME ZONE 'Asia/Ho_Chi_Minh'
              AND i.occurred_at < CAST(:t1 AS date) + time '00:00' AT TIME ZONE 'Asia/Ho_Chi_Minh'
            ORDER BY i.id"""), params).all(), dtype="float64")
        total, pieces = conn.execute(text(
            f"WITH area AS ({AREA_SQL}) SELECT (SELECT count(*) FROM incident), "
            "(SELECT count(*) FROM (SELECT ST_Subdivide(g4326, 256) FROM area) s)"), params).one()
    assert pieces > 20  # the area is cut: the pieces' seams are exercised
    assert 1500 < len(expected) < total  # many inside, some outside
    assert np.array_equal(xy, expected)
