"""Reports: the same-period comparison across the 2025 merger on hand-made data, the 6-month and
yearly report as DOCX (python-docx), XLSX (openpyxl) and HTML with figures from the data, and
roles (a committee's report has aggregates only; police may add the incident annex)."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from docx import Document
from openpyxl import load_workbook
from sqlalchemy import text

from geo.filters import IncidentFilter
from geo.incident_counts import category_counts, unit_counts
from geo.timeseries import same_period_last_year
from reports.data import build_report, default_period
from reports.writers import to_docx, to_html, to_xlsx

MERGER_SQL = """
CREATE TEMP TABLE a AS SELECT id, code, province_code, geom, ST_Centroid(geom) AS c
FROM admin_unit WHERE level = 'commune' ORDER BY code LIMIT 1;
-- two pre-2025 communes, the west and east halves of A, merged into A on 1 July 2025
INSERT INTO admin_unit (level, code, name, name_search, province_code, valid_from, valid_to, geom)
SELECT 'commune', h.code, h.name, h.name, a.province_code, '-infinity', '2025-07-01',
       ST_Multi(ST_CollectionExtract(ST_Intersection(a.geom, ST_MakeEnvelope(x0, 10, x1, 30, 4326)), 3))
FROM a, (VALUES ('99901', 'Tây Cũ', 100.0, ST_X((SELECT c FROM a))),
                ('99902', 'Đông Cũ', ST_X((SELECT c FROM a)), 120.0)) h(code, name, x0, x1);
INSERT INTO unit_lineage (old_level, old_code, new_level, new_code, merge_type, area_share)
SELECT 'commune', o, 'commune', a.code, 'full', 1.0 FROM a, (VALUES ('99901'), ('99902')) v(o);
"""


def _point_in(conn, code: str, valid_on: str) -> tuple[float, float]:
    return conn.execute(text("""SELECT ST_X(p), ST_Y(p) FROM (
        SELECT ST_PointOnSurface(geom) AS p FROM admin_unit
        WHERE code = :c AND valid_from <= :d AND (valid_to IS NULL OR :d < valid_to)) x"""),
                        {"c": code, "d": valid_on}).one()


def _incident(conn, category: str, when: str, xy: tuple[float, float], youth: bool = False) -> None:
    conn.execute(text("INSERT INTO incident (category_code, occurred_at, youth_involved, geom) VALUES "
                      "(:c, CAST(:w AS timestamptz), :y, ST_SetSRID(ST_MakePoint(:x, :yy), 4326))"),
                 {"c": category, "w": when, "y": youth, "x": xy[0], "yy": xy[1]})


@pytest.fixture
def merged(haiphong_engine):
    with haiphong_engine.begin() as conn:
        for statement in MERGER_SQL.split(";\n"):
            if statement.strip():
                conn.execute(text(statement))
        a, b = conn.execute(text("SELECT code FROM admin_unit WHERE level = 'commune' "
                                 "AND valid_from = '2025-07-01' ORDER BY code LIMIT 2")).scalars().all()
        west, east = _point_in(conn, "99901", "2024-01-01"), _point_in(conn, "99902", "2024-01-01")
        in_b = _point_in(conn, b, "2026-01-01")
        for _ in range(3):
            _incident(conn, "crime/theft", "2024-09-10 10:00+07", west, youth=True)
        for _ in range(2):
            _incident(conn, "traffic", "2024-09-12 08:00+07", east)
        _incident(conn, "crime/theft", "2024-11-05 08:00+07", west)     # after last year's period
        _incident(conn, "crime/theft", "2024-09-10 08:00+07", in_b)     # another commune
        for _ in range(2):
            _incident(conn, "crime/theft", "2025-09-10 10:00+07", west)
        _incident(conn, "fire/fire", "2025-10-01 21:00+07", east)
        stored = conn.execute(text(
            "SELECT DISTINCT c.code FROM incident i LEFT JOIN admin_unit c "
            "ON c.id = i.commune_id WHERE i.occurred_at < '2025-07-01'")).scalars().all()
    # last year's incidents keep their pre-2025 communes; the one in B had no unit of its era
    assert set(stored) == {"99901", "99902", None}
    return haiphong_engine, a


def test_same_period_counts_a_merged_units_old_history(merged):
    eng, a = merged
    start, end = dt.date(2025, 8, 1), dt.date(2025, 10, 31)
    cats = category_counts(eng, start, end, end, commune_code=a).set_index("category_code")
    assert (cats.at["*", "count"], cats.at["*", "count_last_year"]) == (3, 5)
    assert (cats.at["crime", "count"], cats.at["crime", "count_last_year"]) == (2, 3)
    assert (cats.at["crime/theft", "count"], cats.at["crime/theft", "count_last_year"]) == (2, 3)
    assert (cats.at["traffic", "count"], cats.at["traffic", "count_last_year"]) == (0, 2)
    assert (cats.at["fire", "count"], cats.at["fire/fire", "count"]) == (1, 1)
    assert cats.at["*", "change"] == -2 and cats.at["*", "change_pct"] == pytest.approx(-40.0)
    assert (cats.at["*", "youth"], cats.at["*", "youth_last_year"]) == (0, 3)
    units = unit_counts(eng, start, end, end, "commune", commune_code=a).set_index("code")
    assert (units.at[a, "count"], units.at[a, "count_last_year"]) == (3, 5)
    # the lineage roll-up of geo.timeseries agrees on this full merger
    sp = same_period_last_year(eng, IncidentFilter(start, end), "commune", commune_code=a)
    assert (int(sp.iloc[0]["count"]), float(sp.iloc[0]["count_last_year"])) == (3, 5.0)


def test_report_carries_the_same_period_comparison(merged):
    eng, a = merged
    r = build_report(eng, "commune", a, "year", 2025, start=dt.date(2025, 8, 1), end=dt.date(2025, 10, 31),
                     sees_points=True, maps=False)
    rows = {x["code"]: x for x in r.tables["incidents"].rows}
    assert (rows["*"]["count"], rows["*"]["count_last_year"], rows["*"]["change"]) == (3, 5, -2)
    assert rows["*"]["change_pct"] == -40.0
    first = r.paragraphs["incidents"][0]
    assert "xảy ra 3 vụ việc" in first and "giảm 2 vụ (40,0%)" in first
    hidden = build_report(eng, "commune", a, "year", 2025, start=dt.date(2025, 8, 1),
                          end=dt.date(2025, 10, 31), sees_points=False, maps=False)
    h = {x["code"]: x for x in hidden.tables["incidents"].rows}
    assert (h["*"]["count"], h["*"]["count_last_year"]) == (3, 5)
    assert (h["crime/theft"]["count"], h["crime/theft"]["count_last_year"]) == ("< 3", 3)
    assert h["crime/theft"]["change"] is None and h["fire"]["count"] == "< 3"


def test_default_periods():
    assert default_period("h1", 2026) == (dt.date(2025, 11, 1), dt.date(2026, 4, 30))
    assert default_period("year", 2026) == (dt.date(2025, 11, 1), dt.date(2026, 10, 31))


def test_documents_hold_the_figures(merged, artifacts_dir):
    eng, a = merged
    with eng.begin() as conn:  # a village over the whole of A, so the maps have one
        conn.execute(text("""INSERT INTO admin_unit (level, code, name, name_search, parent_id, province_code,
            valid_from, geom) SELECT 'village', code || '-01', 'Thôn Một', 'thon mot', id, province_code,
            valid_from, geom FROM admin_unit WHERE code = :a AND level = 'commune'"""), {"a": a})
    r = build_report(eng, "commune", a, "year", 2025, start=dt.date(2025, 8, 1), end=dt.date(2025, 10, 31),
                     sees_points=False)
    assert len(r.maps) == 2 and all(png.startswith(b"\x89PNG") for _t, png in r.maps)
    docx_bytes, xlsx_bytes, page = to_docx(r), to_xlsx(r), to_html(r)
    (artifacts_dir / "report_commune.docx").write_bytes(docx_bytes)
    (artifacts_dir / "report_commune.xlsx").write_bytes(xlsx_bytes)
    (artifacts_dir / "report_commune.html").write_text(page)
    doc = Document(io.BytesIO(docx_bytes))
    body = "\n".join(p.text for p in doc.paragraphs)
    cells = "\n".join(c.text for t in doc.tables for row in t.rows for c in row.cells)
    everything = body + "\n" + cells
    for words in ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc", "BAN CHỈ ĐẠO 138",
                  "Số:", "/BC-BCĐ138", "BÁO CÁO", "Nơi nhận:", "TRƯỞNG BAN", "ngày", "tháng",
                  "I. TÌNH HÌNH AN NINH, TRẬT TỰ", "cán bộ soạn thảo"):
        assert words in everything, words
    assert "xảy ra 3 vụ việc" in body and "giảm 2 vụ" in body
    assert len(doc.inline_shapes) == 2
    incidents = next(t for t in doc.tables if t.rows[0].cells[0].text == "Loại vụ việc")
    total = [c.text for c in incidents.rows[-1].cells]
    assert total[:5] == ["Tổng số vụ việc", "3", "5", "-2", "-40,0"]
    wb = load_workbook(io.BytesIO(xlsx_bytes))
    assert wb.sheetnames[0] == "Thông tin" and len(wb.sheetnames) == 1 + len(r.tables)
    ws = next(wb[n] for n in wb.sheetnames if "theo loại" in n)
    values = {row[0].strip(): row[1:4] for row in ws.iter_rows(min_row=4, values_only=True) if row[0]}
    assert values["Tổng số vụ việc"] == (3, 5, -2)
    assert values["- Trộm cắp tài sản"] == ("< 3", 3, None)  # hidden for a committee: 1-2
    assert "<h1>BÁO CÁO</h1>" in page and "data:image/png;base64," in page
    # a committee's report: no incident point anywhere
    for blob in (body, cells, page):
        assert not re.search(r"\b(10[5-7]\.\d{4,})\b", blob), "a coordinate leaked"


def _old_id(conn, code: str) -> int:
    return conn.execute(text("SELECT id FROM admin_unit WHERE level = 'commune' AND code = :c"),
                        {"c": code}).scalar_one()


@pytest.fixture
def merged_year(merged):
    """The merged commune A with a year of plan records written before and after the merger: those
    written before carry the pre-2025 commune (99901 west, 99902 east), as they were stored then."""
    eng, a = merged
    with eng.begin() as conn:
        west, east = _point_in(conn, "99901", "2024-01-01"), _point_in(conn, "99902", "2024-01-01")
        west_id, east_id, a_id = _old_id(conn, "99901"), _old_id(conn, "99902"), conn.execute(text(
            "SELECT id FROM admin_unit WHERE level = 'commune' AND code = :a"), {"a": a}).scalar_one()
        for _ in range(3):
            _incident(conn, "crime/theft", "2026-01-15 09:00+07", east)
        conn.execute(text("""INSERT INTO movement_event (kind, title, held_on, commune_id, participants)
            VALUES
            ('forum', 'Diễn đàn tại xã Tây Cũ', '2025-03-15', :w, 80),
            ('forum', 'Diễn đàn tại xã mới', '2025-09-01', :a, 100),
            ('festival', 'Ngày hội 19/8 năm 2024 tại xã Đông Cũ', '2024-08-19', :e, 300),
            ('launch', 'Phát động đầu năm 2026', '2026-02-01', :a, 150)"""),
                     {"w": west_id, "e": east_id, "a": a_id})
        conn.execute(text("""INSERT INTO launch_point (name, theme, launch_date, status, commune_id, geom)
            VALUES ('Điểm phát động xã Tây Cũ', 'ANTQ', '2025-04-01', 'launched', :w,
                    ST_SetSRID(ST_MakePoint(:x, :y), 4326))"""), {"w": west_id, "x": west[0], "y": west[1]})
        ids = conn.execute(text("""INSERT INTO security_model (type_code, name, founded_on, commune_id, geom)
            VALUES ('to_tu_quan', 'Tổ tự quản xã Tây Cũ', '2024-03-01', :w,
                    ST_SetSRID(ST_MakePoint(:wx, :wy), 4326)),
                   ('camera_antt', 'Camera xã Đông Cũ', '2025-02-01', :e,
                    ST_SetSRID(ST_MakePoint(:ex, :ey), 4326))
            RETURNING id"""), {"w": west_id, "e": east_id, "wx": west[0], "wy": west[1],
                               "ex": east[0], "ey": east[1]}).scalars().all()
        conn.execute(text("INSERT INTO model_rating (model_id, rating, rated_on) "
                          "VALUES (:m, 'tot', '2024-12-01')"), {"m": ids[0]})
        stored = conn.execute(text("""SELECT DISTINCT c.code FROM (
                SELECT commune_id FROM security_model UNION ALL SELECT commune_id FROM launch_point
                UNION ALL SELECT commune_id FROM movement_event WHERE held_on < '2025-07-01') x
            JOIN admin_unit c ON c.id = x.commune_id""")).scalars().all()
    assert sorted(stored) == ["99901", "99902"]  # nothing of before the merger points at A itself
    return eng, a


def test_yearly_report_of_a_merged_unit_counts_its_old_units(merged_year):
    """Yearly report 2025 (1 Nov 2024 – 31 Oct 2025) of A, merged on 1 July 2025: the incidents,
    events, launch points and models of its two old communes count, and the same period last year
    (1 Nov 2023 – 31 Oct 2024) lies wholly before the merger."""
    from geo import kpi

    eng, a = merged_year
    r = build_report(eng, "commune", a, "year", 2025, sees_points=True, maps=False)
    assert (r.start, r.end) == (dt.date(2024, 11, 1), dt.date(2025, 10, 31))
    inc = {x["code"]: x for x in r.tables["incidents"].rows}
    # this period: theft 5 Nov 2024 (west, before the merger), 2 thefts Sep 2025, fire Oct 2025;
    # last year: 3 thefts (youth) + 2 traffic in September 2024, all in the old communes
    assert (inc["*"]["count"], inc["*"]["count_last_year"], inc["*"]["change"], inc["*"]["change_pct"]) \
        == (4, 5, -1, -20.0)
    assert (inc["crime/theft"]["count"], inc["crime/theft"]["count_last_year"]) == (3, 3)
    assert (inc["traffic"]["count"], inc["traffic"]["count_last_year"]) == (0, 2)
    assert (inc["fire"]["count"], inc["fire"]["count_last_year"]) == (1, 0)
    assert (inc["*"]["youth"]) == 0
    first = r.paragraphs["incidents"][0]
    assert "xảy ra 4 vụ việc" in first and "giảm 1 vụ (20,0%)" in first
    models = {x["item"]: x["value"] for x in r.tables["models"].rows}
    assert models["Mô hình hoạt động đầu kỳ"] == 1            # Tây Cũ's team, founded March 2024
    assert models["Mô hình xây dựng mới trong kỳ"] == 1       # Đông Cũ's cameras, February 2025
    assert models["Mô hình duy trì (hoạt động đầu và cuối kỳ)"] == 1
    assert models["Mô hình hoạt động cuối kỳ"] == 2
    ratings = {x["rating"]: x["value"] for x in r.tables["model_ratings"].rows}
    assert (ratings["Tốt"], ratings["Chưa xếp loại"]) == (1, 1)
    events = {x["kind"]: (x["n"], x["participants"]) for x in r.tables["events"].rows}
    assert events["Diễn đàn \"Công an xã lắng nghe ý kiến của nhân dân\""] == (2, 180)  # one held in Tây Cũ
    assert events["Ngày hội toàn dân bảo vệ ANTQ"] == (0, 0)  # 19/8/2024: before the period
    assert [x["name"] for x in r.tables["launch_points"].rows] == ["Điểm phát động xã Tây Cũ"]
    assert "0 lượt Ngày hội" in r.paragraphs["events"][0] and "2 lượt diễn đàn" in r.paragraphs["events"][0]
    # the KPI table of the report agrees: both forums of 2025 count towards "2 forums a year"
    forums = kpi.target_defs(eng)
    name = next(d.name_vi for d in forums if d.code == "forums")
    row = next(x for x in r.tables["kpis"].rows if x["target"] == name)
    assert row["actual"] == "2 lượt" and row["status"] == "Đạt"


def test_six_month_report_of_a_merged_unit_compares_with_before_the_merger(merged_year):
    """6-month report 2026 (1 Nov 2025 – 30 Apr 2026) of A against 1 Nov 2024 – 30 Apr 2025,
    when A did not exist yet: last year's figure is its old communes'."""
    eng, a = merged_year
    r = build_report(eng, "commune", a, "h1", 2026, sees_points=True, maps=False)
    assert (r.start, r.end, r.deadline) == (dt.date(2025, 11, 1), dt.date(2026, 4, 30), dt.date(2026, 5, 7))
    inc = {x["code"]: x for x in r.tables["incidents"].rows}
    assert (inc["*"]["count"], inc["*"]["count_last_year"], inc["*"]["change"], inc["*"]["change_pct"]) \
        == (3, 1, 2, 200.0)
    assert (inc["crime/theft"]["count"], inc["crime/theft"]["count_last_year"]) == (3, 1)
    models = {x["item"]: x["value"] for x in r.tables["models"].rows}
    assert (models["Mô hình hoạt động đầu kỳ"], models["Mô hình xây dựng mới trong kỳ"],
            models["Mô hình hoạt động cuối kỳ"]) == (2, 0, 2)
    events = {x["kind"]: x["n"] for x in r.tables["events"].rows}
    assert events["Lễ phát động phong trào"] == 1 and sum(events.values()) == 1
    # a committee's copy: the same comparison with the small counts hidden
    c = build_report(eng, "commune", a, "h1", 2026, sees_points=False, maps=False)
    cinc = {x["code"]: x for x in c.tables["incidents"].rows}
    assert (cinc["*"]["count"], cinc["*"]["count_last_year"], cinc["*"]["change"]) == (3, "< 3", None)
