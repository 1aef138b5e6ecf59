"""Voronoi village cells on real Hải Phòng 2025 communes."""

from __future__ import annotations

import pandas as pd
import pytest
import shapely
from sqlalchemy import text

from geo.villages import VillageCellError, voronoi_village_cells

# Several communes with several centres each, one with a single centre.
CENTRES_SQL = """
WITH picked AS (
  SELECT id, code, geom, row_number() OVER (ORDER BY code) AS k
  FROM admin_unit WHERE level = 'commune' ORDER BY code LIMIT 6
)
SELECT p.code AS commune_code, p.code || '-' || d.path[1] AS code,
       ST_X(d.geom) AS lon, ST_Y(d.geom) AS lat
FROM picked p,
     LATERAL ST_Dump(ST_GeneratePoints(p.geom, (CASE WHEN p.k = 1 THEN 1 ELSE 3 + p.k END)::int, 42)) d
ORDER BY 2
"""


def _store_cells(conn, cells) -> None:
    conn.execute(text("CREATE TEMP TABLE cell (code text, commune_code text, geom geometry)"))
    conn.execute(
        text("INSERT INTO cell SELECT c, cc, ST_SetSRID(ST_GeomFromWKB(decode(w, 'hex')), 4326) "
             "FROM unnest(CAST(:c AS text[]), CAST(:cc AS text[]), CAST(:w AS text[])) AS t(c, cc, w)"),
        {"c": cells["code"].tolist(), "cc": cells["commune_code"].tolist(),
         "w": [shapely.to_wkb(g, hex=True) for g in cells.geometry]})


@pytest.fixture
def cells_and_centres(haiphong_engine):
    with haiphong_engine.begin() as conn:
        centres = pd.read_sql(text(CENTRES_SQL), conn)
        cells = voronoi_village_cells(conn, centres)
        _store_cells(conn, cells)
        conn.execute(text("CREATE TEMP TABLE centre (code text, p geometry)"))
        conn.execute(text("INSERT INTO centre SELECT c, ST_SetSRID(ST_MakePoint(x, y), 4326) "
                          "FROM unnest(CAST(:c AS text[]), CAST(:x AS float8[]), "
                          "CAST(:y AS float8[])) AS t(c, x, y)"),
                     {"c": centres["code"].tolist(), "x": centres["lon"].tolist(),
                      "y": centres["lat"].tolist()})
        yield conn, centres, cells


def test_one_valid_multipolygon_per_centre_in_input_order(cells_and_centres):
    _, centres, cells = cells_and_centres
    assert cells["code"].tolist() == centres["code"].tolist()
    assert set(cells.geometry.geom_type) == {"MultiPolygon"}
    assert cells.geometry.is_valid.all()
    assert not cells["moved"].any()


def test_cells_cover_their_commune(cells_and_centres):
    conn = cells_and_centres[0]
    rows = conn.execute(text("""
        SELECT u.code, ST_Area(ST_Transform(u.geom, 3405)) AS commune_m2,
               sum(ST_Area(ST_Transform(c.geom, 3405))) AS cells_m2,
               ST_Area(ST_Transform(ST_Difference(u.geom, ST_Union(c.geom)), 3405)) AS gap_m2
        FROM cell c JOIN admin_unit u ON u.level = 'commune' AND u.code = c.commune_code
        GROUP BY u.code, u.geom""")).all()
    assert len(rows) == 6
    for code, commune_m2, cells_m2, gap_m2 in rows:
        assert abs(cells_m2 - commune_m2) <= 0.001 * commune_m2, code
        assert gap_m2 <= 0.001 * commune_m2, code


def test_cells_do_not_overlap(cells_and_centres):
    conn = cells_and_centres[0]
    overlap, pairs = conn.execute(text("""
        SELECT coalesce(sum(ST_Area(ST_Transform(ST_Intersection(a.geom, b.geom), 3405))), 0),
               count(*)
        FROM cell a JOIN cell b ON a.code < b.code AND a.commune_code = b.commune_code
         AND ST_Intersects(a.geom, b.geom)""")).one()
    assert pairs > 0  # neighbours touch ...
    assert overlap < 1.0  # ... but share no area (under 1 m² in total, float noise)


def test_each_cell_contains_its_own_centre(cells_and_centres):
    conn = cells_and_centres[0]
    outside = conn.execute(text(
        "SELECT count(*) FROM cell c JOIN centre p USING (code) WHERE NOT ST_Contains(c.geom, p.p)"
    )).scalar_one()
    total = conn.execute(text("SELECT count(*) FROM cell")).scalar_one()
    assert total == len(cells_and_centres[1]) and outside == 0


def test_single_centre_gets_the_whole_commune(cells_and_centres):
    conn = cells_and_centres[0]
    diff = conn.execute(text("""
        SELECT ST_Area(ST_Transform(ST_SymDifference(c.geom, u.geom), 3405))
        FROM cell c JOIN admin_unit u ON u.level = 'commune' AND u.code = c.commune_code
        WHERE c.commune_code = (SELECT min(code) FROM admin_unit WHERE level = 'commune')""")
    ).scalar_one()
    assert diff < 1.0


def test_outside_and_duplicate_centres(haiphong_engine):
    with haiphong_engine.begin() as conn:
        code, x, y, xmin = conn.execute(text(
            "SELECT code, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)), "
            "ST_XMin(geom) FROM admin_unit WHERE level = 'commune' ORDER BY code LIMIT 1")).one()
        centres = pd.DataFrame({
            "code": ["a", "b", "c"], "commune_code": [code] * 3,
            "lon": [x, x, xmin - 0.01], "lat": [y, y, y]})  # b duplicates a; c lies outside
        cells = voronoi_village_cells(conn, centres)
        assert cells["moved"].tolist() == [False, False, True]
        areas = cells.to_crs(3405).area
        assert (areas > 0).all()
        _store_cells(conn, cells)
        overlap = conn.execute(text(
            "SELECT sum(ST_Area(ST_Transform(ST_Intersection(a.geom, b.geom), 3405))) "
            "FROM cell a JOIN cell b ON a.code < b.code")).scalar_one()
        assert overlap < 1.0


def test_bad_input_is_named(haiphong_engine):
    with haiphong_engine.begin() as conn:
        with pytest.raises(VillageCellError, match="unknown communes.*99999"):
            voronoi_village_cells(conn, pd.DataFrame(
                {"code": ["x"], "commune_code": ["99999"], "lon": [106.6], "lat": [20.8]}))
        with pytest.raises(VillageCellError, match="duplicate village codes"):
            voronoi_village_cells(conn, pd.DataFrame(
                {"code": ["x", "x"], "commune_code": ["1", "1"], "lon": [1, 2], "lat": [1, 2]}))
