"""Reports as jobs: POST /reports/... → 202 + /jobs/{id} with progress, files kept in PostgreSQL
(report_file) and downloaded from /reports/files/{id}; the job's documents say what the direct
call's say; owner, role and scope are checked again at download; the annex stays audited."""

from __future__ import annotations

import hashlib
import io
import time

from docx import Document
from openpyxl import load_workbook
from sqlalchemy import text

from antt.db import get_engine
from reports.writers import render

Q = {"kind": "year", "year": 2026}


def _wait(client, location: str, headers: dict, timeout_s: float = 180.0) -> tuple[dict, list[float]]:
    seen: list[float] = []
    deadline = time.monotonic() + timeout_s
    while True:
        state = client.get(location, headers=headers).json()
        seen.append(state["progress"])
        if state["status"] in ("done", "failed", "cancelled"):
            return state, seen
        assert time.monotonic() < deadline, state
        time.sleep(0.1)


def _start(client, path: str, body: dict, headers: dict) -> tuple[dict, dict]:
    r = client.post(path, json=body, headers=headers)
    assert r.status_code == 202, r.text
    location = r.headers["Location"]
    assert location == f"/jobs/{r.json()['id']}"
    state, _ = _wait(client, location, headers)
    assert state["status"] == "done", state
    result = client.get(f"{location}/result", headers=headers)
    assert result.status_code == 200
    return state, result.json()


def _docx_content(blob: bytes) -> tuple[list[str], list[list[str]], list[bytes]]:
    doc = Document(io.BytesIO(blob))
    paragraphs = [p.text for p in doc.paragraphs]
    cells = [[c.text for c in row.cells] for t in doc.tables for row in t.rows]
    images = sorted(p.blob for p in doc.part.package.parts if p.content_type == "image/png")
    return paragraphs, cells, images


def _xlsx_content(blob: bytes) -> dict[str, list[tuple]]:
    wb = load_workbook(io.BytesIO(blob))
    # the one line that differs between two runs: when the workbook was made
    return {ws.title: [row for row in ws.iter_rows(values_only=True) if row[0] != "Lập lúc (UTC)"]
            for ws in wb}


def test_province_report_job_equals_the_direct_call(handmade_client, make_user, codes):
    prov = codes["province"]
    h = make_user("committee", "province", prov)
    direct = {fmt: handmade_client.get(f"/reports/province/{prov}.{fmt}", params=Q, headers=h)
              for fmt in ("docx", "xlsx", "html")}
    assert all(r.status_code == 200 for r in direct.values())
    state, result = _start(handmade_client, f"/reports/province/{prov}", Q, h)
    assert state["kind"] == "reports.build" and state["progress"] == 1.0
    assert state["message"] == "Lưu tệp / storing the files"  # the last progress report was stored
    assert result["report"]["aggregates_only"] is True and result["report"]["figures"] == 2
    files = {f["format"]: f for f in result["files"]}
    assert sorted(files) == ["docx", "html", "xlsx"]
    got = {}
    for fmt, f in files.items():
        r = handmade_client.get(f["href"], headers=h)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith(f["media_type"].split(";")[0])
        assert hashlib.sha256(r.content).hexdigest() == f["sha256"] and len(r.content) == f["bytes"]
        got[fmt] = r.content
    assert files["docx"]["name"] == f"bao-cao-nam-2026-province-{prov}.docx"
    disposition = handmade_client.get(files["docx"]["href"], headers=h).headers["content-disposition"]
    assert disposition == f'attachment; filename="{files["docx"]["name"]}"'
    # the same document: every paragraph, every table cell, the same two map images
    job_doc, direct_doc = _docx_content(got["docx"]), _docx_content(direct["docx"].content)
    assert job_doc == direct_doc and len(job_doc[2]) == 2
    assert any("Xếp hạng các xã" in p for p in job_doc[0]) or any(
        "Xếp hạng các xã" in c for row in job_doc[1] for c in row)
    assert _xlsx_content(got["xlsx"]) == _xlsx_content(direct["xlsx"].content)
    assert got["html"].decode() == direct["html"].text
    # the files live in PostgreSQL, so any worker serves them
    with get_engine().connect() as conn:
        stored = conn.execute(text("SELECT format, size_bytes, owner, sees_points, annex FROM report_file "
                                   "WHERE job_id = :j ORDER BY format"), {"j": state["id"]}).all()
    assert [(s.format, s.sees_points, s.annex) for s in stored] == [
        ("docx", False, False), ("html", False, False), ("xlsx", False, False)]


def test_progress_per_section_and_per_map(handmade):
    eng, codes = handmade
    seen: list[tuple[float, str]] = []
    _r, files = render(eng, "province", codes["province"], "year", 2026, None, None, False, False, True,
                       ["xlsx"], lambda f, m: seen.append((f, m)))
    fractions = [f for f, _m in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] < 1.0
    messages = [m for _f, m in seen]
    for words in ("Vụ việc so với cùng kỳ", "Xếp hạng các xã", "Bản đồ 1/2", "Bản đồ 2/2", "Viết tệp XLSX"):
        assert any(m.startswith(words) for m in messages), words
    assert all(" / " in m for m in messages)  # Vietnamese / English
    # the maps weigh more than a table section: the bar moves the most around them
    i1 = next(i for i, m in enumerate(messages) if m.startswith("Bản đồ 1/2"))
    assert fractions[i1 + 1] - fractions[i1] > fractions[1] - fractions[0]
    assert files["xlsx"][:2] == b"PK"


def test_report_job_roles_scope_and_annex(handmade_client, make_user, codes):
    a, prov = codes["commune_a"], codes["province"]
    com = make_user("committee", "commune", a)
    body = {**Q, "maps": False, "formats": ["xlsx"]}
    # checked before any job starts, each refusal naming its field
    r = handmade_client.post(f"/reports/province/{prov}", json=body, headers=com)
    assert r.status_code == 403 and r.json()["errors"][0]["field"] == "code"  # its province: outside
    r = handmade_client.post(f"/reports/commune/{a}", json={**body, "annex": True}, headers=com)
    assert r.status_code == 403 and r.json()["errors"][0]["field"] == "annex"
    r = handmade_client.post(f"/reports/commune/{codes['commune_b']}", json=body, headers=com)
    assert r.status_code == 403 and r.json()["errors"][0]["field"] == "code"
    r = handmade_client.post(f"/reports/commune/{a}", json={**body, "formats": ["xlsx", "xlsx"]}, headers=com)
    assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("formats")
    r = handmade_client.post(f"/reports/commune/{a}", json={**body, "formats": ["pdf"]}, headers=com)
    assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("formats")
    r = handmade_client.post(f"/reports/commune/{a}", json={**body, "start": "2026-05-01",
                                                           "end": "2026-01-01"}, headers=com)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "end"
    with get_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM job")).scalar_one() == 0

    # the committee's own file: its owner gets it; nobody else's account sees it exists
    _, result = _start(handmade_client, f"/reports/commune/{a}", body, com)
    href = result["files"][0]["href"]
    assert handmade_client.get(href, headers=com).status_code == 200
    other = make_user("committee", "commune", a)
    assert handmade_client.get(href, headers=other).status_code == 404
    assert handmade_client.get(href, headers=make_user("admin")).status_code == 200
    # the account moved to another commune: its old commune's file is outside its scope now
    moved = make_user("committee", "commune", codes["commune_b"], username="bcd_a")
    _, mine = _start(handmade_client, f"/reports/commune/{codes['commune_b']}", body, moved)
    _, in_a = _start(handmade_client, f"/reports/commune/{a}", body,
                     make_user("committee", "commune", a, username="bcd_a"))
    now_b = make_user("committee", "commune", codes["commune_b"], username="bcd_a")
    assert handmade_client.get(mine["files"][0]["href"], headers=now_b).status_code == 200
    r = handmade_client.get(in_a["files"][0]["href"], headers=now_b)
    assert r.status_code == 403 and r.json()["errors"][0]["field"] == "code"

    # police with the annex: audited when made and on every download
    police = make_user("police", "province", prov, username="ca_tinh")
    _, annexed = _start(handmade_client, f"/reports/commune/{a}", {**body, "annex": True}, police)
    assert annexed["report"]["annex"] is True and annexed["report"]["aggregates_only"] is False
    href = annexed["files"][0]["href"]
    r = handmade_client.get(href, headers=police)
    assert r.status_code == 200
    assert any("Phụ lục" in n for n in load_workbook(io.BytesIO(r.content)).sheetnames)
    with get_engine().connect() as conn:
        audited = conn.execute(text("SELECT entity, count(*) FROM audit_log WHERE username = 'ca_tinh' "
                                    "AND action = 'read_points' GROUP BY 1 ORDER BY 1")).all()
    assert [tuple(x) for x in audited] == [("report_file", 1), ("reports", 1)]
    # the same account as a committee member no longer gets police figures
    demoted = make_user("committee", "province", prov, username="ca_tinh")
    r = handmade_client.get(href, headers=demoted)
    assert r.status_code == 403 and r.json()["errors"][0]["field"] == "file_id"
    bad = handmade_client.get("/reports/files/" + "x" * 36, headers=police)
    assert bad.status_code == 404
