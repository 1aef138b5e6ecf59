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


# --- events, reviews and the province report as a job ---------------------------------------

def _account(url: str, username: str, role: str, level: str, code: str) -> None:
    from antt.accounts import create_user

    eng = make_engine(url)
    with eng.begin() as conn:
        create_user(conn, username, f"{username}-pass", role, level, code, replace=True)
    eng.dispose()


def _open_panel(browser, base: str, username: str):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    r = context.request.post(f"{base}/auth/token",
                             form={"username": username, "password": f"{username}-pass"})
    assert r.ok, r.text()
    page = context.new_page()
    rec = Recorder(page, base)
    page.goto(f"{base}/")
    page.wait_for_selector("#targets-btn:not([hidden])")
    page.click("#targets-btn")
    page.wait_for_selector(".kpi-table tbody tr", timeout=60_000)
    return context, page, rec


def _event(url: str, title: str) -> dict | None:
    eng = make_engine(url)
    with eng.connect() as conn:
        row = conn.execute(text("SELECT id, kind, title, participants, place, notes, attachments, version, "
                                "created_by FROM movement_event WHERE title = :t"),
                           {"t": title}).mappings().first()
    eng.dispose()
    return dict(row) if row else None


def test_committee_adds_edits_and_deletes_an_event(live_server, demo_url, browser, artifacts_dir):
    import datetime as dt

    user, code = _commune_committee(demo_url)
    _account(demo_url, "bcd_xa_khac", "committee", "commune", code)  # a colleague in the same commune
    context, page, rec = _open_panel(browser, live_server, user)
    page.click(".tp-tabs button[data-tab=events]")
    page.wait_for_selector("#tp-event[data-mode=add]")
    held = dt.date.today().replace(day=1).isoformat()
    title = "Diễn đàn \"Công an xã lắng nghe ý kiến của nhân dân\" (thử nghiệm)"
    page.select_option("#tp-event select[name=kind]", "forum")
    page.fill("#tp-event input[name=title]", title)
    page.fill("#tp-event input[name=held_on]", held)
    page.fill("#tp-event input[name=place]", "Hội trường xã")
    page.fill("#tp-event input[name=participants]", "120")
    page.fill("#tp-event input[name=attachments]", "bien-ban.docx; anh-dien-dan.jpg")
    page.click("#tp-event button[type=submit]")
    row = page.locator("table.events tr[data-event]", has_text="(thử nghiệm)")
    row.wait_for()
    ev = _event(demo_url, title)
    assert ev and (ev["kind"], ev["participants"], ev["place"], ev["created_by"]) == (
        "forum", 120, "Hội trường xã", user)
    assert ev["attachments"] == ["bien-ban.docx", "anh-dien-dan.jpg"] and ev["version"] == 1
    assert row.locator(".e-files").inner_text() == "Tệp: bien-ban.docx, anh-dien-dan.jpg"

    # edit: the form opens with the event's values; the save carries If-Match
    row.locator("button[data-edit]").click()
    page.wait_for_selector("#tp-event[data-mode=edit]")
    assert page.input_value("#tp-event input[name=title]") == title
    assert page.input_value("#tp-event input[name=attachments]") == "bien-ban.docx; anh-dien-dan.jpg"
    assert page.get_attribute("#tp-event", "data-etag") == 'W/"1"'
    page.fill("#tp-event input[name=participants]", "150")
    page.fill("#tp-event input[name=attachments]", "bien-ban.docx; anh-dien-dan.jpg; ket-luan.pdf")
    page.fill("#tp-event textarea[name=notes]", "Nhân dân kiến nghị 5 nội dung")
    page.click("#tp-event button[type=submit]")
    page.wait_for_selector("#tp-event[data-mode=add]")
    ev = _event(demo_url, title)
    assert (ev["participants"], ev["version"], ev["notes"]) == (150, 2, "Nhân dân kiến nghị 5 nội dung")
    assert ev["attachments"] == ["bien-ban.docx", "anh-dien-dan.jpg", "ket-luan.pdf"]
    assert row.locator(".e-people").inner_text() == "150"

    # a colleague saves the same event while it is open here: our save is refused (412), shown in
    # Vietnamese and English, and the form reloads the colleague's version
    row.locator("button[data-edit]").click()
    page.wait_for_selector("#tp-event[data-mode=edit][data-etag='W/\"2\"']")
    other = browser.new_context()
    assert other.request.post(f"{live_server}/auth/token", form={"username": "bcd_xa_khac",
                                                                 "password": "bcd_xa_khac-pass"}).ok
    theirs = {"kind": "forum", "title": title, "held_on": held, "commune_code": code, "participants": 200,
              "place": "Nhà văn hóa thôn", "attachments": ["bien-ban.docx"]}
    r = other.request.put(f"{live_server}/events/{ev['id']}", data=theirs, headers={"If-Match": 'W/"2"'})
    assert r.status == 200, r.text()
    page.fill("#tp-event input[name=participants]", "175")
    page.click("#tp-event button[type=submit]")
    stale = page.locator("#tp-event .stale:not([hidden])")
    stale.wait_for()
    assert "Sự kiện đã được người khác sửa" in stale.locator("p[lang=vi]").inner_text()
    assert "Someone else changed or deleted this event" in stale.locator("p[lang=en]").inner_text()
    assert page.input_value("#tp-event input[name=place]") == "Nhà văn hóa thôn"
    assert page.input_value("#tp-event input[name=participants]") == "200"
    assert page.get_attribute("#tp-event", "data-etag") == 'W/"3"'
    assert _event(demo_url, title)["participants"] == 200  # our stale write changed nothing
    page.screenshot(path=str(artifacts_dir / "targets_panel_event_412.png"))
    page.fill("#tp-event input[name=participants]", "175")  # saved again, on the current version
    page.click("#tp-event button[type=submit]")
    page.wait_for_selector("#tp-event[data-mode=add]")
    assert (_event(demo_url, title)["participants"], _event(demo_url, title)["version"]) == (175, 4)

    # delete, after the confirmation dialog
    page.once("dialog", lambda d: d.accept())
    row.locator("button[data-del]").click()
    row.wait_for(state="detached")
    assert _event(demo_url, title) is None
    eng = make_engine(demo_url)
    with eng.connect() as conn:
        audit = conn.execute(text("SELECT username, action FROM audit_log WHERE entity = 'events' "
                                  "AND entity_id = :i ORDER BY id"), {"i": str(ev["id"])}).all()
    eng.dispose()
    assert [tuple(a) for a in audit] == [(user, "create"), (user, "update"), ("bcd_xa_khac", "update"),
                                         (user, "update"), (user, "delete")]
    assert [e for e in rec.errors if "412" not in e] == []
    assert len([e for e in rec.errors if e.startswith("HTTP 412")]) == 1  # the one stale save
    other.close()
    context.close()


def test_committee_confirms_and_changes_review_proposals(live_server, demo_url, browser, artifacts_dir):
    user, code = _commune_committee(demo_url)
    context, page, rec = _open_panel(browser, live_server, user)
    page.click(".tp-tabs button[data-tab=reviews]")
    page.click("ul.reviews a[data-id]")
    page.wait_for_selector("table.review tr[data-item] select")
    rows = page.eval_on_selector_all("table.review tr[data-item]",
                                     "rs => rs.filter(r => r.querySelector('select'))"
                                     ".map(r => [Number(r.dataset.item), r.dataset.proposal])")
    assert len(rows) >= 2, rows
    (first, first_proposal), (second, second_proposal) = rows[0], rows[1]
    decided = "tr[data-item='{}']:not(:has(select))"
    # confirm the first as proposed
    page.click(f"tr[data-item='{first}'] button.confirm")
    page.wait_for_selector(decided.format(first))
    # change the second: without a reason the server refuses and says why; with one it is taken
    other = next(d for d in ("replicate", "keep", "strengthen", "dissolve") if d != second_proposal)
    page.select_option(f"tr[data-item='{second}'] select", other)
    page.click(f"tr[data-item='{second}'] button.confirm")
    page.wait_for_selector("#toast:not([hidden])")
    assert "lý do" in page.inner_text("#toast").lower()
    assert page.locator(f"tr[data-item='{second}'] select").count() == 1  # still open
    reason = "Mô hình hoạt động thực tế khác đánh giá (kiểm tra ngày 20/11)"
    page.select_option(f"tr[data-item='{second}'] select", other)
    page.fill(f"tr[data-item='{second}'] input", reason)
    page.click(f"tr[data-item='{second}'] button.confirm")
    page.wait_for_selector(decided.format(second))
    assert page.inner_text(f"tr[data-item='{second}'] small.why") == reason
    page.screenshot(path=str(artifacts_dir / "targets_panel_review.png"))
    eng = make_engine(demo_url)
    with eng.connect() as conn:
        items = {r.id: r for r in conn.execute(text(
            "SELECT id, model_id, proposal, decision, decision_reason, decided_by FROM model_review_item "
            "WHERE id IN (:a, :b)"), {"a": first, "b": second})}
        events = {r.model_id: r for r in conn.execute(text(
            "SELECT model_id, decision, decided_by, reason FROM model_status_event WHERE review_item_id "
            "IN (:a, :b)"), {"a": first, "b": second})}
        audited = conn.execute(text("SELECT entity_id FROM audit_log WHERE username = :u "
                                    "AND action = 'decide' AND entity = 'model_review_item' ORDER BY id"),
                               {"u": user}).scalars().all()
    eng.dispose()
    a, b = items[first], items[second]
    assert (a.decision, a.decision_reason, a.decided_by) == (first_proposal, None, user)
    assert (b.proposal, b.decision, b.decision_reason, b.decided_by) == (second_proposal, other, reason, user)
    assert events[a.model_id].decision == first_proposal and events[a.model_id].decided_by == user
    assert (events[b.model_id].decision, events[b.model_id].reason) == (other, reason)
    assert audited == [str(first), str(second)]  # each decision audited once, the refused one not
    assert [e for e in rec.errors if "422" not in e] == []  # the one 422: the change without a reason
    context.close()


def test_province_committee_builds_the_roll_up_as_a_job(live_server, demo_url, browser, tmp_path):
    import datetime as dt

    eng = make_engine(demo_url)
    with eng.connect() as conn:
        province = conn.execute(text("SELECT province_code FROM admin_unit WHERE level = 'commune' "
                                     "ORDER BY code LIMIT 1")).scalar_one()
    eng.dispose()
    _account(demo_url, "bcd_tinh", "committee", "province", province)
    context, page, rec = _open_panel(browser, live_server, "bcd_tinh")
    page.click(".tp-tabs button[data-tab=reports]")
    page.select_option("#tp-report select[name=level]", "province")
    page.select_option("#tp-report select[name=kind]", "year")
    assert page.locator("#tp-report .direct").is_hidden() and page.locator("#tp-build").is_visible()
    page.click("#tp-build")
    page.wait_for_selector("#tp-job progress")
    page.wait_for_selector("#tp-job-done", timeout=240_000)
    assert page.eval_on_selector("#tp-job-bar", "b => b.value") == 1
    assert int(page.get_attribute("#tp-job-bar", "data-seen")) >= 2  # the bar moved while it ran
    hrefs = page.eval_on_selector_all("#tp-job-files a[data-file]",
                                      "as => as.map(a => [a.dataset.file, a.getAttribute('href')])")
    assert [f for f, _h in hrefs] == ["docx", "xlsx", "html"]
    assert all(h.startswith("/reports/files/") for _f, h in hrefs)
    with page.expect_download(timeout=60_000) as dl:
        page.click("#tp-job-files a[data-file=docx]")
    path = tmp_path / "bao-cao-tinh.docx"
    dl.value.save_as(path)
    year = dt.date.today().year
    assert dl.value.suggested_filename == f"bao-cao-nam-{year}-province-{province}.docx"
    doc = Document(str(path))
    titles = "\n".join(p.text for p in doc.paragraphs)
    assert "BÁO CÁO" in titles and "Bảng 12. Xếp hạng các xã, phường theo số chỉ tiêu đạt" in titles
    html = context.request.get(f"{live_server}{dict(hrefs)['html']}")
    assert html.ok and "<h1>BÁO CÁO</h1>" in html.text()
    # another account cannot fetch the file
    _account(demo_url, "bcd_tinh_2", "committee", "province", province)
    other = browser.new_context()
    assert other.request.post(f"{live_server}/auth/token", form={"username": "bcd_tinh_2",
                                                                 "password": "bcd_tinh_2-pass"}).ok
    assert other.request.get(f"{live_server}{dict(hrefs)['docx']}").status == 404
    assert rec.errors == [] and rec.foreign() == []
    other.close()
    context.close()
