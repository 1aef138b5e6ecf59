"""Boundary import: both eras, idempotence, repairs reported, 2009 polygons matched by name."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from data.boundaries import sources
from data.boundaries.load import import_boundaries

HAIDUONG = "30"  # pre-2025 Hải Dương: 12 districts, 207 communes (GSO list of 1 March 2025)


@pytest.fixture(scope="module")
def pre2025_haiduong_kw():
    return {"era": "pre2025", "province_code": HAIDUONG,
            "districts_path": sources.path_of(sources.DISTRICTS_PRE2025_HAIDUONG),
            "communes_2009_path": sources.path_of(sources.COMMUNES_2009_HAIDUONG)}


def test_2025_province_import_is_idempotent(engine):
    path = sources.path_of(sources.COMMUNES_2025_HAIPHONG)
    first = import_boundaries(engine, "2025", path, province_code="31")
    assert first.ok and first.inserted == 115  # 1 province + 114 communes
    parts_sql = text("SELECT array_agg(ctid ORDER BY ctid)::text FROM admin_unit_part")
    with engine.connect() as conn:
        parts_before = conn.execute(parts_sql).scalar_one()
    second = import_boundaries(engine, "2025", path, province_code="31")
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 115)
    with engine.connect() as conn:  # same geometry: the subdivided parts were not rewritten
        assert conn.execute(parts_sql).scalar_one() == parts_before
    with engine.connect() as conn:
        n, parts = conn.execute(text(
            "SELECT count(*), (SELECT count(*) FROM admin_unit_part) FROM admin_unit "
            "WHERE level = 'commune' AND valid_from = '2025-07-01' AND valid_to IS NULL "
            "AND parent_id IS NOT NULL")).one()
    assert n == 114 and parts >= 114


def test_dry_run_writes_nothing(engine):
    path = sources.path_of(sources.COMMUNES_2025_HAIPHONG)
    report = import_boundaries(engine, "2025", path, province_code="31", dry_run=True)
    assert report.ok and report.inserted == 115
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM admin_unit")).scalar_one() == 0


def test_pre2025_units_end_on_2025_07_01_and_2009_polygons_match_by_name(engine,
                                                                          pre2025_haiduong_kw):
    report = import_boundaries(engine, **pre2025_haiduong_kw)
    assert report.ok, report.errors
    with engine.connect() as conn:
        counts = dict(conn.execute(text(
            "SELECT level, count(*) FROM admin_unit WHERE code NOT LIKE '2009-%' "
            "GROUP BY level")).fetchall())
        eras = conn.execute(text(
            "SELECT DISTINCT valid_from::text, valid_to::text FROM admin_unit")).fetchall()
        tan_ky = conn.execute(text(
            "SELECT c.name, c.population, d.code, ST_Area(ST_Transform(c.geom, 3405)) > 1e6 "
            "FROM admin_unit c JOIN admin_unit d ON d.id = c.parent_id "
            "WHERE c.level = 'commune' AND c.code = '11113'")).one()
        district_geom = conn.execute(text(
            "SELECT geom IS NOT NULL FROM admin_unit WHERE level = 'district' AND code = '298'"
        )).scalar_one()
        matched, only_2009 = conn.execute(text(
            "SELECT count(*) FILTER (WHERE code NOT LIKE '2009-%' AND geom IS NOT NULL), "
            "count(*) FILTER (WHERE code LIKE '2009-%') FROM admin_unit WHERE level = 'commune'"
        )).one()
    assert counts == {"province": 1, "district": 12, "commune": 207}
    assert eras == [("-infinity", "2025-07-01")]
    assert tan_ky[0] == "Tân Kỳ" and tan_ky[1] > 0 and tan_ky[2] == "298" and tan_ky[3]
    assert district_geom
    # 265 polygons of 2009 for 207 GSO communes: every polygon is either matched or kept
    assert matched + only_2009 == 265
    assert matched >= 170  # 174 today: 33 GSO communes were formed after 2009 under new names
    assert any("2009 polygons 265" in n for n in report.notes)


def test_invalid_polygon_is_repaired_and_reported(engine, tmp_path):
    src = sources.read_vector(sources.path_of(sources.COMMUNES_2025_HAIPHONG), max_features=2)
    bowtie = {"type": "Polygon", "coordinates": [[[106.30, 20.90], [106.32, 20.92],
                                                  [106.32, 20.90], [106.30, 20.92],
                                                  [106.30, 20.90]]]}
    feats = json.loads(src.to_json())["features"]
    feats[1]["geometry"] = bowtie
    path = tmp_path / "communes.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}), encoding="utf-8")
    report = import_boundaries(engine, "2025", path, province_code="31",
                               provinces_path=sources.path_of(sources.PROVINCES_2025))
    assert report.ok, report.errors
    assert len(report.repairs) == 1
    assert report.repairs[0].row == 2 and "Self-intersection" in report.repairs[0].what
    with engine.connect() as conn:
        valid = conn.execute(text(
            "SELECT bool_and(ST_IsValid(geom)) FROM admin_unit WHERE level = 'commune'"
        )).scalar_one()
    assert valid


def test_unknown_province_is_an_error(engine):
    report = import_boundaries(engine, "2025", sources.path_of(sources.COMMUNES_2025_HAIPHONG),
                               province_code="99")
    assert not report.ok
