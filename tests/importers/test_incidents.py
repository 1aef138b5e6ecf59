"""Incident import: happy path, upsert, time zone and set-based unit assignment."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from data.importers.core import ImportOptions, import_points

HEADER = ["ma", "loai", "ngay", "kinh_do", "vi_do", "thanh_thieu_nien", "trang_thai"]


def test_incidents_import_assigns_communes_and_reimport_updates(haiphong_engine, haiphong_points,
                                                                tmp_path, write_csv):
    lon, lat = haiphong_points["10507"]
    lon2, lat2 = haiphong_points["11113"]
    f = write_csv(tmp_path / "vu.csv", HEADER, [
        ["VV-1", "crime/theft", "2025-08-01 22:30", lon, lat, "có", "đang điều tra"],
        ["VV-2", "Trộm cắp tài sản", "02/09/2025", lon2, lat2, "0", ""],
    ])
    report = import_points(haiphong_engine, "incidents", f)
    assert report.ok, report.errors
    assert (report.inserted, report.updated) == (2, 0)
    with haiphong_engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT i.external_id, u.code, i.category_code, i.youth_involved, i.status, "
            "i.occurred_at FROM incident i JOIN admin_unit u ON u.id = i.commune_id "
            "ORDER BY 1")).fetchall()
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        ("VV-1", "10507", "crime/theft", True, "investigating"),
        ("VV-2", "11113", "crime/theft", False, "reported")]
    # 22:30 in Hà Nội time (UTC+7) is 15:30 UTC
    assert rows[0][5].astimezone(dt.UTC).hour == 15
    again = import_points(haiphong_engine, "incidents", f)
    assert (again.inserted, again.updated) == (0, 2)
    with haiphong_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incident")).scalar_one() == 2


def test_set_based_assignment_agrees_with_unit_at(haiphong_engine, haiphong_points, tmp_path, write_csv):
    rows = [[f"P{i}", "fire", "2025-10-01", lon, lat, "", ""]
            for i, (lon, lat) in enumerate(haiphong_points.values())]
    f = write_csv(tmp_path / "all.csv", HEADER, rows)
    report = import_points(haiphong_engine, "incidents", f)
    assert report.ok, report.errors
    with haiphong_engine.connect() as conn:
        disagree = conn.execute(text(
            "SELECT count(*) FROM incident WHERE commune_id IS DISTINCT FROM "
            "unit_at(geom, 'commune', (occurred_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date)"
        )).scalar_one()
        n = conn.execute(text("SELECT count(*) FROM incident WHERE commune_id IS NOT NULL")
                         ).scalar_one()
    assert disagree == 0
    assert n == 114


def test_dry_run_writes_nothing(haiphong_engine, haiphong_points, tmp_path, write_csv):
    lon, lat = haiphong_points["10507"]
    f = write_csv(tmp_path / "vu.csv", HEADER, [["VV-1", "fire", "2025-08-01", lon, lat, "", ""]])
    report = import_points(haiphong_engine, "incidents", f, ImportOptions(dry_run=True))
    assert report.ok and report.dry_run
    with haiphong_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incident")).scalar_one() == 0
