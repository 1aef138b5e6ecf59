"""The study area of a province is the union of its communes (real Hải Phòng boundaries).

In the real files 46 km² of Hải Phòng's 2025 communes lie outside the province-31 outline; a
hexagon grid over the outline dropped the incidents there. Points are generated in SQL in that
difference (inside a commune, outside the outline), plus one inside every commune.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from sqlalchemy import text

from geo.area import study_area
from geo.clusters import incident_clusters
from geo.filters import IncidentFilter
from geo.grid import hex_cells, hex_centres, hex_counts
from geo.kde import incident_points

ON = dt.date(2026, 6, 30)
ALL = IncidentFilter(dt.date(2026, 1, 1), ON)


def _plant(engine) -> tuple[int, int, int]:
    """Incidents: up to 300 in the communes' area outside the outline (ST_GeneratePoints gives
    fewer on tiny slivers), one inside every commune. Returns (planted in the difference,
    outside the outline, all)."""
    with engine.begin() as conn:
        planted = conn.execute(text("""
            WITH c AS (SELECT ST_Union(geom) AS g FROM admin_unit
                       WHERE level = 'commune' AND province_code = '31'),
                 p AS (SELECT geom AS g FROM admin_unit WHERE level = 'province' AND code = '31'),
                 d AS (SELECT ST_Difference(c.g, p.g) AS g FROM c, p)
            INSERT INTO incident (category_code, occurred_at, geom)
            SELECT 'crime/theft', '2026-03-01 10:00+07', (ST_Dump(ST_GeneratePoints(d.g, 300, 31))).geom
            FROM d""")).rowcount
        conn.execute(text("""
            INSERT INTO incident (category_code, occurred_at, geom)
            SELECT 'traffic', '2026-04-01 10:00+07', ST_PointOnSurface(geom)
            FROM admin_unit WHERE level = 'commune' AND province_code = '31'"""))
        outside, total = conn.execute(text("""
            SELECT count(*) FILTER (WHERE NOT ST_Intersects(p.geom, i.geom)), count(*)
            FROM incident i, admin_unit p WHERE p.level = 'province' AND p.code = '31'""")).one()
    return planted, outside, total


def test_the_communes_reach_beyond_the_outline(haiphong_engine):
    with haiphong_engine.connect() as conn:
        km2 = conn.execute(text("""
            SELECT ST_Area(ST_Difference(
                (SELECT ST_Transform(ST_Union(geom), 3405) FROM admin_unit
                 WHERE level = 'commune' AND province_code = '31'),
                (SELECT ST_Transform(geom, 3405) FROM admin_unit
                 WHERE level = 'province' AND code = '31'))) / 1e6""")).scalar_one()
    assert 45 < km2 < 47  # the 46 km²
    area = study_area(haiphong_engine, province_code="31", on=ON)
    assert area is not None and area.communes == 114


def test_province_grid_holds_every_incident_in_its_communes(haiphong_engine):
    planted, outside, total = _plant(haiphong_engine)
    assert total == planted + 114 and planted > 250
    assert outside >= planted - 5  # the planted points are outside the outline (a few on it)
    with haiphong_engine.connect() as conn:
        in_communes = conn.execute(text("""
            SELECT count(*) FROM incident i
            WHERE i.commune_now_id IN (SELECT id FROM admin_unit WHERE level = 'commune'
                                       AND province_code = '31')""")).scalar_one()
    assert in_communes == total  # every incident is placed in a commune of the province
    hexes = hex_counts(haiphong_engine, 250, ALL, province_code="31", on=ON, with_geometry=False)
    assert hexes["count"].sum() == total
    # each incident's own hexagon is a cell of the grid (no incident binned outside it)
    cells = hex_cells(haiphong_engine, 250, province_code="31", on=ON)
    x, y = hex_centres(cells["i"].to_numpy(), cells["j"].to_numpy(), 250.0)
    assert np.allclose(x, cells["x"]) and np.allclose(y, cells["y"])
    # the other analyses over the province see them too
    xy, _ = incident_points(haiphong_engine, ALL, province_code="31", on=ON)
    assert len(xy) == total
    clusters = incident_clusters(haiphong_engine, ALL, eps_m=100_000, min_points=1,
                                 province_code="31", on=ON)
    assert clusters["count"].sum() == total


def test_a_reimported_commune_gives_a_new_area(haiphong_engine):
    """The area is kept per process under its communes' row versions: an edit is seen."""
    first = study_area(haiphong_engine, province_code="31", on=ON)
    assert study_area(haiphong_engine, province_code="31", on=ON) is first  # cached
    with haiphong_engine.begin() as conn:
        conn.execute(text("""
            UPDATE admin_unit SET geom = ST_Multi(ST_Buffer(geom, -0.001))
            WHERE id = (SELECT min(id) FROM admin_unit WHERE level = 'commune'
                        AND province_code = '31')"""))
    second = study_area(haiphong_engine, province_code="31", on=ON)
    assert second.key != first.key and second.wkb != first.wkb
    assert study_area(haiphong_engine, province_code="31", on=dt.date(2020, 1, 1)) is None
