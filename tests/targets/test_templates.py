"""Excel in and out: the template of a commune's year, a filled upload changing the KPIs, the
same file again changing nothing, and every kind of bad file refused by name with nothing
written."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from antt.db import get_engine

YEAR = 2026
TABLES = ("unit_year", "institution_year", "model_rating", "movement_event", "plan_target",
          "target_value", "plan")


def fingerprint() -> dict[str, object]:
    """Everything an upload may write, as comparable text."""
    with get_engine().connect() as conn:
        sql = "SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) FROM {} x"
        return {t: conn.execute(text(sql.format(t))).scalar_one() for t in TABLES}


def download(client, headers, commune):
    r = client.get(f"/templates/{commune}/{YEAR}.xlsx", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    return r.content


def edit(data: bytes, changes: list[tuple[str, int, str, object]]) -> bytes:
    """(sheet, row, header, value) edits."""
    wb = load_workbook(io.BytesIO(data))
    for sheet, row, header, value in changes:
        ws = wb[sheet]
        headers = [c.value for c in ws[1]]
        col = headers.index(header) + 1
        ws.cell(row=row, column=col, value=value)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def find_row(data: bytes, sheet: str, header: str, value: object) -> int:
    ws = load_workbook(io.BytesIO(data))[sheet]
    col = [c.value for c in ws[1]].index(header)
    for i, row in enumerate(ws.iter_rows(min_row=2, values_only=True), start=2):
        if row[col] == value:
            return i
    raise AssertionError(f"{value!r} not in {sheet}")


def upload(client, headers, commune, data, **params):
    return client.post(f"/templates/{commune}/{YEAR}", headers=headers, params=params,
                       files={"file": ("mau.xlsx", data, "application/octet-stream")})


@pytest.fixture
def committee(make_user, codes):
    return make_user("committee", "commune", codes["commune_a"], username="bcd_xa_a")


def test_template_holds_the_commune_and_validates_coded_columns(handmade_client, committee, codes):
    data = download(handmade_client, committee, codes["commune_a"])
    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["Hướng dẫn", "Thôn", "Cơ quan", "Mô hình", "Sự kiện", "Chỉ tiêu", "Danh mục"]
    assert wb["Danh mục"].sheet_state == "hidden"
    info = [r for r in wb["Hướng dẫn"].iter_rows(values_only=True)]
    pairs = [r[:2] for r in info]
    assert ("Mã xã", codes["commune_a"]) in pairs and ("Năm", YEAR) in pairs
    assert any("Chỉ sửa các ô nền vàng" in (r[1] or "") for r in info)
    villages = list(wb["Thôn"].iter_rows(min_row=2, values_only=True))
    assert villages == [(codes["village_1"], "Một", "Có", "Khá", None),
                        (codes["village_2"], "Hai", "Không", "Yếu", None)]
    assert len([r for r in wb["Cơ quan"].iter_rows(min_row=2, values_only=True) if any(r)]) == 3
    models = {r[1] for r in wb["Mô hình"].iter_rows(min_row=2, values_only=True) if any(r)}
    assert models == {"M1 tốt", "M2 giải thể", "M3 trung bình", "M4 mới"}
    events = [r for r in wb["Sự kiện"].iter_rows(min_row=2, max_col=4, values_only=True) if any(r)]
    forum = "Công an xã lắng nghe ý kiến của nhân dân (lần 1)"
    assert [(e[1], e[2]) for e in events] == [("Phát động", "Phát động tại trường"), ("Diễn đàn", forum)]
    assert all(str(e[0]).startswith("ID:") for e in events)
    targets = [r[0] for r in wb["Chỉ tiêu"].iter_rows(min_row=2, values_only=True) if any(r)]
    assert targets == ["institutions_safe", "launched", "class_kha_or_better", "models_kept", "new_models",
                       "festival", "forums"]
    # every coded or typed editable column carries a validation rule
    for sheet, wanted in (("Thôn", {"C", "D", "E"}), ("Cơ quan", {"D", "E", "F", "G"}),
                          ("Mô hình", {"G", "H"}), ("Sự kiện", {"B", "D", "E", "F", "H"}),
                          ("Chỉ tiêu", {"F", "G", "H"})):
        covered = {str(rng).split(":")[0].rstrip("0123456789")
                   for dv in wb[sheet].data_validations.dataValidation for rng in dv.sqref.ranges}
        assert wanted <= covered, (sheet, covered)
    lists = [dv for dv in wb["Thôn"].data_validations.dataValidation if dv.type == "list"]
    assert lists and all("Danh mục" in dv.formula1 for dv in lists)


def test_round_trip_changes_kpis_then_nothing(handmade_client, committee, codes):
    data = download(handmade_client, committee, codes["commune_a"])
    same = upload(handmade_client, committee, codes["commune_a"], data)
    assert same.status_code == 200, same.text
    assert same.json()["changed"] == 0
    kpi_url = f"/kpis/commune/{codes['commune_a']}"
    before = handmade_client.get(kpi_url, params={"date": "2026-11-30", "records": False},
                                 headers=committee).json()
    b = {t["code"]: t for t in before["targets"]}
    assert (b["launched"]["numerator"], b["institutions_safe"]["numerator"]) == (3, 2)
    v2 = find_row(data, "Thôn", "Mã thôn", codes["village_2"])
    firm = find_row(data, "Cơ quan", "Tên cơ quan, doanh nghiệp, nhà trường", "Công ty TNHH Một")
    m3 = find_row(data, "Mô hình", "Tên mô hình", "M3 trung bình")
    forums = find_row(data, "Chỉ tiêu", "Mã chỉ tiêu", "forums")
    filled = edit(data, [
        ("Thôn", v2, "Phát động phong trào", "Có"), ("Thôn", v2, "Phân loại phong trào", "kha"),
        ("Cơ quan", firm, "Đạt chuẩn \"An toàn về ANTT\"", "co"),
        ("Cơ quan", firm, "Phát động phong trào", "Có"),
        ("Mô hình", m3, "Xếp loại mới", "Khá"), ("Mô hình", m3, "Ngày xếp loại mới", "15/11/2026"),
        ("Chỉ tiêu", forums, "Mức của xã (chỉ được nâng)", 3),
    ])
    # a new event row: the festival in village 1
    filled = edit(filled, [("Sự kiện", 4, "Loại sự kiện", "Ngày hội 19/8"),
                           ("Sự kiện", 4, "Tên sự kiện", "Ngày hội toàn dân bảo vệ ANTQ thôn Một"),
                           ("Sự kiện", 4, "Ngày tổ chức", "19/08/2026"),
                           ("Sự kiện", 4, "Mã thôn", codes["village_1"]),
                           ("Sự kiện", 4, "Số người tham dự", 150),
                           ("Sự kiện", 4, "Tệp đính kèm (cách nhau bởi ;)", "anh-1.jpg; bien-ban.pdf")])
    dry = upload(handmade_client, committee, codes["commune_a"], filled, dry_run=True)
    assert dry.status_code == 200 and dry.json()["changed"] == 5 and dry.json()["dry_run"] is True
    assert handmade_client.get("/events", params={"commune": codes["commune_a"]},
                               headers=committee).json()["number_matched"] == 2
    r = upload(handmade_client, committee, codes["commune_a"], filled)
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["changed"] == 5
    assert s["sheets"]["Thôn"] == {"created": 0, "updated": 1, "unchanged": 1, "removed": 0}
    assert s["sheets"]["Sự kiện"]["created"] == 1 and s["sheets"]["Sự kiện"]["unchanged"] == 2
    assert s["sheets"]["Mô hình"]["created"] == 1 and s["sheets"]["Chỉ tiêu"]["created"] == 1
    after = handmade_client.get(kpi_url, params={"date": "2026-11-30", "records": False},
                                headers=committee).json()
    a = {t["code"]: t for t in after["targets"]}
    # V2 had launched already (its launch point); the firm's launch is new
    assert (a["launched"]["numerator"], a["launched"]["denominator"]) == (4, 5)
    assert (a["class_kha_or_better"]["numerator"], a["institutions_safe"]["numerator"]) == (2, 3)
    assert a["festival"]["numerator"] == 1 and a["forums"]["threshold"] == 3
    events = handmade_client.get("/events", params={"commune": codes["commune_a"], "kind": "festival"},
                                 headers=committee).json()["events"]
    assert [(e["village_code"], e["participants"], e["attachments"]) for e in events] == [
        (codes["village_1"], 150, ["anh-1.jpg", "bien-ban.pdf"])]
    # the same file again: nothing changes
    print_before = fingerprint()
    again = upload(handmade_client, committee, codes["commune_a"], filled)
    assert again.status_code == 200 and again.json()["changed"] == 0
    assert fingerprint() == print_before
    # and a fresh template of the new state reads back unchanged too
    fresh = download(handmade_client, committee, codes["commune_a"])
    assert upload(handmade_client, committee, codes["commune_a"], fresh).json()["changed"] == 0


def _bad(client, headers, commune, data):
    before = fingerprint()
    r = upload(client, headers, commune, data)
    assert r.status_code == 422, r.text
    assert fingerprint() == before
    return r.json()["errors"]


def test_each_bad_file_names_its_error_and_writes_nothing(handmade_client, committee, codes, make_user):
    data = download(handmade_client, committee, codes["commune_a"])
    v1 = find_row(data, "Thôn", "Mã thôn", codes["village_1"])
    v2 = find_row(data, "Thôn", "Mã thôn", codes["village_2"])
    good_change = ("Thôn", v2, "Phát động phong trào", "Có")  # valid, yet not written with an error beside it

    errs = _bad(handmade_client, committee, codes["commune_a"],
                edit(data, [good_change, ("Thôn", v1, "Mã thôn", "99999-09")]))
    assert [(e["sheet"], e["row"], e["column"]) for e in errs] == [("Thôn", v1, "A")]
    assert "không tồn tại" in errs[0]["message_vi"] and "unknown village code" in errs[0]["message_en"]

    errs = _bad(handmade_client, committee, codes["commune_a"],
                edit(data, [good_change, ("Thôn", v1, "Mã thôn", codes["village_2"])]))
    assert [(e["sheet"], e["row"], e["column"]) for e in errs] == [("Thôn", max(v1, v2), "A")]
    assert "trùng" in errs[0]["message_vi"] and "repeats row" in errs[0]["message_en"]

    errs = _bad(handmade_client, committee, codes["commune_a"],
                edit(data, [good_change, ("Thôn", v1, "Phân loại phong trào", "Tốt lắm")]))
    assert [(e["sheet"], e["row"], e["column"], e["header"]) for e in errs] == [
        ("Thôn", v1, "D", "Phân loại phong trào")]
    assert "Xuất sắc" in errs[0]["message_vi"]

    # a unit of another commune: outside a commune account's scope
    with get_engine().begin() as conn:
        conn.execute(text("""INSERT INTO admin_unit (level, code, name, name_search, parent_id,
            province_code, valid_from, geom)
            SELECT 'village', code || '-77', 'Bảy', 'bay', id, province_code, '2025-07-01', geom
            FROM admin_unit WHERE level = 'commune' AND code = :b"""), {"b": codes["commune_b"]})
    errs = _bad(handmade_client, committee, codes["commune_a"],
                edit(data, [("Thôn", v1, "Mã thôn", codes["commune_b"] + "-77")]))
    assert "ngoài phạm vi tài khoản" in errs[0]["message_vi"]
    assert "outside the account's scope" in errs[0]["message_en"]
    province = make_user("committee", "province", codes["province"])
    errs = _bad(handmade_client, province, codes["commune_a"],
                edit(data, [("Thôn", v1, "Mã thôn", codes["commune_b"] + "-77")]))
    assert f"không thuộc xã {codes['commune_a']}" in errs[0]["message_vi"]

    # the template of another commune sent to this one
    other = download(handmade_client, province, codes["commune_b"])
    errs = _bad(handmade_client, province, codes["commune_a"], other)
    assert (errs[0]["sheet"], errs[0]["column"]) == ("Hướng dẫn", "B")
    assert codes["commune_b"] in errs[0]["message_vi"]

    # not an Excel file; a renamed column; a missing sheet
    errs = _bad(handmade_client, committee, codes["commune_a"], b"PK\x03\x04 not really a zip")
    assert "không đọc được tệp Excel" in errs[0]["message_vi"]
    errs = _bad(handmade_client, committee, codes["commune_a"],
                edit(data, [("Cơ quan", 1, "Loại", "Kiểu")]))
    assert (errs[0]["sheet"], errs[0]["row"], errs[0]["column"]) == ("Cơ quan", 1, "C")
    wb = load_workbook(io.BytesIO(data))
    del wb["Mô hình"]
    buf = io.BytesIO()
    wb.save(buf)
    errs = _bad(handmade_client, committee, codes["commune_a"], buf.getvalue())
    assert errs[0]["sheet"] == "Mô hình" and "thiếu trang" in errs[0]["message_vi"]

    # several errors at once, each by sheet/row/column: a future event, a rating without its date,
    # a threshold below the province's
    m1 = find_row(data, "Mô hình", "Tên mô hình", "M1 tốt")
    launched = find_row(data, "Chỉ tiêu", "Mã chỉ tiêu", "launched")
    errs = _bad(handmade_client, committee, codes["commune_a"], edit(data, [
        ("Sự kiện", 4, "Loại sự kiện", "Diễn đàn"), ("Sự kiện", 4, "Tên sự kiện", "Diễn đàn lần 2"),
        ("Sự kiện", 4, "Ngày tổ chức", "01/01/2099"),
        ("Mô hình", m1, "Xếp loại mới", "Tốt"),
        ("Chỉ tiêu", launched, "Mức của xã (chỉ được nâng)", 50),
    ]))
    where = {(e["sheet"], e["row"], e["column"]) for e in errs}
    assert where == {("Sự kiện", 4, "D"), ("Mô hình", m1, "H"), ("Chỉ tiêu", launched, "F")}
    texts = " | ".join(e["message_en"] for e in errs)
    assert "future" in texts and "both the rating and its date" in texts and "only raise" in texts


def test_uploads_respect_roles_and_scope(handmade_client, committee, codes, make_user):
    data = download(handmade_client, committee, codes["commune_a"])
    viewer = make_user("viewer")
    url = f"/templates/{codes['commune_a']}/{YEAR}.xlsx"
    assert handmade_client.get(url, headers=viewer).status_code == 403
    assert upload(handmade_client, viewer, codes["commune_a"], data).status_code == 403
    other = make_user("committee", "commune", codes["commune_b"])
    assert handmade_client.get(url, headers=other).status_code == 403
    assert upload(handmade_client, other, codes["commune_a"], data).status_code == 403


def test_events_import_and_crud(handmade_client, committee, codes):
    data = download(handmade_client, committee, codes["commune_a"])
    filled = edit(data, [("Sự kiện", 4, "Mã sự kiện", "DD-2026-02"), ("Sự kiện", 4, "Loại sự kiện", "forum"),
                         ("Sự kiện", 4, "Tên sự kiện", "Diễn đàn lần 2"),
                         ("Sự kiện", 4, "Ngày tổ chức", "20/09/2026"),
                         ("Thôn", 2, "Phát động phong trào", "Không")])  # ignored by the events import
    r = handmade_client.post("/events/import", headers=committee,
                             files={"file": ("su-kien.xlsx", filled, "application/octet-stream")})
    assert r.status_code == 200, r.text
    assert r.json()["changed"] == 1 and list(r.json()["sheets"]) == ["Sự kiện"]
    listed = handmade_client.get("/events", params={"kind": "forum"}, headers=committee).json()
    assert {e["external_id"] for e in listed["events"]} == {None, "DD-2026-02"}
    ev = next(e for e in listed["events"] if e["external_id"] == "DD-2026-02")
    got = handmade_client.get(f"/events/{ev['id']}", headers=committee)
    assert got.headers["ETag"] == 'W/"1"'
    body = {"kind": "forum", "title": "Diễn đàn lần 2 (sửa)", "held_on": "2026-09-20",
            "commune_code": codes["commune_a"], "place": "Nhà văn hóa", "participants": 90,
            "attachments": ["bien-ban.pdf"], "external_id": "DD-2026-02"}
    assert handmade_client.put(f"/events/{ev['id']}", json=body, headers=committee).status_code == 428
    ok = handmade_client.put(f"/events/{ev['id']}", json=body, headers={**committee, "If-Match": 'W/"1"'})
    assert ok.status_code == 200 and ok.json()["title"].endswith("(sửa)") and ok.headers["ETag"] == 'W/"2"'
    assert handmade_client.put(f"/events/{ev['id']}", json=body,
                               headers={**committee, "If-Match": 'W/"1"'}).status_code == 412
    bad = handmade_client.post("/events", json={**body, "external_id": None, "village_code": "nope",
                                                "attachments": ["../x.pdf"]}, headers=committee)
    assert bad.status_code == 422
    assert {e["field"].split(".")[0] for e in bad.json()["errors"]} == {"attachments"}
    bad = handmade_client.post("/events", json={**body, "external_id": None, "village_code": "nope"},
                               headers=committee)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "village_code"
    elsewhere = handmade_client.post("/events", json={**body, "external_id": None,
                                                      "commune_code": codes["commune_b"]}, headers=committee)
    assert elsewhere.status_code == 403
    gone = handmade_client.delete(f"/events/{ev['id']}", headers={**committee, "If-Match": 'W/"2"'})
    assert gone.status_code == 204
    with get_engine().connect() as conn:
        actions = conn.execute(text("SELECT action FROM audit_log WHERE entity IN ('events', 'template') "
                                    "ORDER BY id")).scalars().all()
    assert actions == ["import", "update", "delete"]
