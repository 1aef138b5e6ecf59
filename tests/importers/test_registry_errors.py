"""Incident and registry importers as a newcomer meets them: empty exports, extra columns, cut
rows, category words from police exports, values the database cannot hold."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from antt.cli import app
from data.importers import vocabulary
from data.importers.core import import_points

KIND_TABLES = {"incidents": "incident", "models": "security_model", "fire-groups": "fire_group",
               "institutions": "institution", "launch-points": "launch_point",
               "villages": "admin_unit"}
HEADERS = {
    "incidents": ["ma", "loai", "ngay", "kinh_do", "vi_do"],
    "models": ["ma", "loai", "ten", "ngay_thanh_lap", "kinh_do", "vi_do"],
    "fire-groups": ["ma", "ten", "so_ho", "ngay_thanh_lap", "kinh_do", "vi_do"],
    "institutions": ["ma", "loai", "ten", "kinh_do", "vi_do"],
    "launch-points": ["ma", "ten", "chu_de", "ngay_phat_dong", "kinh_do", "vi_do"],
    "villages": ["ma", "ten", "ma_xa", "kinh_do", "vi_do"],
}


def _count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def _cli(url: str, *args: str):
    result = CliRunner().invoke(app, ["import", *args, "--database-url", url],
                                env={"COLUMNS": "250"})
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"uncaught {result.exception!r}\n{result.output}")
    return result


@pytest.mark.parametrize("kind", list(KIND_TABLES))
def test_header_without_rows_is_an_error(haiphong_url, haiphong_engine, tmp_path, write_csv, kind):
    before = _count(haiphong_engine, KIND_TABLES[kind])
    f = write_csv(tmp_path / "empty.csv", HEADERS[kind], [])
    result = _cli(haiphong_url, kind, str(f))
    assert result.exit_code == 1, result.output
    assert "no data rows" in result.output and "không có dòng dữ liệu" in result.output
    assert _count(haiphong_engine, KIND_TABLES[kind]) == before


@pytest.mark.parametrize("content", ["", "\n\n", "ma,loai,ngay,kinh_do,vi_do\n\n\n"])
def test_empty_csv_files(haiphong_engine, tmp_path, content):
    f = tmp_path / "vu.csv"
    f.write_text(content, encoding="utf-8")
    report = import_points(haiphong_engine, "incidents", f)
    assert [(e.row, e.field) for e in report.errors] == [(None, "file")]
    assert "empty" in report.errors[0].reason_en or "no data rows" in report.errors[0].reason_en


def test_empty_xlsx_and_featureless_geojson(haiphong_engine, tmp_path):
    xlsx = tmp_path / "vu.xlsx"
    pd.DataFrame({"ma": [], "loai": [], "ngay": [], "kinh_do": [], "vi_do": []}).to_excel(
        xlsx, index=False)
    geo = tmp_path / "vu.geojson"
    geo.write_text(json.dumps({"type": "FeatureCollection", "features": []}), encoding="utf-8")
    for f in (xlsx, geo):
        report = import_points(haiphong_engine, "incidents", f)
        assert [(e.row, e.field) for e in report.errors] == [(None, "file")], f
        assert "no data rows" in report.errors[0].reason_en
    assert _count(haiphong_engine, "incident") == 0


def test_unknown_columns_are_named_not_dropped(haiphong_url, haiphong_engine, haiphong_points,
                                               tmp_path, write_csv):
    lon, lat = haiphong_points["10507"]
    f = write_csv(tmp_path / "vu.csv", ["Mã", "Loại", "Ngày", "Kinh độ", "Vĩ độ", "Đối tượng",
                                        "Ghi chú nội bộ"],
                  [["A1", "fire", "2025-08-01", lon, lat, "Nguyễn Văn A", "x"]])
    out = tmp_path / "r.json"
    result = _cli(haiphong_url, "incidents", str(f), "--report", str(out))
    assert result.exit_code == 0, result.output
    assert "columns not used" in result.output
    assert "Đối tượng" in result.output and "Ghi chú nội bộ" in result.output
    assert json.loads(out.read_text(encoding="utf-8"))["unused_columns"] == ["Đối tượng",
                                                                             "Ghi chú nội bộ"]
    assert _count(haiphong_engine, "incident") == 1


def test_every_column_used_means_no_unused_list(haiphong_engine, haiphong_points, tmp_path,
                                                write_csv):
    lon, lat = haiphong_points["10507"]
    f = write_csv(tmp_path / "vu.csv", ["ma", "loai", "ngay", "kinh_do", "vi_do", "mo_ta"],
                  [["A1", "fire", "2025-08-01", lon, lat, "Cháy bếp"]])
    report = import_points(haiphong_engine, "incidents", f)
    assert report.ok and report.unused_columns == []


def test_short_and_long_rows_are_named(haiphong_engine, haiphong_points, tmp_path):
    """A file cut mid-line, or a row with a stray separator, is named by its row; pandas would
    have filled the short row with blanks or refused the whole file."""
    lon, lat = haiphong_points["10507"]
    f = tmp_path / "vu.csv"
    f.write_text("ma,loai,ngay,kinh_do,vi_do\n"
                 f"A1,fire,2025-08-01,{lon},{lat}\n"
                 "\n"                                          # a blank line still counts
                 f"A2,fire,2025-08-01,{lon},{lat},extra\n"
                 f"A3,fire,2025-08-01,{lon},{lat},,\n"          # empty trailing cells are fine
                 f"A4,fire,2025-08-0", encoding="utf-8")
    report = import_points(haiphong_engine, "incidents", f)
    assert [(e.row, e.field) for e in report.sorted_errors()] == [(4, "row"), (6, "row")]
    assert "6 cells but the header has 5" in report.sorted_errors()[0].reason_en
    assert "3 cells but the header has 5" in report.sorted_errors()[1].reason_en
    assert _count(haiphong_engine, "incident") == 0


@pytest.mark.parametrize("word,code", [
    ("crime/theft", "crime/theft"), ("CRIME/THEFT", "crime/theft"), ("crime.theft", "crime/theft"),
    ("Trộm cắp tài sản", "crime/theft"), ("trom cap tai san", "crime/theft"),
    ("Theft", "crime/theft"), ("Điều 173", "crime/theft"), ("Đ.173 BLHS", "crime/theft"),
    ("173 BLHS", "crime/theft"), ("trộm xe máy", "crime/theft"),
    ("TNGT", "traffic"), ("Tai nan giao thong", "traffic"), ("Traffic accident", "traffic"),
    ("Cố ý gây thương tích hoặc gây tổn hại cho sức khỏe của người khác", "crime/injury"),
    ("CYGTT", "crime/injury"), ("gây rối TTCC", "crime/disorder"),
    ("Lừa đảo qua mạng", "crime/fraud/online"), ("Điều 290", "crime/fraud/online"),
    ("Tàng trữ trái phép chất ma túy", "crime/drugs"), ("Điều 251", "crime/drugs"),
    ("Cướp giật tài sản", "crime/robbery"), ("Điều 171", "crime/robbery"),
    ("pháo nổ", "crime/weapons"), ("Hỏa hoạn", "fire/fire"), ("Nổ", "fire/explosion"),
    ("Vi phạm hành chính", "violation"), ("Cháy, nổ", "fire"), ("fire", "fire"),
])
def test_category_words(word, code):
    assert vocabulary.resolve(word) == code


def test_every_word_of_the_vocabulary_names_its_own_category():
    """No word means two categories. The one deliberate exception: the English name 'Fire' of
    fire/fire is also the code 'fire' of the parent (fire and explosion), and codes win."""
    shadowed = []
    for cat in vocabulary.CATEGORIES:
        for w in vocabulary.words(cat):
            got = vocabulary.resolve(w)
            if got != cat.code:
                shadowed.append((cat.code, w, got))
    assert shadowed == [("fire/fire", "Fire", "fire")]


def test_vocabulary_matches_the_database_catalogue(engine):
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT code, name_vi, name_en FROM incident_category "
                                 "ORDER BY code")).all()
    assert rows == sorted((c.code, c.name_vi, c.name_en) for c in vocabulary.CATEGORIES)


def test_categories_are_stored_as_codes(haiphong_engine, haiphong_points, tmp_path, write_csv):
    lon, lat = haiphong_points["10507"]
    words = ["Trộm cắp tài sản", "TNGT", "Đ.173 BLHS", "lua dao qua mang", "Public disorder"]
    f = write_csv(tmp_path / "vu.csv", ["ma", "Tội danh", "ngay", "kinh_do", "vi_do"],
                  [[f"A{i}", w, "2025-08-01", lon, lat] for i, w in enumerate(words)])
    report = import_points(haiphong_engine, "incidents", f, _opts(mapping={"category": "toi_danh"}))
    assert report.ok, report.errors
    with haiphong_engine.connect() as conn:
        got = conn.execute(text("SELECT category_code FROM incident ORDER BY external_id")).scalars()
        assert list(got) == ["crime/theft", "traffic", "crime/theft", "crime/fraud/online",
                             "crime/disorder"]


def _opts(**kw):
    from data.importers.core import ImportOptions

    return ImportOptions(**kw)


def test_unknown_category_lists_the_closest(haiphong_engine, haiphong_points, tmp_path,
                                            write_csv):
    lon, lat = haiphong_points["10507"]
    f = write_csv(tmp_path / "vu.csv", HEADERS["incidents"],
                  [["A1", "Trộm cắp tài sảm", "2025-08-01", lon, lat],   # one letter off
                   ["A2", "Điều 999", "2025-08-01", lon, lat]])
    report = import_points(haiphong_engine, "incidents", f)
    errs = report.sorted_errors()
    assert [(e.row, e.field) for e in errs] == [(2, "category"), (3, "category")]
    assert "closest: crime/theft (Trộm cắp tài sản / Theft)" in errs[0].reason_en
    assert "gần nhất: crime/theft" in errs[0].reason_vi
    assert "--categories" in errs[0].reason_en
    assert errs[1].reason_en.count("(") >= 3  # three suggestions, each with its names
    assert _count(haiphong_engine, "incident") == 0


def test_categories_option_prints_the_vocabulary():
    result = CliRunner().invoke(app, ["import", "incidents", "--categories"],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    for cat in vocabulary.CATEGORIES:
        assert cat.code in result.stdout and cat.name_vi in result.stdout
    assert "TNGT" in result.stdout and "173" in result.stdout
    missing = CliRunner().invoke(app, ["import", "incidents"])
    assert missing.exit_code == 2


@pytest.mark.parametrize("column,value,words", [
    ("deaths", "99999999999", "outside the allowed range 0–2147483647"),
    ("injuries", "-1", "outside the allowed range 0–2147483647"),
    ("description", "cháy\x00bếp", "NUL"),
    ("occurred_at", "0205-08-01", "before 1900"),
])
def test_values_the_database_cannot_hold_are_named(haiphong_engine, haiphong_points, tmp_path,
                                                   column, value, words):
    lon, lat = haiphong_points["10507"]
    row = {"external_id": "A1", "category": "fire", "occurred_at": "2025-08-01", "lon": lon,
           "lat": lat, column: value}
    f = tmp_path / "vu.csv"
    f.write_text(",".join(row) + "\n" + ",".join(str(v) for v in row.values()) + "\n",
                 encoding="utf-8")
    report = import_points(haiphong_engine, "incidents", f)
    assert [(e.row, e.field) for e in report.errors] == [(2, column)]
    assert words in report.errors[0].reason_en
    assert _count(haiphong_engine, "incident") == 0


def test_village_far_outside_its_commune_is_an_error_not_a_move(haiphong_engine, haiphong_points,
                                                                tmp_path, write_csv):
    """A centre a little outside its commune is moved inside and reported; one 100 km away
    (wrong coordinates or a wrong commune code) is an error."""
    lon, lat = haiphong_points["10525"]
    f = write_csv(tmp_path / "thon.csv", HEADERS["villages"],
                  [["T1", "Thôn 1", "10507", 105.2, 20.9],      # ~100 km west of Hải Phòng
                   ["T2", "Thôn 2", "10525", lon, lat]])
    report = import_points_or_villages(haiphong_engine, f)
    assert [(e.row, e.field) for e in report.errors] == [(2, "geometry")]
    assert "km outside commune 10507" in report.errors[0].reason_en
    assert _count(haiphong_engine, "admin_unit WHERE level = 'village'") == 0


def import_points_or_villages(engine, f):
    from data.importers.villages import import_villages

    return import_villages(engine, f)


def test_geojson_text_with_nul_is_refused_not_shortened(haiphong_engine, haiphong_points,
                                                        tmp_path):
    lon, lat = haiphong_points["10507"]
    f = tmp_path / "vu.geojson"
    f.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"ma": "A1", "loai": "fire", "ngay": "2025-08-01",
                                          "mo_ta": "cháy\u0000bếp"},
        "geometry": {"type": "Point", "coordinates": [lon, lat]}}]}), encoding="utf-8")
    report = import_points(haiphong_engine, "incidents", f)
    assert [(e.row, e.field) for e in report.errors] == [(None, "file")]
    assert "NUL" in report.errors[0].reason_en
    assert _count(haiphong_engine, "incident") == 0


def test_text_that_looks_like_copys_null_marker_is_kept(haiphong_engine, haiphong_points,
                                                        tmp_path, write_csv):
    r"""COPY reads an unquoted \N as NULL: a description that is literally \N (or has quotes,
    tabs, new lines) must arrive as written."""
    lon, lat = haiphong_points["10507"]
    texts = ["\\N", 'say "hi"', "a\tb", "line 1\nline 2"]
    f = write_csv(tmp_path / "vu.csv", HEADERS["incidents"] + ["mo_ta"],
                  [[f"A{i}", "fire", "2025-08-01", lon, lat, t] for i, t in enumerate(texts)])
    report = import_points(haiphong_engine, "incidents", f)
    assert report.ok, report.errors
    with haiphong_engine.connect() as conn:
        got = conn.execute(text("SELECT description FROM incident ORDER BY external_id")).scalars()
        assert list(got) == texts
