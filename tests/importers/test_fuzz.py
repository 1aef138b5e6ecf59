"""Property-based damage (Hypothesis) thrown at every importer through the CLI.

Each importer gets a small valid file (checked to import cleanly in a dry run), then Hypothesis
damages it: the file is cut inside a row or anywhere (GeoJSON, XLSX), a typed cell gets a value
of the wrong type, two columns are swapped, a geometry is replaced by a random bad one (none,
empty, wrong type, collections, unclosed or collapsed rings, outside Vietnam or outside every
loaded commune), columns are removed or renamed, codes duplicated or made up. Only damage that
makes the file wrong is generated (a cut exactly between two rows is a valid smaller file, so
cuts end inside a row). For every example:

* no uncaught exception: the CLI exits 1 or 2 (never a traceback);
* a named error: the JSON report lists at least one error with its field and a reason in
  Vietnamese and English, and never the last-resort "the database refused" (the checks must
  catch it first);
* row counts of every table the importers write are unchanged.

One cloned database per test; examples share it, so the row counts are the reset check.
Bounded: max_examples per test and no deadline (the database's speed varies on a shared box).
"""

from __future__ import annotations

import copy
import csv
import gzip
import io
import json
import os
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from typer.testing import CliRunner

from antt.cli import app
from antt.text import fold
from data.boundaries import sources
from data.importers import vocabulary
from data.importers.fields import _parse_one
from data.importers.kinds import POINT_KINDS

# ANTT_FUZZ_EXAMPLES=500 for a longer hunt; the suite's default keeps each test under a minute.
FUZZ = settings(max_examples=int(os.environ.get("ANTT_FUZZ_EXAMPLES", "30")), deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much])

TABLES = ("incident", "security_model", "model_rating", "fire_group", "institution",
          "institution_year", "launch_point", "admin_unit", "admin_unit_part", "reach_cache")

# Three communes of Hải Phòng: one base row per commune, at an interior point of it.
COMMUNES = ("10507", "10525", "10532")

BASE: dict[str, tuple[list[str], list[list[str]]]] = {
    "incidents": (["ma", "loai", "ngay", "kinh_do", "vi_do", "so_nguoi_chet",
                   "thanh_thieu_nien", "trang_thai"],
                  [["I{n}", "crime/theft", "2025-08-0{n} 08:00", "{lon}", "{lat}", "0", "co",
                    "moi"]]),
    "models": (["ma", "loai", "ten", "ngay_thanh_lap", "kinh_do", "vi_do", "trang_thai",
                "xep_loai", "ngay_xep_loai"],
               [["M{n}", "to_tu_quan", "Tổ tự quản {n}", "2024-03-1{n}", "{lon}", "{lat}",
                 "hoat dong", "kha", "2025-01-0{n}"]]),
    "fire-groups": (["ma", "ten", "so_ho", "ngay_thanh_lap", "kinh_do", "vi_do"],
                    [["F{n}", "Tổ liên gia {n}", "1{n}", "2024-05-0{n}", "{lon}", "{lat}"]]),
    "institutions": (["ma", "loai", "ten", "nam", "dat_chuan", "kinh_do", "vi_do"],
                     [["S{n}", "truong hoc", "Trường THCS {n}", "2025", "co", "{lon}",
                       "{lat}"]]),
    "launch-points": (["ma", "ten", "chu_de", "ngay_phat_dong", "trang_thai", "kinh_do",
                       "vi_do"],
                      [["L{n}", "Điểm phát động {n}", "Ngày hội toàn dân", "2025-08-1{n}",
                        "ke hoach", "{lon}", "{lat}"]]),
    "villages": (["ma", "ten", "ma_xa", "kinh_do", "vi_do"],
                 [["T{n}", "Thôn {n}", "{commune}", "{lon}", "{lat}"]]),
}

# Typed columns whose value a damaged cell replaces, by kind: column -> importer field name.
TYPED = {
    "incidents": {"loai": "category", "ngay": "occurred_at", "kinh_do": None, "vi_do": None,
                  "so_nguoi_chet": "deaths", "thanh_thieu_nien": "youth_involved",
                  "trang_thai": "status"},
    "models": {"loai": "type_code", "ngay_thanh_lap": "founded_on", "kinh_do": None,
               "vi_do": None, "trang_thai": "status", "xep_loai": "rating",
               "ngay_xep_loai": "rated_on"},
    "fire-groups": {"so_ho": "households", "ngay_thanh_lap": "founded_on", "kinh_do": None,
                    "vi_do": None},
    "institutions": {"loai": "kind", "nam": "year", "dat_chuan": "antt_safe", "kinh_do": None,
                     "vi_do": None},
    "launch-points": {"ngay_phat_dong": "launch_date", "trang_thai": "status", "kinh_do": None,
                      "vi_do": None},
    "villages": {"ma_xa": "commune_code", "kinh_do": None, "vi_do": None},
}

# Column pairs whose swap always leaves at least one value that cannot be read.
SWAPS = {
    "incidents": [("loai", "ngay"), ("ngay", "kinh_do"), ("kinh_do", "vi_do"),
                  ("ma", "so_nguoi_chet"), ("loai", "kinh_do"), ("trang_thai", "thanh_thieu_nien")],
    "models": [("loai", "ten"), ("ngay_thanh_lap", "ten"), ("kinh_do", "vi_do"),
               ("xep_loai", "trang_thai")],
    "fire-groups": [("so_ho", "ngay_thanh_lap"), ("ten", "so_ho"), ("kinh_do", "vi_do")],
    "institutions": [("loai", "ten"), ("nam", "loai"), ("dat_chuan", "nam"), ("kinh_do", "vi_do")],
    "launch-points": [("ngay_phat_dong", "chu_de"), ("trang_thai", "ten"), ("kinh_do", "vi_do")],
    "villages": [("kinh_do", "vi_do"), ("ma_xa", "ten")],
}

MODEL_WORDS = {"to_tu_quan", "dong_ho_tu_quan", "camera_antt", "tai_hoa_nhap",
               "an_toan_giao_thong", "thanh_thieu_nien", "truong_hoc_an_toan",
               "doanh_nghiep_an_toan", "pccc_lien_gia"}


@pytest.fixture(scope="module")
def base_rows(haiphong_points) -> dict[str, tuple[list[str], list[list[str]]]]:
    out = {}
    for kind, (header, (template,)) in BASE.items():
        rows = []
        for n, code in enumerate(COMMUNES, start=1):
            lon, lat = haiphong_points[code]
            rows.append([c.format(n=n, lon=f"{lon:.6f}", lat=f"{lat:.6f}", commune=code)
                         for c in template])
        out[kind] = (header, rows)
    return out


def _csv(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _counts(url: str) -> dict[str, int]:
    from antt.db import make_engine

    eng = make_engine(url)
    try:
        with eng.connect() as conn:
            return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                    for t in TABLES}
    finally:
        eng.dispose()


def _run(url: str, args: list[str], report: Path):
    report.unlink(missing_ok=True)
    return CliRunner().invoke(app, ["import", *args, "--database-url", url, "--report",
                                    str(report)], env={"COLUMNS": "200"})


def assert_refused(url: str, args: list[str], report: Path, before: dict[str, int]) -> None:
    """The property: exit 1 or 2 with a named error, no exception, nothing written."""
    result = _run(url, args, report)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"uncaught {type(result.exception).__name__}: {result.exception}\n{result.output}")
    assert result.exit_code in (1, 2), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 1:
        errors = json.loads(report.read_text(encoding="utf-8"))["errors"]
        assert errors, result.output
        for e in errors:
            assert e["field"] and e["reason_vi"] and e["reason_en"], e
            assert e["field"] != "database", e  # the checks, not the database, must refuse
        assert "Lỗi / errors" in result.output
    assert _counts(url) == before


# -- damage strategies -------------------------------------------------------------------------
LETTERS = st.text(alphabet=st.one_of(st.characters(categories=["L"]), st.just(" ")),
                  min_size=1, max_size=12).filter(lambda s: s.strip() != "")


def _unreadable(kind: str, column: str, value: str) -> bool:
    """True when VALUE cannot be read in COLUMN of KIND (so the file is certainly wrong)."""
    name = TYPED[kind][column]
    if name is None or name == "commune_code":
        return True  # letters are never coordinates nor a (digit) commune code
    if name == "category":
        return vocabulary.resolve(value) is None
    if name == "type_code":
        return value.strip().lower() not in MODEL_WORDS and fold(value) not in {
            "to tu quan ve an ninh trat tu", "self-managed security team"}
    field = next(f for f in POINT_KINDS[kind].fields if f.name == name)
    try:
        _parse_one(field, value)
    except ValueError:
        return True
    return False


@st.composite
def wrong_type(draw, kind: str, header: list[str], rows: list[list[str]]):
    column = draw(st.sampled_from(sorted(TYPED[kind])))
    value = draw(LETTERS.filter(lambda v: _unreadable(kind, column, v)))
    r = draw(st.integers(0, len(rows) - 1))
    rows = copy.deepcopy(rows)
    rows[r][header.index(column)] = value
    return _csv(header, rows)


@st.composite
def swapped(draw, kind: str, header: list[str], rows: list[list[str]]):
    a, b = draw(st.sampled_from(SWAPS[kind]))
    i, j = header.index(a), header.index(b)
    rows = copy.deepcopy(rows)
    for row in rows:
        row[i], row[j] = row[j], row[i]
    return _csv(header, rows)


@st.composite
def cut_in_a_row(draw, header: list[str], rows: list[list[str]]):
    """The file cut inside a row (before its last separator) or inside the header."""
    content = _csv(header, rows)
    lines = content.split("\n")
    r = draw(st.integers(0, len(rows)))  # 0: the header itself
    start = sum(len(line) + 1 for line in lines[:r])
    k = draw(st.integers(1, lines[r].rindex(",")))
    return content[: start + k]


def _xy(lon: st.SearchStrategy, lat: st.SearchStrategy) -> st.SearchStrategy:
    return st.tuples(lon, lat).map(list)


ANY_LON = st.floats(-180, 180, allow_nan=False)
ANY_LAT = st.floats(-90, 90, allow_nan=False)
OUTSIDE_VN = st.one_of(_xy(st.floats(-180, 101.9), ANY_LAT), _xy(st.floats(118.1, 180), ANY_LAT),
                       _xy(st.floats(102, 118), st.floats(-90, 5.9)),
                       _xy(st.floats(102, 118), st.floats(23.6, 90)))
# Inside Vietnam's box but far from Hải Phòng (the only province loaded).
VN_NOT_HP = _xy(st.floats(102, 118), st.floats(6, 23.5)).filter(
    lambda p: not (105.0 <= p[0] <= 108.0 and 19.5 <= p[1] <= 22.0))
SOME_POINTS = st.lists(_xy(ANY_LON, ANY_LAT), min_size=2, max_size=5)


def _ring(points: list[list[float]], close: bool) -> list[list[float]]:
    return points + [points[0]] if close else points


BAD_POINT_GEOMETRY = st.one_of(
    st.none(),
    st.sampled_from([{"type": "Point", "coordinates": []},
                     {"type": "LineString", "coordinates": []},
                     {"type": "Polygon", "coordinates": []},
                     {"type": "GeometryCollection", "geometries": []},
                     {"type": "Point", "coordinates": [106.3]}]),
    st.builds(lambda p: {"type": "Point", "coordinates": p}, st.one_of(OUTSIDE_VN, VN_NOT_HP)),
    st.builds(lambda ps: {"type": "LineString", "coordinates": ps}, SOME_POINTS),
    st.builds(lambda ps: {"type": "MultiPoint", "coordinates": ps}, SOME_POINTS),
    st.builds(lambda ps, c: {"type": "Polygon", "coordinates": [_ring(ps, c)]},
              st.lists(_xy(ANY_LON, ANY_LAT), min_size=3, max_size=6), st.booleans()),
    st.builds(lambda p, ps: {"type": "GeometryCollection", "geometries": [
        {"type": "Point", "coordinates": p}, {"type": "LineString", "coordinates": ps}]},
        _xy(ANY_LON, ANY_LAT), SOME_POINTS),
)


def _geojson(header: list[str], rows: list[list[str]]) -> list[dict]:
    i, j = header.index("kinh_do"), header.index("vi_do")
    feats = []
    for row in rows:
        props = {h: v for k, (h, v) in enumerate(zip(header, row, strict=True)) if k not in (i, j)}
        feats.append({"type": "Feature", "properties": props, "geometry": {
            "type": "Point", "coordinates": [float(row[i]), float(row[j])]}})
    return feats


def _dump(features: list[dict]) -> str:
    return json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False)


@st.composite
def bad_geometry_file(draw, header: list[str], rows: list[list[str]]):
    feats = _geojson(header, rows)
    r = draw(st.integers(0, len(feats) - 1))
    feats[r]["geometry"] = draw(BAD_POINT_GEOMETRY)
    return _dump(feats)


@st.composite
def cut_geojson(draw, header: list[str], rows: list[list[str]]):
    content = _dump(_geojson(header, rows))
    return content[: draw(st.integers(1, len(content.rstrip()) - 1))]


def damaged_file(kind: str, header: list[str], rows: list[list[str]]):
    """(suffix, text) of a file damaged one way."""
    return st.one_of(
        st.tuples(st.just(".csv"), wrong_type(kind, header, rows)),
        st.tuples(st.just(".csv"), swapped(kind, header, rows)),
        st.tuples(st.just(".csv"), cut_in_a_row(header, rows)),
        st.tuples(st.just(".geojson"), bad_geometry_file(header, rows)),
        st.tuples(st.just(".geojson"), cut_geojson(header, rows)),
    )


# -- the point importers and villages ---------------------------------------------------------
@pytest.mark.parametrize("kind", list(BASE))
def test_the_undamaged_files_import(kind, base_rows, haiphong_url, tmp_path):
    """The base files are valid (CSV and GeoJSON): any refusal below is the damage's doing."""
    header, rows = base_rows[kind]
    for suffix, content in ((".csv", _csv(header, rows)), (".geojson", _dump(_geojson(header,
                                                                                      rows)))):
        f = tmp_path / f"base{suffix}"
        f.write_text(content, encoding="utf-8")
        result = _run(haiphong_url, [kind, str(f), "--dry-run"], tmp_path / "r.json")
        assert result.exit_code == 0, result.output


def _fuzz_kind(kind: str):
    @FUZZ
    @given(data=st.data())
    def test(data, base_rows, haiphong_url, tmp_path):
        header, rows = base_rows[kind]
        before = _counts(haiphong_url)
        suffix, content = data.draw(damaged_file(kind, header, rows))
        f = tmp_path / f"damaged{suffix}"
        f.write_text(content, encoding="utf-8")
        assert_refused(haiphong_url, [kind, str(f)], tmp_path / "r.json", before)

    test.__name__ = f"test_damaged_{kind.replace('-', '_')}_files_are_refused_by_name"
    return test


test_damaged_incidents_files_are_refused_by_name = _fuzz_kind("incidents")
test_damaged_models_files_are_refused_by_name = _fuzz_kind("models")
test_damaged_fire_groups_files_are_refused_by_name = _fuzz_kind("fire-groups")
test_damaged_institutions_files_are_refused_by_name = _fuzz_kind("institutions")
test_damaged_launch_points_files_are_refused_by_name = _fuzz_kind("launch-points")
test_damaged_villages_files_are_refused_by_name = _fuzz_kind("villages")


@pytest.fixture(scope="module")
def xlsx_bytes(base_rows) -> bytes:
    """The incidents base file as a spreadsheet (built once: its zip holds a timestamp)."""
    header, rows = base_rows["incidents"]
    buf = io.BytesIO()
    pd.DataFrame(rows, columns=header).to_excel(buf, index=False)
    return buf.getvalue()


def test_the_undamaged_spreadsheet_imports(xlsx_bytes, haiphong_url, tmp_path):
    f = tmp_path / "vu.xlsx"
    f.write_bytes(xlsx_bytes)
    result = _run(haiphong_url, ["incidents", str(f), "--dry-run"], tmp_path / "r.json")
    assert result.exit_code == 0, result.output


@FUZZ
@given(data=st.data())
def test_cut_spreadsheets_are_refused_by_name(data, xlsx_bytes, haiphong_url, tmp_path):
    whole = xlsx_bytes
    before = _counts(haiphong_url)
    f = tmp_path / "vu.xlsx"
    f.write_bytes(whole[: data.draw(st.integers(0, len(whole) - 1))])
    assert_refused(haiphong_url, ["incidents", str(f)], tmp_path / "r.json", before)


# -- boundaries ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def boundary_base(tmp_path_factory) -> tuple[list[dict], Path]:
    """Three real Hải Phòng communes and the province-31 file."""
    path = sources.path_of(sources.COMMUNES_2025_HAIPHONG)
    feats = [json.loads(line.strip().rstrip(",")) for line in
             path.read_text(encoding="utf-8").splitlines() if line.startswith('{ "type": "Feature"')]
    with gzip.open(sources.path_of(sources.PROVINCES_2025), "rt", encoding="utf-8") as fh:
        prov = next(json.loads(line.strip().rstrip(",")) for line in fh
                    if line.startswith('{ "type": "Feature"') and '"ma_tinh": "31"' in line)
    pfile = tmp_path_factory.mktemp("fuzzprov") / "provinces.geojson"
    pfile.write_text(_dump([prov]), encoding="utf-8")
    small = sorted(feats, key=lambda f: len(json.dumps(f["geometry"])))[:3]
    return small, pfile


def _lines(features: list[dict]) -> str:
    body = ",\n".join('{ "type": "Feature", "properties": ' + json.dumps(f["properties"],
                      ensure_ascii=False) + ', "geometry": ' + json.dumps(f["geometry"]) + " }"
                      for f in features)
    return '{\n"type": "FeatureCollection",\n"features": [\n' + body + "\n]\n}\n"


BOX_OUTSIDE = st.builds(lambda p, d: [[p[0], p[1]], [p[0] + d, p[1]], [p[0] + d, p[1] + d],
                                      [p[0], p[1] + d], [p[0], p[1]]],
                        st.one_of(_xy(st.floats(-170, 101), st.floats(-80, 80)),
                                  _xy(st.floats(118.5, 170), st.floats(-80, 80))),
                        st.floats(0.001, 1))
BAD_POLYGON_GEOMETRY = st.one_of(
    st.none(),
    st.sampled_from([{"type": "Polygon", "coordinates": []},
                     {"type": "MultiPolygon", "coordinates": []},
                     {"type": "GeometryCollection", "geometries": []}]),
    st.builds(lambda p: {"type": "Point", "coordinates": p}, _xy(ANY_LON, ANY_LAT)),
    st.builds(lambda ps: {"type": "LineString", "coordinates": ps}, SOME_POINTS),
    st.builds(lambda ps: {"type": "MultiPoint", "coordinates": ps}, SOME_POINTS),
    # a ring that does not end where it starts
    st.builds(lambda ps: {"type": "Polygon", "coordinates": [ps]},
              st.lists(_xy(ANY_LON, ANY_LAT), min_size=3, max_size=6, unique_by=tuple).filter(
                  lambda ps: ps[0] != ps[-1])),
    # a closed polygon outside Vietnam
    st.builds(lambda ring: {"type": "Polygon", "coordinates": [ring]}, BOX_OUTSIDE),
    # a ring collapsed to a line inside Vietnam: nothing is left once repaired
    st.builds(lambda p, d: {"type": "Polygon", "coordinates": [[p, [p[0] + d, p[1]],
                                                                [p[0] + 2 * d, p[1]], p]]},
              _xy(st.floats(104, 108), st.floats(10, 22)), st.floats(0.001, 0.1)),
    # a collection with a polygon part (refused without --polygon-parts)
    st.builds(lambda ring, p: {"type": "GeometryCollection", "geometries": [
        {"type": "Polygon", "coordinates": [ring]}, {"type": "Point", "coordinates": p}]},
        BOX_OUTSIDE, _xy(ANY_LON, ANY_LAT)),
)
NOT_A_CODE = st.text(min_size=0, max_size=8).filter(
    lambda s: not (s.strip().isascii() and s.strip().isdigit() and len(s.strip()) == 5))


@st.composite
def damaged_boundaries(draw, features: list[dict]):
    feats = copy.deepcopy(features)
    r = draw(st.integers(0, len(feats) - 1))
    how = draw(st.sampled_from(["geometry", "drop column", "rename column", "duplicate",
                                "parent", "code", "cut", "name"]))
    if how == "geometry":
        feats[r]["geometry"] = draw(BAD_POLYGON_GEOMETRY)
    elif how in ("drop column", "rename column"):
        col = draw(st.sampled_from(["ma_xa", "ten", "ten_day_du", "ma_tinh"]))
        new = draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10)
                   .filter(lambda s: s.strip("_") and s not in feats[0]["properties"]))
        for f in feats:
            value = f["properties"].pop(col)
            if how == "rename column":
                f["properties"][new] = value
    elif how == "duplicate":
        other = draw(st.integers(0, len(feats) - 1).filter(lambda k: k != r))
        feats[r]["properties"]["ma_xa"] = feats[other]["properties"]["ma_xa"]
    elif how == "parent":
        feats[r]["properties"]["ma_tinh"] = draw(st.sampled_from(["99", "00", "3", "310", "", None]))
    elif how == "code":
        feats[r]["properties"]["ma_xa"] = draw(st.one_of(NOT_A_CODE, st.none(),
                                                         st.sampled_from(["99999", "00000"])))
    elif how == "name":
        feats[r]["properties"][draw(st.sampled_from(["ten", "ten_day_du"]))] = draw(
            st.sampled_from(["", "   ", None, "a\x00b"]))
    content = draw(st.sampled_from([_lines, _dump]))(feats)
    if how == "cut":
        content = content[: draw(st.integers(1, len(content.rstrip()) - 1))]
    return content


def test_the_undamaged_boundaries_import(boundary_base, db_url, tmp_path):
    feats, pfile = boundary_base
    for writer in (_lines, _dump):
        f = tmp_path / "communes.geojson"
        f.write_text(writer(feats), encoding="utf-8")
        result = _run(db_url, ["boundaries", str(f), "--provinces", str(pfile), "--dry-run"],
                      tmp_path / "r.json")
        assert result.exit_code == 0, result.output


@FUZZ
@given(data=st.data())
def test_damaged_boundary_files_are_refused_by_name(data, boundary_base, db_url, tmp_path):
    feats, pfile = boundary_base
    before = _counts(db_url)
    content = data.draw(damaged_boundaries(feats))
    assume(content.strip())
    f = tmp_path / "communes.geojson"
    f.write_text(content, encoding="utf-8")
    assert_refused(db_url, ["boundaries", str(f), "--provinces", str(pfile)], tmp_path / "r.json",
                   before)
