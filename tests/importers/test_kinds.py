"""Models, fire groups, institutions and launch points: codes, hosts, yearly facts, upserts."""

from __future__ import annotations

import json

import pytest
import shapely
from sqlalchemy import text

from data.boundaries import sources
from data.importers.core import import_points
from data.importers.villages import import_villages

COMMUNE = "10507"


@pytest.fixture
def village(haiphong_engine, tmp_path):
    """One village (code T1) covering all of commune 10507."""
    frame = sources.read_vector(sources.path_of(sources.COMMUNES_2025_HAIPHONG))
    shape = frame[frame["ma_xa"] == COMMUNE].geometry.iloc[0]
    f = tmp_path / "thon.geojson"
    f.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"ma": "T1", "ten": "Thôn Một", "ma_xa": COMMUNE},
         "geometry": shapely.geometry.mapping(shape)}]}), encoding="utf-8")
    assert import_villages(haiphong_engine, f).ok
    return shape.representative_point()


def _one(engine, sql):
    with engine.connect() as conn:
        return conn.execute(text(sql)).one()


def test_models_with_village_host_rating_and_unknown_type(haiphong_engine, village, tmp_path,
                                                          write_csv):
    header = ["ma", "loai", "ten", "ma_thon", "ngay_thanh_lap", "xep_loai", "ngay_xep_loai",
              "cong_nhan"]
    rows = [["M1", "to_tu_quan", "Tổ tự quản số 1", "T1", "15/03/2024", "khá", "2025-11-15",
             "Bộ Công an"]]
    report = import_points(haiphong_engine, "models", write_csv(tmp_path / "m.csv", header, rows))
    assert report.ok, report.errors
    assert import_points(haiphong_engine, "models", tmp_path / "m.csv").updated == 1
    model = _one(haiphong_engine,
                 "SELECT m.type_code, v.code, c.code, m.recognition, m.founded_on::text, "
                 "ST_Intersects(m.geom, v.geom), (SELECT count(*) FROM model_rating) "
                 "FROM security_model m JOIN admin_unit v ON v.id = m.village_id "
                 "JOIN admin_unit c ON c.id = m.commune_id")
    assert tuple(model) == ("to_tu_quan", "T1", COMMUNE, "mps", "2024-03-15", True, 1)
    bad = write_csv(tmp_path / "bad.csv", header,
                    [["M2", "khong_co", "X", "T1", "2024-01-01", "", "", ""],
                     ["M3", "to_tu_quan", "Y", "T9", "2024-01-01", "", "", ""],
                     ["M4", "to_tu_quan", "Z", "T1", "2024-01-01", "tốt", "", ""]])
    report = import_points(haiphong_engine, "models", bad)
    assert [(e.row, e.field) for e in report.sorted_errors()] == [
        (2, "type_code"), (3, "host"), (4, "rated_on")]


def test_fire_groups_need_positive_households(haiphong_engine, village, tmp_path, write_csv):
    header = ["ma", "ten", "so_ho", "ngay_thanh_lap", "lon", "lat"]
    f = write_csv(tmp_path / "f.csv", header, [
        ["F1", "Tổ liên gia 1", "12", "2023-05-01", village.x, village.y],
        ["F2", "Tổ liên gia 2", "0", "2023-05-01", village.x, village.y]])
    report = import_points(haiphong_engine, "fire-groups", f)
    assert [(e.row, e.field) for e in report.errors] == [(3, "households")]
    f.write_text(f.read_text(encoding="utf-8").replace(",0,", ",9,"), encoding="utf-8")
    report = import_points(haiphong_engine, "fire-groups", f)
    assert report.ok and report.inserted == 2
    assert tuple(_one(haiphong_engine, "SELECT count(*), count(village_id) FROM fire_group")) == (2, 2)


def test_institutions_with_yearly_result(haiphong_engine, village, tmp_path, write_csv):
    header = ["ma", "loai", "ten", "nam", "dat_chuan", "lon", "lat"]
    f = write_csv(tmp_path / "i.csv", header, [
        ["I1", "trường học", "Trường THCS Thành Đông", "2025", "đạt", village.x, village.y],
        ["I2", "doanh nghiệp", "Công ty May", "2025", "không", village.x, village.y]])
    report = import_points(haiphong_engine, "institutions", f)
    assert report.ok, report.errors
    assert import_points(haiphong_engine, "institutions", f).updated == 2
    assert tuple(_one(haiphong_engine,
                      "SELECT count(*), count(*) FILTER (WHERE antt_safe) FROM institution_year")
                 ) == (2, 1)


def test_launch_point_at_a_village_without_coordinates(haiphong_engine, village, tmp_path,
                                                       write_csv):
    header = ["ma", "ten", "chu_de", "ngay_phat_dong", "ma_thon", "lon", "lat"]
    f = write_csv(tmp_path / "l.csv", header, [
        ["L1", "Phát động tại thôn Một", "Ngày hội toàn dân 19/8", "19/08/2025", "T1", "", ""],
        ["L2", "Không có chỗ", "Chủ đề", "19/08/2025", "", "", ""],
        ["L3", "Thôn lạ", "Chủ đề", "19/08/2025", "T404", "", ""]])
    report = import_points(haiphong_engine, "launch-points", f)
    assert [(e.row, e.field) for e in report.sorted_errors()] == [(3, "geometry"),
                                                                   (4, "village_code")]
    f = write_csv(tmp_path / "l2.csv", header, [
        ["L1", "Phát động tại thôn Một", "Ngày hội toàn dân 19/8", "19/08/2025", "T1", "", ""]])
    report = import_points(haiphong_engine, "launch-points", f)
    assert report.ok, report.errors
    lp = _one(haiphong_engine, "SELECT l.external_id, v.code, c.code, l.geom IS NULL "
                               "FROM launch_point l JOIN admin_unit v ON v.id = l.village_id "
                               "JOIN admin_unit c ON c.id = l.commune_id")
    assert tuple(lp) == ("L1", "T1", COMMUNE, True)


def test_model_hosted_by_an_institution_stands_at_it(haiphong_engine, village, tmp_path,
                                                     write_csv):
    inst = write_csv(tmp_path / "i.csv", ["ma", "loai", "ten", "lon", "lat"],
                     [["SCH-1", "school", "Trường Tiểu học", village.x, village.y]])
    assert import_points(haiphong_engine, "institutions", inst).ok
    header = ["ma", "loai", "ten", "don_vi", "ngay_thanh_lap"]
    f = write_csv(tmp_path / "m.csv", header, [
        ["M1", "Trường học an toàn về ANTT", "Trường an toàn", "SCH-1", "2024-09-05"],
        ["M2", "truong_hoc_an_toan", "Sai nơi", "T1", "2024-09-05"]])
    report = import_points(haiphong_engine, "models", f)
    assert [(e.row, e.field) for e in report.errors] == [(3, "host")]
    f = write_csv(tmp_path / "m2.csv", header, [
        ["M1", "Trường học an toàn về ANTT", "Trường an toàn", "SCH-1", "2024-09-05"]])
    report = import_points(haiphong_engine, "models", f)
    assert report.ok, report.errors
    row = _one(haiphong_engine,
               "SELECT m.host_kind, m.type_code, ST_Equals(m.geom, i.geom), c.code "
               "FROM security_model m JOIN institution i ON i.id = m.institution_id "
               "JOIN admin_unit c ON c.id = m.commune_id")
    assert tuple(row) == ("institution", "truong_hoc_an_toan", True, COMMUNE)
