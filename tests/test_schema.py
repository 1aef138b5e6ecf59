"""The schema: constraints, the unit assignment trigger, VN-2000 codes, and ORM agreement."""

from __future__ import annotations

import pytest
from pyproj import Transformer
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from antt.crs import pinned
from antt.models import Base


def test_orm_models_match_migrated_tables(engine):
    insp = inspect(engine)
    for table in Base.metadata.sorted_tables:
        db_cols = {c["name"] for c in insp.get_columns(table.name)}
        assert db_cols == {c.name for c in table.columns}, table.name


def test_vn2000_tm3_zone_matches_pyproj_within_1m(engine):
    """EPSG:9209 (missing from PostGIS 3.3) is inserted, with the 6960 datum shift pinned."""
    x, y = Transformer.from_crs(pinned(9209), 4326, always_xy=True).transform(575000.0, 2335000.0)
    with engine.connect() as conn:
        dist = conn.execute(text(
            "SELECT ST_Distance(ST_Transform(ST_SetSRID(ST_MakePoint(575000, 2335000), 9209), "
            "4326)::geography, ST_SetSRID(ST_MakePoint(:x, :y), 4326)::geography)"),
            {"x": x, "y": y}).scalar_one()
        n = conn.execute(text(
            "SELECT count(*) FROM spatial_ref_sys WHERE srid BETWEEN 9205 AND 9218 "
            "AND proj4text LIKE '%towgs84=-191.9044%'")).scalar_one()
    assert dist < 1.0
    assert n == 14


def test_vn2000_shift_is_applied_not_ignored():
    """Without the pinned shift the same coordinates land hundreds of metres away."""
    from pyproj import CRS

    x1, y1 = Transformer.from_crs(pinned(9209), 4326, always_xy=True).transform(575000, 2335000)
    bare = CRS.from_proj4("+proj=tmerc +lat_0=0 +lon_0=105.5 +k=0.9999 +x_0=500000 +y_0=0 "
                          "+ellps=WGS84 +units=m +no_defs")
    x2, y2 = Transformer.from_crs(bare, 4326, always_xy=True).transform(575000, 2335000)
    assert abs(x1 - x2) + abs(y1 - y2) > 1e-3  # > ~100 m


@pytest.mark.parametrize("wkt", [
    "POLYGON((105 21, 105.1 21.1, 105.1 21, 105 21.1, 105 21))",  # bow-tie: invalid
    "POLYGON((0 0, 1 0, 1 1, 0 1, 0 0))",  # outside Vietnam
])
def test_unit_geometry_constraints(engine, wkt):
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO admin_unit (level, code, name, name_search, geom) "
            "VALUES ('commune', 'x', 'x', 'x', ST_Multi(ST_GeomFromText(:w, 4326)))"), {"w": wkt})


def test_incident_gets_commune_by_spatial_join(haiphong_engine):
    with haiphong_engine.begin() as conn:
        row = conn.execute(text(
            "SELECT code, ST_X(ST_PointOnSurface(geom)) x, ST_Y(ST_PointOnSurface(geom)) y "
            "FROM admin_unit WHERE level = 'commune' AND name = 'Tân Kỳ'")).one()
        got = conn.execute(text(
            "INSERT INTO incident (category_code, occurred_at, geom) VALUES ('crime/theft', "
            "'2026-03-01T10:00+07', ST_SetSRID(ST_MakePoint(:x, :y), 4326)) "
            "RETURNING (SELECT code FROM admin_unit WHERE id = commune_id)"),
            {"x": row.x, "y": row.y}).scalar_one()
    assert got == row.code


def test_point_on_shared_boundary_takes_smallest_code(haiphong_engine):
    """Tie-break: a point on the edge between two communes goes to the smaller code."""
    with haiphong_engine.begin() as conn:
        pair = conn.execute(text(
            """
            SELECT a.code ca, b.code cb,
                   ST_AsText(ST_PointOnSurface(ST_Intersection(a.geom, b.geom))) p
            FROM admin_unit a JOIN admin_unit b ON a.level = 'commune' AND b.level = 'commune'
             AND a.code < b.code AND ST_Intersects(a.geom, b.geom)
            LIMIT 1
            """)).one()
        got = conn.execute(text(
            "SELECT code FROM admin_unit WHERE id = unit_at(ST_GeomFromText(:p, 4326), "
            "'commune', '2026-01-01')"), {"p": pair.p}).scalar_one()
    assert got == min(pair.ca, pair.cb)
