"""The "Chỉ tiêu & Báo cáo" panel in a real Chromium: a commune's committee checks its KPIs,
colours the map, uploads a filled Excel template and downloads its report."""

from __future__ import annotations

from docx import Document
from openpyxl import load_workbook
from sqlalchemy import text
from test_page import Recorder

from antt.db import make_engine

KPIS_SHOWN = "document.querySelectorAll('#tp-unit .kpis .kpi[data-status]').length > 0"


def _commune_committee(url: str) -> tuple[str, str]:
    """A committee account scoped to the first demo commune with villages; (username, commune code)."""
    from antt.accounts import create_user

    eng = make_engine(url)
    with eng.begin() as conn:
        code = conn.execute(text("""SELECT c.code FROM admin_unit c WHERE c.level = 'commune'
            AND EXISTS (SELECT 1 FROM admin_unit v WHERE v.parent_id = c.id AND v.level = 'village')
            ORDER BY c.code LIMIT 1""")).scalar_one()
        create_user(conn, "bcd_xa", "bcd_xa-pass", "committee", "commune", code, replace=True)
    eng.dispose()
    return "bcd_xa", code


def test_committee_checks_kpis_uploads_a_template_and_downloads_a_report(live_server, demo_url, browser,
                                                                          artifacts_dir, tmp_path):
    user, code = _commune_committee(demo_url)
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    r = context.request.post(f"{live_server}/auth/token", form={"username": user, "password": "bcd_xa-pass"})
    assert r.ok, r.text()
    page = context.new_page()
    rec = Recorder(page, live_server)
    page.goto(f"{live_server}/")
    page.wait_for_selector("#targets-btn:not([hidden])")
    page.click("#targets-btn")
    page.wait_for_function(KPIS_SHOWN, timeout=60_000)
    # the bars show what the server computed for this commune, status by status
    truth = context.request.get(f"{live_server}/kpis/commune/{code}?records=false").json()
    shown = page.eval_on_selector_all("#tp-unit .kpis .kpi",
                                      "els => els.map(e => [e.dataset.target, e.dataset.status])")
    assert shown == [[t["code"], t["status"]] for t in truth["targets"]]
    assert page.eval_on_selector_all(".kpi-table tbody tr", "rows => rows.map(r => r.dataset.code)") == [code]
    assert page.locator("details.village").count() > 0
    page.check("#tp-colour")
    page.wait_for_function("document.body.dataset.kpiLayer === '1'")
    page.screenshot(path=str(artifacts_dir / "targets_panel_kpis.png"))

    # Excel: download the template, mark every village as having held the festival, upload it
    page.click(".tp-tabs button[data-tab=excel]")
    page.wait_for_selector("#tp-template")
    with page.expect_download() as dl:
        page.click("#tp-template")
    template = tmp_path / "mau.xlsx"
    dl.value.save_as(template)
    wb = load_workbook(template)
    ws = wb["Thôn"]
    col = [c.value for c in ws[1]].index("Tổ chức Ngày hội 19/8") + 1
    rows = [r for r in range(2, ws.max_row + 1) if ws.cell(r, 1).value]
    changed = [r for r in rows if ws.cell(r, col).value != "Có"]
    for r_ in rows:
        ws.cell(r_, col, value="Có")
    wb.save(template)
    page.set_input_files("#tp-upload input[type=file]", str(template))
    page.click("#tp-upload button[type=submit]")
    page.wait_for_selector("#tp-upload-ok", timeout=60_000)
    assert page.inner_text("#tp-upload-ok b") == str(len(changed))
    eng = make_engine(demo_url)
    with eng.connect() as conn:
        held = conn.execute(text("""SELECT count(*) FILTER (WHERE uy.festival_held), count(*)
            FROM admin_unit v JOIN admin_unit c ON c.id = v.parent_id
            JOIN unit_year uy ON uy.unit_id = v.id
             AND uy.year = EXTRACT(year FROM now() AT TIME ZONE 'Asia/Ho_Chi_Minh')
            WHERE v.level = 'village' AND c.code = :c"""), {"c": code}).one()
    eng.dispose()
    assert held[0] == held[1] == len(rows)
    # a file with a bad value: the errors are shown by sheet, row and column; nothing written
    ws.cell(rows[0], col, value="Có lẽ")
    wb.save(template)
    page.set_input_files("#tp-upload input[type=file]", str(template))
    page.click("#tp-upload button[type=submit]")
    page.wait_for_selector("#tp-upload-errors")
    cells = page.eval_on_selector_all("#tp-upload-result tbody tr td", "tds => tds.map(t => t.innerText)")
    assert cells[:3] == ["Thôn", str(rows[0]), "E"]

    # the report: DOCX download, and the print view
    page.click(".tp-tabs button[data-tab=reports]")
    page.select_option("#tp-report select[name=kind]", "year")
    with page.expect_download(timeout=120_000) as dl:
        page.click("#tp-report a[data-fmt=docx]")
    path = tmp_path / "bao-cao.docx"
    dl.value.save_as(path)
    doc = Document(str(path))
    text_ = "\n".join(p.text for p in doc.paragraphs)
    assert "BÁO CÁO" in text_ and "Độc lập - Tự do - Hạnh phúc" in "\n".join(
        c.text for t in doc.tables for row in t.rows for c in row.cells)
    assert dl.value.suggested_filename.endswith(f"-commune-{code}.docx")
    page.screenshot(path=str(artifacts_dir / "targets_panel_reports.png"))
    assert [e for e in rec.errors if "422" not in e] == []  # the one 422 is the bad file above
    assert rec.foreign() == []
    context.close()
