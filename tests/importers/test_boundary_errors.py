"""Bad boundary files, one generated file each: a named error (file, feature, code, field, what
is wrong and what is expected, in Vietnamese and English), a non-zero exit, nothing written.

Every file is written on the fly in a temp dir from three real Hải Phòng communes, in GDAL's
one-feature-per-line layout (the streamed path) and, where the reader matters, as compact JSON
(read whole by GDAL).
"""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path

import pytest
from pyproj import Geod
from sqlalchemy import text
from typer.testing import CliRunner

from antt.cli import app
from data.boundaries import sources
from data.boundaries.load import import_boundaries

BOWTIE = {"type": "Polygon", "coordinates": [[[106.30, 20.90], [106.32, 20.92], [106.32, 20.90],
                                              [106.30, 20.92], [106.30, 20.90]]]}
SQUARE = [[106.30, 20.90], [106.31, 20.90], [106.31, 20.91], [106.30, 20.91], [106.30, 20.90]]


@pytest.fixture(scope="module")
def hp_features() -> list[dict]:
    """The first three real Hải Phòng 2025 communes (GeoJSON features)."""
    path = sources.path_of(sources.COMMUNES_2025_HAIPHONG)
    feats = [json.loads(line.strip().rstrip(","))
             for line in path.read_text(encoding="utf-8").splitlines()
             if line.startswith('{ "type": "Feature"')]
    return feats[:3]


@pytest.fixture(scope="module")
def province_31(tmp_path_factory) -> Path:
    """The real 2025 province 31 (Hải Phòng) alone, as a small provinces file."""
    with gzip.open(sources.path_of(sources.PROVINCES_2025), "rt", encoding="utf-8") as fh:
        feats = [json.loads(line.strip().rstrip(",")) for line in fh
                 if line.startswith('{ "type": "Feature"')]
    feat = next(f for f in feats if f["properties"]["ma_tinh"] == "31")
    path = tmp_path_factory.mktemp("prov") / "provinces.geojson"
    write_lines(path, [feat])
    return path


def _gdal_line(f: dict) -> str:
    return ('{ "type": "Feature", "properties": ' + json.dumps(f["properties"], ensure_ascii=False)
            + ', "geometry": ' + json.dumps(f["geometry"]) + " }")


def write_lines(path: Path, features: list[dict]) -> Path:
    """GDAL's layout: one feature per line, as GDAL writes it (the importer streams these)."""
    body = ",\n".join(_gdal_line(f) for f in features)
    path.write_text('{\n"type": "FeatureCollection",\n"features": [\n' + body + "\n]\n}\n",
                    encoding="utf-8")
    return path


def write_compact(path: Path, features: list[dict]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}),
                    encoding="utf-8")
    return path


WRITERS = {"lines": write_lines, "compact": write_compact}


def _units(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM admin_unit")).scalar_one()


def _run(db_url: str, communes: Path, provinces: Path, *extra: str):
    result = CliRunner().invoke(app, ["import", "boundaries", str(communes), "--provinces",
                                      str(provinces), "--database-url", db_url, *extra],
                                env={"COLUMNS": "250"})
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"uncaught {result.exception!r}\n{result.output}")
    return result


def _import(engine, communes: Path, provinces: Path, **kw):
    return import_boundaries(engine, "2025", communes, provinces_path=provinces, **kw)


def _issues(report) -> list[tuple]:
    return [(e.file, e.row, e.code, e.field) for e in report.sorted_errors()]


@pytest.mark.parametrize("layout", ["lines", "compact"])
def test_missing_column_lists_found_and_expected(engine, db_url, hp_features, province_31,
                                                 tmp_path, layout):
    feats = copy.deepcopy(hp_features)
    for f in feats:
        del f["properties"]["ten_day_du"]
    path = WRITERS[layout](tmp_path / "communes.geojson", feats)
    report = _import(engine, path, province_31)
    assert _issues(report) == [("communes.geojson", None, None, "ten_day_du")]
    err = report.errors[0]
    assert "found: ma_xa, ten, ten_en" in err.reason_en and "expected: ma_xa, ten, ten_day_du, ma_tinh" in (
        err.reason_en)
    assert "Thiếu cột" in err.reason_vi
    result = _run(db_url, path, province_31)
    assert result.exit_code == 1 and "ten_day_du" in result.output
    assert _units(engine) == 0


def test_renamed_column_is_suggested_and_can_be_mapped(engine, hp_features, province_31,
                                                        tmp_path):
    feats = copy.deepcopy(hp_features)
    for f in feats:
        f["properties"]["TenDayDu"] = f["properties"].pop("ten_day_du")
    path = write_lines(tmp_path / "communes.geojson", feats)
    report = _import(engine, path, province_31)
    assert _issues(report) == [("communes.geojson", None, None, "ten_day_du")]
    assert "Did you mean 'TenDayDu'" in report.errors[0].reason_en
    assert _units(engine) == 0
    mapped = _import(engine, path, province_31, mapping={"ten_day_du": "tendaydu"})
    assert mapped.ok, mapped.errors
    assert mapped.inserted == 4
    with engine.connect() as conn:
        assert conn.execute(text("SELECT full_name FROM admin_unit WHERE code = '10507'")
                            ).scalar_one() == "Phường Thành Đông"


def test_not_json_is_a_file_error(engine, db_url, province_31, tmp_path):
    path = tmp_path / "communes.geojson"
    path.write_text("ma_xa,ten\n10507,Thành Đông\n", encoding="utf-8")
    report = _import(engine, path, province_31)
    assert _issues(report) == [("communes.geojson", None, None, "file")]
    assert "Cannot read" in report.errors[0].reason_en
    result = _run(db_url, path, province_31)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert _units(engine) == 0


@pytest.mark.parametrize("layout", ["lines", "compact"])
def test_cut_file_is_a_file_error(engine, hp_features, province_31, tmp_path, layout):
    path = WRITERS[layout](tmp_path / "communes.geojson", hp_features)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    report = _import(engine, path, province_31)
    assert not report.ok
    assert {(e.file, e.field) for e in report.errors} <= {("communes.geojson", "file"),
                                                         ("communes.geojson", "geometry")}
    assert _units(engine) == 0


def test_file_cut_between_features_is_noticed(engine, hp_features, province_31, tmp_path):
    """Cut exactly after a line: every remaining line is a whole feature, but the closing
    brackets are missing, so features may be lost. That is an error, not a smaller import."""
    path = write_lines(tmp_path / "communes.geojson", hp_features)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:5]), encoding="utf-8")  # header (3 lines) + 2 features
    report = _import(engine, path, province_31)
    assert _issues(report) == [("communes.geojson", None, None, "file")]
    assert "cut off" in report.errors[0].reason_en
    assert _units(engine) == 0


@pytest.mark.parametrize("layout", ["lines", "compact"])
@pytest.mark.parametrize("geometry", [None, {"type": "Polygon", "coordinates": []},
                                      {"type": "MultiPolygon", "coordinates": []}])
def test_empty_geometry_is_an_error_not_a_null_commune(engine, db_url, hp_features, province_31,
                                                       tmp_path, layout, geometry):
    feats = copy.deepcopy(hp_features)
    feats[1]["geometry"] = geometry
    path = WRITERS[layout](tmp_path / "communes.geojson", feats)
    report = _import(engine, path, province_31)
    code = feats[1]["properties"]["ma_xa"]
    assert _issues(report) == [("communes.geojson", 2, code, "geometry")]
    assert "Polygon or MultiPolygon" in report.errors[0].reason_en  # what is expected
    result = _run(db_url, path, province_31)
    assert result.exit_code == 1
    assert _units(engine) == 0


@pytest.mark.parametrize("geometry,name", [
    ({"type": "Point", "coordinates": [106.3, 20.9]}, "Point"),
    ({"type": "LineString", "coordinates": SQUARE}, "LineString"),
    ({"type": "MultiPoint", "coordinates": SQUARE[:2]}, "MultiPoint"),
])
def test_non_polygon_geometry_is_an_error(engine, hp_features, province_31, tmp_path, geometry,
                                          name):
    feats = copy.deepcopy(hp_features)
    feats[2]["geometry"] = geometry
    path = write_lines(tmp_path / "communes.geojson", feats)
    report = _import(engine, path, province_31, polygon_parts=True)  # no polygon part to take
    assert _issues(report) == [("communes.geojson", 3, feats[2]["properties"]["ma_xa"],
                                "geometry")]
    assert name in report.errors[0].reason_en
    assert _units(engine) == 0


@pytest.mark.parametrize("layout", ["lines", "compact"])
def test_geometry_collection_needs_the_polygon_parts_flag(engine, db_url, hp_features,
                                                          province_31, tmp_path, layout):
    feats = copy.deepcopy(hp_features)
    feats[1]["geometry"] = {"type": "GeometryCollection", "geometries": [
        {"type": "Polygon", "coordinates": [SQUARE]},
        {"type": "LineString", "coordinates": SQUARE[:2]},
        {"type": "Point", "coordinates": [106.4, 20.8]}]}
    path = WRITERS[layout](tmp_path / "communes.geojson", feats)
    code = feats[1]["properties"]["ma_xa"]
    report = _import(engine, path, province_31)
    assert _issues(report) == [("communes.geojson", 2, code, "geometry")]
    assert "GeometryCollection" in report.errors[0].reason_en
    assert "--polygon-parts" in report.errors[0].reason_en
    assert _units(engine) == 0
    result = _run(db_url, path, province_31, "--polygon-parts")
    assert result.exit_code == 0, result.output
    assert "1 polygon part" in result.output and "dropped 2" in result.output
    with engine.connect() as conn:
        area = conn.execute(text("SELECT ST_Area(ST_Transform(geom, 3405)) FROM admin_unit "
                                 "WHERE code = :c"), {"c": code}).scalar_one()
    geod_area = abs(Geod(ellps="WGS84").polygon_area_perimeter(*zip(*SQUARE, strict=True))[0])
    assert area == pytest.approx(geod_area, rel=2e-3)  # 0.01° x 0.01° at 20.9° N: ~1.16 km²


@pytest.mark.parametrize("layout", ["lines", "compact"])
def test_unclosed_ring_is_named(engine, db_url, hp_features, province_31, tmp_path, layout):
    feats = copy.deepcopy(hp_features)
    feats[0]["geometry"] = {"type": "Polygon", "coordinates": [SQUARE[:-1]]}
    path = WRITERS[layout](tmp_path / "communes.geojson", feats)
    report = _import(engine, path, province_31)
    assert _issues(report) == [("communes.geojson", 1, "10507", "geometry")]
    assert "not closed" in report.errors[0].reason_en
    assert "khép kín" in report.errors[0].reason_vi
    result = _run(db_url, path, province_31)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert _units(engine) == 0


def test_self_crossing_polygon_is_repaired_and_reported_with_the_area_change(
        engine, db_url, hp_features, province_31, tmp_path):
    feats = copy.deepcopy(hp_features)
    feats[1]["geometry"] = BOWTIE
    code = feats[1]["properties"]["ma_xa"]
    path = write_lines(tmp_path / "communes.geojson", feats)
    dry = _import(engine, path, province_31, dry_run=True)
    assert dry.ok and _units(engine) == 0
    assert [(r.file, r.row, r.code) for r in dry.repairs] == [("communes.geojson", 2, code)]
    # The bowtie's two lobes cancel in the drawn (signed) area; repaired, they are two
    # triangles of 0.0001 square degrees each around 20.91° N: about 2.3 km².
    lobes = [[(106.30, 20.90), (106.31, 20.91), (106.30, 20.92)],
             [(106.32, 20.90), (106.32, 20.92), (106.31, 20.91)]]
    geod = Geod(ellps="WGS84")
    expected = sum(abs(geod.polygon_area_perimeter(*zip(*t, strict=True))[0]) for t in lobes)
    rep = dry.repairs[0]
    assert rep.area_before_m2 == pytest.approx(0, abs=100)  # lobes cancel (to 1e-4)
    assert rep.area_after_m2 == pytest.approx(expected, rel=2e-3)
    assert "Self-intersection" in rep.what
    result = _run(db_url, path, province_31)
    assert result.exit_code == 0, result.output
    assert "sửa hình học / geometry repaired: 1" in result.output
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT ST_Area(ST_Transform(geom, 3405)), ST_IsValid(geom) "
                                   "FROM admin_unit WHERE code = :c"), {"c": code}).one()
    assert stored[0] == pytest.approx(rep.area_after_m2, rel=1e-6) and stored[1]


@pytest.mark.parametrize("layout", ["lines", "compact"])
def test_duplicate_code_in_file(engine, db_url, hp_features, province_31, tmp_path, layout):
    feats = copy.deepcopy(hp_features)
    feats[2]["properties"]["ma_xa"] = feats[0]["properties"]["ma_xa"]
    path = WRITERS[layout](tmp_path / "communes.geojson", feats)
    report = _import(engine, path, province_31)
    assert _issues(report) == [("communes.geojson", 3, "10507", "ma_xa")]
    assert "first at feature 1" in report.errors[0].reason_en
    result = _run(db_url, path, province_31)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert _units(engine) == 0


def test_codes_and_parents_that_do_not_exist(engine, hp_features, province_31, tmp_path):
    feats = copy.deepcopy(hp_features)
    feats[0]["properties"]["ma_xa"] = "99999"    # well formed, not in the 2025 list
    feats[1]["properties"]["ma_tinh"] = "99"     # no such province
    feats[2]["properties"]["ma_xa"] = "1O5O7"    # letters O for zeros
    path = write_lines(tmp_path / "communes.geojson", feats)
    report = _import(engine, path, province_31)
    assert _issues(report) == [("communes.geojson", 1, "99999", "ma_xa"),
                               ("communes.geojson", 2, feats[1]["properties"]["ma_xa"], "ma_tinh"),
                               ("communes.geojson", 3, "1O5O7", "ma_xa")]
    assert "not in the official 2025 code lists" in report.errors[0].reason_en
    assert "province 99 does not exist" in report.errors[1].reason_en
    assert "5 digits" in report.errors[2].reason_en
    assert _units(engine) == 0
    # A code newer than the official list can be accepted on purpose; it is then noted.
    feats[1]["properties"]["ma_tinh"] = "31"
    feats[2]["properties"]["ma_xa"] = "10508"
    write_lines(path, feats)
    assert not _import(engine, path, province_31).ok
    allowed = _import(engine, path, province_31, allow_unlisted_codes=True)
    assert allowed.ok, allowed.errors
    assert any("99999" in n for n in allowed.notes)


@pytest.mark.parametrize("shift,where", [(-100.0, "outside"), (0.02, "partly")])
def test_geometry_outside_vietnam(engine, hp_features, province_31, tmp_path, shift, where):
    feats = copy.deepcopy(hp_features)
    ring = [[x + (shift if i == 2 or where == "outside" else 0), y]
            for i, (x, y) in enumerate(SQUARE)]
    if where == "partly":
        ring = [[117.99, 20.90], [118.01, 20.90], [118.01, 20.91], [117.99, 20.91],
                [117.99, 20.90]]
    feats[1]["geometry"] = {"type": "Polygon", "coordinates": [ring]}
    path = write_lines(tmp_path / "communes.geojson", feats)
    report = _import(engine, path, province_31)
    assert _issues(report) == [("communes.geojson", 2, feats[1]["properties"]["ma_xa"],
                                "geometry")]
    assert "outside vietnam" in report.errors[0].reason_en.lower()
    assert "--crs" in report.errors[0].reason_en
    assert _units(engine) == 0


def test_bad_provinces_file_is_named_too(engine, hp_features, province_31, tmp_path):
    prov = json.loads(province_31.read_text(encoding="utf-8").splitlines()[3])
    del prov["properties"]["ten"]
    bad = write_lines(tmp_path / "provinces.geojson", [prov])
    path = write_lines(tmp_path / "communes.geojson", hp_features)
    report = _import(engine, path, bad)
    assert _issues(report) == [("provinces.geojson", None, None, "ten")]
    assert _units(engine) == 0


def test_every_bad_feature_is_listed_and_dry_run_shows_the_same(engine, db_url, hp_features,
                                                                province_31, tmp_path):
    feats = copy.deepcopy(hp_features)
    feats[0]["geometry"] = None
    feats[1]["properties"]["ma_tinh"] = "99"
    feats[2]["geometry"] = {"type": "Point", "coordinates": [106.3, 20.9]}
    path = write_lines(tmp_path / "communes.geojson", feats)
    real = _import(engine, path, province_31)
    dry = _import(engine, path, province_31, dry_run=True)
    assert _issues(real) == _issues(dry) == [
        ("communes.geojson", 1, "10507", "geometry"),
        ("communes.geojson", 2, feats[1]["properties"]["ma_xa"], "ma_tinh"),
        ("communes.geojson", 3, feats[2]["properties"]["ma_xa"], "geometry")]
    out = tmp_path / "r.json"
    result = _run(db_url, path, province_31, "--dry-run", "--report", str(out))
    assert result.exit_code == 1
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert [(e["file"], e["row"], e["code"], e["field"]) for e in saved["errors"]] == _issues(dry)
    assert _units(engine) == 0


def test_clean_small_file_still_imports(engine, db_url, hp_features, province_31, tmp_path):
    path = write_lines(tmp_path / "communes.geojson", hp_features)
    result = _run(db_url, path, province_31)
    assert result.exit_code == 0, result.output
    assert _units(engine) == 4
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM admin_unit WHERE geom IS NULL")
                            ).scalar_one() == 0


def test_pre2025_code_list_with_a_missing_column(engine, tmp_path):
    csv_path = tmp_path / "units.csv"
    csv_path.write_text("ma_tinh,ten_tinh,ma_huyen,ten_huyen,loai_huyen,ma_xa,ten_xa\n"
                        "30,Tỉnh Hải Dương,288,Thành phố Hải Dương,Thành phố,10507,Phường X\n",
                        encoding="utf-8")
    report = import_boundaries(engine, "pre2025", csv_path, districts_path=None,
                               provinces_path=None, communes_2009_path=None)
    assert _issues(report) == [("units.csv", None, None, "loai_xa")]
    assert "expected: ma_tinh, ten_tinh" in report.errors[0].reason_en
    assert _units(engine) == 0
