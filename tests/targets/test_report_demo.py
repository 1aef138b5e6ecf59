"""The province roll-up report on the Hải Phòng demo: its figures equal counts written directly
in SQL, the DOCX and XLSX open, and a committee's report holds no incident point."""

from __future__ import annotations

import datetime as dt
import io
import re

from docx import Document
from openpyxl import load_workbook
from sqlalchemy import text

from reports.data import build_report
from reports.writers import to_docx, to_html, to_xlsx

START, END = dt.date(2025, 11, 1), dt.date(2026, 10, 31)

DIRECT_INCIDENTS = """
    SELECT count(*) FILTER (WHERE i.occurred_at >= '2025-11-01 00:00+07' AND i.occurred_at < '2026-11-01
        00:00+07'),
           count(*) FILTER (WHERE i.occurred_at >= '2024-11-01 00:00+07' AND i.occurred_at < '2025-11-01
               00:00+07')
    FROM incident i WHERE EXISTS (SELECT 1 FROM admin_unit c WHERE c.level = 'commune' AND
        c.province_code = '31'
                                   AND c.valid_to IS NULL AND ST_Intersects(c.geom, i.geom))"""
DIRECT_BY_COMMUNE = """
    SELECT c.code, count(*) FROM incident i JOIN admin_unit c ON c.level = 'commune' AND c.province_code
        = '31'
      AND c.valid_to IS NULL AND ST_Intersects(c.geom, i.geom)
    WHERE i.occurred_at >= '2025-11-01 00:00+07' AND i.occurred_at < '2026-11-01 00:00+07' GROUP BY 1"""
DIRECT_MODELS = """
    SELECT count(*) FILTER (WHERE NOT (status IN ('suspended', 'dissolved')
                                       AND coalesce(status_since, founded_on) <= :end)),
           count(*) FILTER (WHERE founded_on BETWEEN :start AND :end)
    FROM security_model m WHERE founded_on <= :end AND EXISTS (
        SELECT 1 FROM admin_unit c WHERE c.level = 'commune' AND c.province_code = '31' AND c.valid_to IS NULL
        AND ST_Intersects(c.geom, m.geom))"""


def test_province_rollup_equals_direct_sql(demo_engine, artifacts_dir):
    r = build_report(demo_engine, "province", "31", "year", 2026, sees_points=True)
    with demo_engine.connect() as conn:
        n, last = conn.execute(text(DIRECT_INCIDENTS)).one()
        by_commune = dict(conn.execute(text(DIRECT_BY_COMMUNE)).all())
        active, new = conn.execute(text(DIRECT_MODELS), {"start": START, "end": END}).one()
        events = dict(conn.execute(text("""SELECT kind, count(*) FROM movement_event
            WHERE held_on BETWEEN :s AND :e GROUP BY 1"""), {"s": START, "e": END}).all())
    total = next(x for x in r.tables["incidents"].rows if x["code"] == "*")
    assert (total["count"], total["count_last_year"]) == (n, last) and n > 1000
    assert total["change"] == n - last
    ranking = {x["code"]: x["incidents"] for x in r.tables["ranking"].rows}
    assert len(ranking) == 114 and ranking == {c: by_commune.get(c, 0) for c in ranking}
    models = {x["item"]: x["value"] for x in r.tables["models"].rows}
    assert models["Mô hình hoạt động cuối kỳ"] == active and models["Mô hình xây dựng mới trong kỳ"] == new
    ev = {x["kind"]: x["n"] for x in r.tables["events"].rows}
    assert ev["Ngày hội toàn dân bảo vệ ANTQ"] == events.get("festival", 0) > 0
    assert ev["Diễn đàn \"Công an xã lắng nghe ý kiến của nhân dân\""] == events["forum"]
    kpis = {x["target"]: x for x in r.tables["kpis"].rows}
    for x in kpis.values():
        assert x["met"] + x["on_track"] + x["at_risk"] + x["missed"] + x["no_data"] == 114
    docx_bytes, xlsx_bytes = to_docx(r), to_xlsx(r)
    (artifacts_dir / "report_province_demo.docx").write_bytes(docx_bytes)
    (artifacts_dir / "report_province_demo.xlsx").write_bytes(xlsx_bytes)
    doc = Document(io.BytesIO(docx_bytes))
    body = "\n".join(p.text for p in doc.paragraphs)
    assert f"xảy ra {n} vụ việc" in body and len(doc.inline_shapes) == 2
    wb = load_workbook(io.BytesIO(xlsx_bytes))
    ranking_sheet = wb[next(s for s in wb.sheetnames if "Xếp hạng" in s)]
    assert ranking_sheet.max_row - 3 == 114


def test_committee_report_holds_no_incident_point(demo_engine):
    r = build_report(demo_engine, "province", "31", "year", 2026, sees_points=False)
    assert r.annex is None
    with demo_engine.connect() as conn:
        points = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM incident WHERE occurred_at >= "
                                   "'2025-11-01' AND occurred_at < '2026-11-01'")).all()
    blobs = [to_html(r)]
    doc = Document(io.BytesIO(to_docx(r)))
    blobs.append("\n".join(p.text for p in doc.paragraphs))
    blobs.append("\n".join(c.text for t in doc.tables for row in t.rows for c in row.cells))
    wb = load_workbook(io.BytesIO(to_xlsx(r)))
    blobs.append("\n".join(str(v) for ws in wb for row in ws.iter_rows(values_only=True) for v in row))
    numbers = {round(float(x), 4) for blob in blobs for x in re.findall(r"\d{2,3}\.\d{4,}", blob)}
    leaked = [(x, y) for x, y in points if round(x, 4) in numbers and round(y, 4) in numbers]
    assert leaked == []
    hidden = [x for t in ("incidents", "incidents_by_unit") for x in r.tables[t].rows
              if x["count"] == "< 3"]
    shown = [x["count"] for t in ("incidents", "incidents_by_unit") for x in r.tables[t].rows
             if isinstance(x["count"], int)]
    assert all(c == 0 or c >= 3 for c in shown) and len(hidden) >= 0
