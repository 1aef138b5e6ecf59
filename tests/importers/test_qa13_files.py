"""Files a newcomer makes by hand, found wrong by qa13 (issue 13's author check) through the CLI.

Each bad file: exit 1, a named bilingual error, no traceback, every table's row count unchanged.
Files are written here (CSV, XLSX with openpyxl, GeoJSON lines, zipped shapefiles); the
boundaries are the real Hải Phòng ones read from ../shared.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import geopandas as gpd
import openpyxl
import pytest
import shapely
from sqlalchemy import text
from typer.testing import CliRunner

from antt.cli import app
from data.boundaries import sources

TABLES = ("incident", "security_model", "fire_group", "institution", "launch_point", "admin_unit",
          "unit_lineage")
HEADER = ["ma", "loai", "ngay", "kinh_do", "vi_do"]


def _counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}


def _cli(url: str, tmp_path: Path, *args: str) -> tuple[int, str, dict | None]:
    """(exit code, output, JSON report) of `antt import ARGS`; an uncaught exception fails."""
    out = tmp_path / "report.json"
    out.unlink(missing_ok=True)
    result = CliRunner().invoke(app, ["import", *args, "--database-url", url, "--report", str(out)],
                                env={"COLUMNS": "250"})
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"uncaught {result.exception!r}\n{result.output}")
    assert "Traceback" not in result.output
    report = json.loads(out.read_text(encoding="utf-8")) if out.exists() else None
    return result.exit_code, result.output, report


def _refused(url: str, engine, tmp_path: Path, *args: str) -> tuple[str, dict]:
    """Run ARGS and its --dry-run: both exit 1 with the same errors, nothing written."""
    before = _counts(engine)
    code, output, report = _cli(url, tmp_path, *args)
    assert code == 1, output
    assert report is not None and report["errors"], output
    assert _counts(engine) == before
    dry_code, _, dry = _cli(url, tmp_path, *args, "--dry-run")
    assert dry_code == 1 and dry["errors"] == report["errors"]
    return output, report


def _one_point(haiphong_points, code: str = "11113") -> tuple[float, float]:
    return haiphong_points[code]


# -- whole-file problems ------------------------------------------------------------------------

def test_a_directory_named_like_a_csv_is_named(haiphong_url, haiphong_engine, tmp_path):
    d = tmp_path / "vu_viec.csv"
    d.mkdir()
    for args in (["incidents", str(d)], ["models", str(d)],
                 ["boundaries", str(d), "--era", "pre2025", "--province", "31"],
                 ["lineage", str(d)]):
        _, report = _refused(haiphong_url, haiphong_engine, tmp_path, *args)
        err = report["errors"][0]
        assert err["field"] == "file" and "is a directory" in err["reason_en"]
        assert "là thư mục" in err["reason_vi"]


def test_a_zero_byte_geojson_is_said_to_be_empty(haiphong_url, haiphong_engine, tmp_path):
    f = tmp_path / "vu.geojson"
    f.write_bytes(b"")
    for kind in ("incidents", "boundaries"):
        _, report = _refused(haiphong_url, haiphong_engine, tmp_path, kind, str(f))
        assert "empty (0 bytes)" in report["errors"][0]["reason_en"]


def _without_read_permission() -> list[str]:
    """A command prefix under which chmod 000 denies reading (root reads anything otherwise)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    # util-linux is an essential Debian package: setpriv is always there on the machines the
    # project supports (scripts/setup-system.sh), so its absence fails the test, never skips it
    assert setpriv is not None, "setpriv (util-linux) is needed to drop root's read override"
    caps = "-dac_override,-dac_read_search"
    return [setpriv, "--bounding-set", caps, "--inh-caps", caps]


def test_permission_denied_is_a_named_error_not_clicks(haiphong_url, haiphong_engine, tmp_path,
                                                       write_csv, haiphong_points):
    prefix = _without_read_permission()
    f = write_csv(tmp_path / "vu.csv", HEADER, [["P1", "trom cap", "2025-01-02", *_one_point(
        haiphong_points)]])
    f.chmod(0)
    tmp_path.chmod(0o755)
    antt = str(Path(sys.executable).with_name("antt"))
    before = _counts(haiphong_engine)
    for kind in ("incidents", "lineage"):
        out = tmp_path / f"np_{kind}.json"
        run = subprocess.run([*prefix, antt, "import", kind, str(f), "--database-url", haiphong_url,
                              "--report", str(out)], capture_output=True, text=True, timeout=120)
        assert run.returncode == 1, run.stderr
        assert "Traceback" not in run.stderr
        err = json.loads(out.read_text(encoding="utf-8"))["errors"][0]
        assert err["field"] == "file" and "Permission denied" in err["reason_en"]
        assert "Không mở được tệp" in err["reason_vi"]
    assert _counts(haiphong_engine) == before


# -- XLSX read like CSV -------------------------------------------------------------------------

def _xlsx(path: Path, rows: list[list], at: str = "A1") -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    col0 = ord(at[0]) - ord("A")
    row0 = int(at[1:])
    for r, values in enumerate(rows):
        for c, v in enumerate(values):
            if v is not None:
                ws.cell(row=row0 + r, column=col0 + c + 1, value=v)
    wb.save(path)
    return path


def test_xlsx_with_a_repeated_header_is_refused(haiphong_url, haiphong_engine, tmp_path,
                                                haiphong_points):
    lon, lat = _one_point(haiphong_points)
    # pandas renamed the second 'loai' to 'loai.1' and the file went through.
    f = _xlsx(tmp_path / "vu.xlsx", [["ma", "loai", "loai", "ngay", "kinh_do", "vi_do"],
                                     ["X1", "trom cap", "TNGT", dt.datetime(2025, 1, 2), lon, lat]])
    _, report = _refused(haiphong_url, haiphong_engine, tmp_path, "incidents", str(f))
    assert [e["reason_en"] for e in report["errors"]] == ["Duplicate column: loai"]


def test_xlsx_rows_are_numbered_as_excel_shows_them(haiphong_url, haiphong_engine, tmp_path,
                                                    haiphong_points):
    """The header on row 3 (a sheet starting at B3), a blank row 5 skipped, the bad row is 6."""
    lon, lat = _one_point(haiphong_points)
    f = _xlsx(tmp_path / "vu.xlsx", [HEADER, ["X1", "trom cap", dt.datetime(2025, 1, 2), lon, lat],
                                     [None] * 5, ["X2", "khong co loai nay", dt.datetime(2025, 1, 2),
                                                  lon, lat]], at="B3")
    _, report = _refused(haiphong_url, haiphong_engine, tmp_path, "incidents", str(f))
    assert [(e["row"], e["field"], e["code"]) for e in report["errors"]] == [(6, "category", "X2")]
    assert report["unused_columns"] == []
    good = _xlsx(tmp_path / "ok.xlsx", [HEADER, ["X1", "trom cap", dt.datetime(2025, 1, 2), lon, lat],
                                        [None] * 5], at="B3")
    code, output, ok = _cli(haiphong_url, tmp_path, "incidents", str(good), "--dry-run")
    assert code == 0 and ok["errors"] == [], output


def test_an_excel_date_number_is_named_with_the_date_it_stands_for(haiphong_url, haiphong_engine,
                                                                   tmp_path, haiphong_points):
    lon, lat = _one_point(haiphong_points)
    f = _xlsx(tmp_path / "vu.xlsx", [HEADER, ["X1", "trom cap", 45658, lon, lat]])  # 1 Jan 2025
    _, report = _refused(haiphong_url, haiphong_engine, tmp_path, "incidents", str(f))
    err = report["errors"][0]
    assert (err["row"], err["field"], err["code"]) == (2, "occurred_at", "X1")
    assert "Excel date number (= 01/01/2025 00:00)" in err["reason_en"]
    assert "2025-08-01, 01/08/2025" in err["reason_en"] and "kiểu Excel" in err["reason_vi"]


# -- CRS of vector files ------------------------------------------------------------------------

def _feature_collection(points: list[tuple[float, float]], crs: str | None) -> dict:
    fc: dict = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": list(p)},
         "properties": {"ma": f"C{i}", "loai": "trom cap", "ngay": "2025-01-02"}}
        for i, p in enumerate(points)]}
    if crs:
        fc["crs"] = {"type": "name", "properties": {"name": crs}}
    return fc


def test_geojson_crs_member(haiphong_url, haiphong_engine, tmp_path, haiphong_points):
    lon, lat = _one_point(haiphong_points)
    bad = tmp_path / "bad_crs.geojson"
    bad.write_text(json.dumps(_feature_collection([(lon, lat)], "EPSG:999999")), encoding="utf-8")
    _, report = _refused(haiphong_url, haiphong_engine, tmp_path, "incidents", str(bad))
    assert "unknown CRS: 'EPSG:999999'" in report["errors"][0]["reason_en"]
    # A known member is honoured: metres in VN-2000 / UTM 48N land in the right commune.
    x, y = gpd.GeoSeries([shapely.Point(lon, lat)], crs=4326).to_crs(3405).iloc[0].coords[0]
    good = tmp_path / "utm.geojson"
    good.write_text(json.dumps(_feature_collection([(x, y)], "urn:ogc:def:crs:EPSG::3405")),
                    encoding="utf-8")
    code, output, _ = _cli(haiphong_url, tmp_path, "incidents", str(good))
    assert code == 0, output
    with haiphong_engine.connect() as conn:
        placed = conn.execute(text("SELECT c.code FROM incident i JOIN admin_unit c "
                                   "ON c.id = i.commune_now_id WHERE i.external_id = 'C0'")).scalar_one()
    assert placed == "11113"


def test_shapefile_without_prj_in_metres_says_give_crs(haiphong_url, haiphong_engine, tmp_path,
                                                       haiphong_points):
    lon, lat = _one_point(haiphong_points)
    g = gpd.GeoDataFrame({"ma": ["S1"], "loai": ["trom cap"], "ngay": ["2025-01-02"]},
                         geometry=[shapely.Point(lon, lat)], crs=4326).to_crs(3405)
    shp = tmp_path / "shp"
    shp.mkdir()
    g.to_file(shp / "vu.shp", encoding="utf-8")
    z = tmp_path / "vu.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in shp.iterdir():
            if p.suffix != ".prj":
                zf.write(p, p.name)
    _, report = _refused(haiphong_url, haiphong_engine, tmp_path, "incidents", str(z))
    err = report["errors"][0]
    assert (err["row"], err["code"]) == (1, "S1")
    assert "give --crs" in err["reason_en"] and "longitude 102–118" in err["reason_en"]


# -- boundary files: one feature per line (GDAL's layout, streamed) -----------------------------

def _feature_lines() -> tuple[list[str], list[str]]:
    lines = sources.path_of(sources.COMMUNES_2025_HAIPHONG).read_text(encoding="utf-8").split("\n")
    feats = [s for s in lines if s.startswith('{ "type": "Feature"')]
    return lines[:5], feats


def _write_lines(path: Path, head: list[str], feats: list[str]) -> Path:
    path.write_text("\n".join([*head, *feats, "]", "}"]) + "\n", encoding="utf-8")
    return path


def test_a_feature_line_spaced_differently_is_read_not_skipped(haiphong_url, haiphong_engine,
                                                               tmp_path):
    head, feats = _feature_lines()
    feats[5] = feats[5].replace('{ "type": "Feature"', '{"type":"Feature"', 1)
    feats[7] = feats[7].replace('{ "type": "Feature"', '{ "type":  "Feature"', 1)
    f = _write_lines(tmp_path / "xa.geojson", head, feats)
    code, output, report = _cli(haiphong_url, tmp_path, "boundaries", str(f), "--province", "31",
                                "--dry-run")
    assert code == 0, output
    assert report["rows"] == len(feats) + 1  # every commune and the province: none skipped
    assert report["unchanged"] == len(feats) + 1


@pytest.mark.parametrize("damage", ["garbage", "cut"])
def test_a_damaged_line_between_features_is_named(haiphong_url, haiphong_engine, tmp_path, damage):
    head, feats = _feature_lines()
    if damage == "garbage":
        feats.insert(10, "not a feature at all,")
    else:
        feats[3] = feats[3][: len(feats[3]) // 2]
    f = _write_lines(tmp_path / "xa.geojson", head, feats)
    _, report = _refused(haiphong_url, haiphong_engine, tmp_path, "boundaries", str(f),
                         "--province", "31")
    row = 11 if damage == "garbage" else 4
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(row, "file")]
    assert f"Feature {row} cannot be read" in report["errors"][0]["reason_en"]


def test_province_filter_does_not_skip_a_feature_without_a_province(haiphong_url, haiphong_engine,
                                                                    tmp_path):
    fc = json.loads(sources.path_of(sources.COMMUNES_2025_HAIPHONG).read_text(encoding="utf-8"))
    feats = fc["features"][:3]
    feats[0]["properties"]["ma_tinh"] = None
    feats[1]["properties"]["ma_tinh"] = "3l"
    f = tmp_path / "xa.geojson"
    f.write_text(json.dumps({"type": "FeatureCollection", "features": feats}), encoding="utf-8")
    _, report = _refused(haiphong_url, haiphong_engine, tmp_path, "boundaries", str(f),
                         "--province", "31")
    named = {(e["row"], e["field"]) for e in report["errors"]}
    assert {(1, "ma_tinh"), (2, "ma_tinh")} <= named


# -- lineage ------------------------------------------------------------------------------------

LINEAGE_HEADER = ("new_ma_tinh,new_ten_tinh,new_ma_xa,new_ten_xa,old_ma_xa,old_ten_xa,merge_type,"
                  "old_ma_tinh,old_ten_tinh,old_ma_huyen,old_ten_huyen")
LINEAGE_ROW = ("31,Thành phố Hải Phòng,11113,Xã Tân Kỳ,10900,Xã Tân Kỳ,full,30,Tỉnh Hải Dương,"
               "293,Huyện Tứ Kỳ")


@pytest.mark.parametrize("content, row, field, words", [
    (LINEAGE_HEADER + "\n", None, "file", "no data rows"),
    (LINEAGE_HEADER + "\n" + LINEAGE_ROW + ",extra\n", 2, "row", "cells"),
    (LINEAGE_HEADER + "\n" + LINEAGE_ROW.replace(",11113,", ",,") + "\n", 2, "new_ma_xa", "empty"),
    ("a,b\n1,2\n", None, "merge_type", "found: a, b; expected: new_ma_xa"),
])
def test_bad_lineage_files_are_named(haiphong_url, haiphong_engine, tmp_path, content, row, field,
                                     words):
    f = tmp_path / "lineage.csv"
    f.write_text(content, encoding="utf-8")
    _, report = _refused(haiphong_url, haiphong_engine, tmp_path, "lineage", str(f))
    assert any(e["row"] == row and e["field"] == field and words in e["reason_en"]
               for e in report["errors"]), report["errors"]


def test_point_errors_name_the_record_and_the_file(haiphong_url, haiphong_engine, tmp_path,
                                                   write_csv, haiphong_points):
    lon, lat = _one_point(haiphong_points)
    f = write_csv(tmp_path / "so_vu_thang_9.csv", HEADER, [["Q1", "trom cap", "2025-01-02", lon, lat],
                                                         ["Q2", "zzz", "2025-01-02", lon, lat]])
    output, report = _refused(haiphong_url, haiphong_engine, tmp_path, "incidents", str(f))
    assert [(e["row"], e["code"]) for e in report["errors"]] == [(3, "Q2")]
    assert "so_vu_thang_9.csv" in output
