"""Village import: polygons (repaired, reported) or centre points turned into Voronoi cells."""

from __future__ import annotations

import json

import pytest
import shapely
from sqlalchemy import text

from data.boundaries import sources
from data.importers.core import ImportOptions
from data.importers.villages import import_villages

COMMUNE = "10507"


@pytest.fixture(scope="module")
def commune_shape():
    frame = sources.read_vector(sources.path_of(sources.COMMUNES_2025_HAIPHONG))
    return frame[frame["ma_xa"] == COMMUNE].geometry.iloc[0]


def halves(shape):
    """The commune cut into a west and an east half (two village polygons)."""
    x0, y0, x1, y1 = shape.bounds
    mid = (x0 + x1) / 2
    west = shape.intersection(shapely.box(x0 - 1, y0 - 1, mid, y1 + 1))
    east = shape.intersection(shapely.box(mid, y0 - 1, x1 + 1, y1 + 1))
    return west, east


def _write(path, features):
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}),
                    encoding="utf-8")
    return path


def _feature(geom, **props):
    return {"type": "Feature", "properties": props,
            "geometry": geom if isinstance(geom, dict) else shapely.geometry.mapping(geom)}


def test_polygon_villages_get_their_commune_by_code_or_by_place(haiphong_engine, commune_shape,
                                                                tmp_path):
    west, east = halves(commune_shape)
    f = _write(tmp_path / "thon.geojson", [
        _feature(west, ma_thon="T1", ten="Thôn Đông", loai="thôn", ma_xa=COMMUNE, dan_so=1200),
        _feature(east, ma_thon="T2", ten="Tổ dân phố 3", loai="TDP", so_ho=300),
    ])
    report = import_villages(haiphong_engine, f)
    assert report.ok, report.errors
    assert report.inserted == 2
    again = import_villages(haiphong_engine, f)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    moved = _write(tmp_path / "thon.geojson", [  # same name: the source text is equal
        _feature(west, ma_thon="T1", ten="Thôn Đông", loai="thôn", ma_xa=COMMUNE, dan_so=1200),
        _feature(east.buffer(-0.0005), ma_thon="T2", ten="Tổ dân phố 3", loai="TDP", so_ho=300),
    ])
    changed = import_villages(haiphong_engine, moved)
    assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, 1)
    with haiphong_engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT v.code, v.kind, v.name, p.code, v.population, v.households, v.valid_from::text "
            "FROM admin_unit v JOIN admin_unit p ON p.id = v.parent_id "
            "WHERE v.level = 'village' ORDER BY v.code")).fetchall()
    assert [tuple(r) for r in rows] == [
        ("T1", "thôn", "Đông", COMMUNE, 1200, None, "2025-07-01"),
        ("T2", "tổ dân phố", "3", COMMUNE, None, 300, "2025-07-01")]


def test_self_intersecting_village_is_repaired_and_reported(haiphong_engine, commune_shape,
                                                            tmp_path):
    p = commune_shape.representative_point()
    x, y, d = p.x, p.y, 0.002
    bowtie = {"type": "Polygon", "coordinates": [[[x - d, y - d], [x + d, y + d], [x + d, y - d],
                                                  [x - d, y + d], [x - d, y - d]]]}
    f = _write(tmp_path / "thon.geojson", [_feature(bowtie, ma="B1", ten="Xóm Bướm",
                                                    ma_xa=COMMUNE)])
    report = import_villages(haiphong_engine, f)
    assert report.ok, report.errors
    assert [r.row for r in report.repairs] == [1]
    assert "Self-intersection" in report.repairs[0].what


def test_degenerate_village_polygon_is_an_error(haiphong_engine, commune_shape, tmp_path):
    p = commune_shape.representative_point()
    flat = {"type": "Polygon", "coordinates": [[[p.x, p.y], [p.x + 0.01, p.y], [p.x + 0.02, p.y],
                                                [p.x, p.y]]]}
    west, _ = halves(commune_shape)
    f = _write(tmp_path / "thon.geojson", [
        _feature(west, ma="A1", ten="Thôn A", ma_xa=COMMUNE),
        _feature(flat, ma="A2", ten="Thôn B", ma_xa=COMMUNE)])
    report = import_villages(haiphong_engine, f)
    assert [(e.row, e.field) for e in report.errors] == [(2, "geometry")]
    with haiphong_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM admin_unit WHERE level = 'village'")
                            ).scalar_one() == 0


def test_unknown_commune_code(haiphong_engine, commune_shape, tmp_path):
    west, _ = halves(commune_shape)
    f = _write(tmp_path / "thon.geojson", [_feature(west, ma="A1", ten="Thôn A", ma_xa="00000")])
    report = import_villages(haiphong_engine, f)
    assert [(e.row, e.field) for e in report.errors] == [(1, "commune_code")]


def test_centre_points_become_voronoi_cells_tiling_the_commune(haiphong_engine, commune_shape,
                                                               tmp_path, write_csv):
    x0, y0, x1, y1 = commune_shape.bounds
    centres = [p for p in (shapely.Point(x0 + (x1 - x0) * fx, y0 + (y1 - y0) * fy)
                           for fx, fy in ((0.3, 0.3), (0.7, 0.4), (0.5, 0.75), (0.5, 0.5)))
               if commune_shape.contains(p)][:3]
    assert len(centres) == 3
    f = write_csv(tmp_path / "tam_thon.csv", ["ma_thon", "ten", "ma_xa", "kinh_do", "vi_do"],
                  [[f"C{i}", f"Thôn {i}", COMMUNE, p.x, p.y] for i, p in enumerate(centres)])
    report = import_villages(haiphong_engine, f, ImportOptions())
    assert report.ok, report.errors
    assert report.inserted == 3
    with haiphong_engine.connect() as conn:
        union_vs_commune, holds_own = conn.execute(text(
            "SELECT ST_Area(ST_Union(v.geom)::geography) / ST_Area(c.geom::geography), "
            "bool_and(ST_Intersects(v.geom, ST_SetSRID(ST_MakePoint(t.x, t.y), 4326))) "
            "FROM admin_unit v JOIN admin_unit c ON c.id = v.parent_id "
            "JOIN (VALUES ('C0', :x0, :y0), ('C1', :x1, :y1), ('C2', :x2, :y2)) t(code, x, y) "
            "ON t.code = v.code WHERE v.level = 'village' GROUP BY c.geom"),
            {f"{k}{i}": getattr(p, k) for i, p in enumerate(centres) for k in "xy"}).one()
    assert union_vs_commune == pytest.approx(1.0, abs=1e-6)
    assert holds_own
