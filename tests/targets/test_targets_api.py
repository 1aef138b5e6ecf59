"""/targets, /plans, /kpis over HTTP on the hand-made data: roles, scope, thresholds, records."""

from __future__ import annotations

from sqlalchemy import text

from antt.db import get_engine

JUNE = "2026-06-30"


def test_definitions_list_the_seed_targets(handmade_client, make_user):
    r = handmade_client.get("/targets/definitions", headers=make_user("viewer"))
    assert r.status_code == 200, r.text
    codes = [t["code"] for t in r.json()["targets"]]
    assert codes == ["institutions_safe", "launched", "class_kha_or_better", "models_kept", "new_models",
                     "festival", "forums"]
    forum = r.json()["targets"][-1]
    assert forum["default_threshold"] == 2 and forum["unit"]["vi"] == "lượt"


def test_kpi_table_for_a_commune_committee(handmade_client, make_user, codes):
    h = make_user("committee", "commune", codes["commune_a"])
    r = handmade_client.get("/kpis", params={"date": JUNE}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [u["code"] for u in body["units"]] == [codes["commune_a"]]  # only its commune
    u = body["units"][0]
    assert (u["met"], u["on_track"], u["at_risk"], u["missed"]) == (1, 4, 2, 0)
    assert u["kpis"]["launched"]["numerator"] == 3 and u["kpis"]["launched"]["denominator"] == 5
    # another commune or the province is outside its scope
    assert handmade_client.get("/kpis", params={"commune": codes["commune_b"]}, headers=h).status_code == 403
    assert handmade_client.get("/kpis", params={"province": codes["province"]}, headers=h).status_code == 403
    assert handmade_client.get(f"/kpis/commune/{codes['commune_b']}", headers=h).status_code == 403
    villages = handmade_client.get("/kpis", params={"date": JUNE, "level": "village"}, headers=h).json()
    assert {u["code"] for u in villages["units"]} == {codes["village_1"], codes["village_2"]}


def test_kpi_table_sorts_and_ranks(handmade_client, make_user, codes):
    h = make_user("committee", "province", codes["province"])
    r = handmade_client.get("/kpis", params={"date": JUNE, "sort": "new_models", "order": "desc"}, headers=h)
    assert r.status_code == 200, r.text
    units = r.json()["units"]
    assert len(units) == 114
    assert {units[0]["code"], units[1]["code"]} == {codes["commune_a"], codes["commune_b"]}
    by_name = handmade_client.get("/kpis", params={"date": JUNE, "sort": "name"}, headers=h).json()["units"]
    names = [u["name"] for u in by_name]
    assert names == sorted(names, key=lambda n: (n is None, n))
    bad = handmade_client.get("/kpis", params={"sort": "nope"}, headers=h)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "sort"
    ranking = handmade_client.get("/kpis/ranking", params={"date": JUNE}, headers=h).json()["ranking"]
    assert [x["rank"] for x in ranking] == list(range(1, 115))
    mets = [x["met"] for x in ranking]
    assert mets == sorted(mets, reverse=True)


def test_unit_kpis_carry_their_records(handmade_client, make_user, codes):
    r = handmade_client.get(f"/kpis/commune/{codes['commune_a']}", params={"date": JUNE},
                            headers=make_user("viewer"))
    assert r.status_code == 200, r.text
    t = {x["code"]: x for x in r.json()["targets"]}
    assert t["festival"]["due_date"] == "2026-08-19" and t["festival"]["status"] == "at_risk"
    recs = t["models_kept"]["records"]
    assert {(x["name"], x["counted"]) for x in recs} == {("M1 tốt", True), ("M2 giải thể", False)}
    assert any(e.startswith("rating:tot@") for e in recs[0]["evidence"])
    assert len(t["launched"]["records"]) == 5


def test_plan_thresholds_commune_may_only_raise(handmade_client, make_user, codes):
    prov = make_user("committee", "province", codes["province"])
    r = handmade_client.put(f"/plans/province/{codes['province']}/2026",
                            json={"title": "Kế hoạch 2026", "targets": {"launched": 70}}, headers=prov)
    assert r.status_code == 200, r.text
    com = make_user("committee", "commune", codes["commune_a"])
    low = handmade_client.put(f"/plans/commune/{codes['commune_a']}/2026",
                              json={"targets": {"launched": 65, "forums": 1}}, headers=com)
    assert low.status_code == 422
    fields = {e["field"] for e in low.json()["errors"]}
    assert fields == {"targets.launched", "targets.forums"}
    assert "70" in low.json()["errors"][0]["message_en"] or "2" in low.json()["errors"][0]["message_en"]
    ok = handmade_client.put(f"/plans/commune/{codes['commune_a']}/2026",
                             json={"doc_number": "05/KH-BCĐ", "targets": {"launched": 90, "forums": 4}},
                             headers=com)
    assert ok.status_code == 200, ok.text
    view = {t["code"]: t for t in ok.json()["targets"]}
    assert (view["launched"]["threshold"], view["launched"]["province_threshold"]) == (90, 70)
    assert view["launched"]["threshold_source"] == "commune"
    kp = handmade_client.get(f"/kpis/commune/{codes['commune_a']}", params={"date": JUNE, "records": False},
                             headers=com).json()
    assert {t["code"]: t["threshold"] for t in kp["targets"]}["forums"] == 4
    # a commune account may not touch the province plan, nor another commune's
    assert handmade_client.put(f"/plans/province/{codes['province']}/2026", json={},
                               headers=com).status_code == 403
    assert handmade_client.put(f"/plans/commune/{codes['commune_b']}/2026", json={},
                               headers=com).status_code == 403
    assert handmade_client.put(f"/plans/commune/{codes['commune_a']}/2026", json={},
                               headers=make_user("viewer")).status_code == 403
    unknown = handmade_client.put(f"/plans/commune/{codes['commune_a']}/2026",
                                  json={"targets": {"nope": 3}}, headers=com)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "targets.nope"
    with get_engine().connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM audit_log WHERE entity = 'plan'")).scalar_one()
    assert n == 2


def test_user_added_target_end_to_end(handmade_client, make_user, codes):
    com = make_user("committee", "commune", codes["commune_a"])
    body = {"code": "camera_count", "name_vi": "Camera an ninh lắp mới", "name_en": "New security cameras",
            "measure": "count", "unit_vi": "camera", "unit_en": "cameras", "direction": "ge",
            "default_threshold": 10}
    assert handmade_client.post("/targets/definitions", json=body, headers=com).status_code == 201
    assert handmade_client.post("/targets/definitions", json=body, headers=com).status_code == 409
    bad = handmade_client.post("/targets/definitions", json={**body, "code": "x_pct", "measure": "percent",
                                                           "default_threshold": 120}, headers=com)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "default_threshold"
    r = handmade_client.put(f"/plans/commune/{codes['commune_a']}/2026",
                            json={"targets": {"camera_count": 12}}, headers=com)
    assert r.status_code == 200, r.text
    v = handmade_client.post("/targets/values", json={"target_code": "camera_count", "level": "commune",
                                                      "code": codes["commune_a"], "year": 2026, "value": 13,
                                                      "recorded_on": "2026-05-20"}, headers=com)
    assert v.status_code == 201, v.text
    computed = handmade_client.post("/targets/values", json={"target_code": "forums", "level": "commune",
                                                             "code": codes["commune_a"], "year": 2026,
                                                             "value": 3, "recorded_on": "2026-05-20"},
                                    headers=com)
    assert computed.status_code == 422 and computed.json()["errors"][0]["field"] == "target_code"
    elsewhere = handmade_client.post("/targets/values", json={
        "target_code": "camera_count", "level": "commune", "code": codes["commune_b"], "year": 2026,
        "value": 3, "recorded_on": "2026-05-20"}, headers=com)
    assert elsewhere.status_code == 403
    kp = handmade_client.get(f"/kpis/commune/{codes['commune_a']}", params={"date": JUNE}, headers=com).json()
    cam = {t["code"]: t for t in kp["targets"]}["camera_count"]
    assert (cam["actual"], cam["threshold"], cam["status"]) == (13, 12, "met")


def test_kpi_layer_colours_communes_by_targets_met(handmade_client, make_user, codes):
    """The catalogue's kpi_communes layer (features and tiles) counts what /kpis counts, as of
    the date asked with datetime=."""
    h = make_user("committee", "province", codes["province"])
    r = handmade_client.get("/collections/kpi_communes/items",
                            params={"limit": 200, "datetime": "2026-06-30"}, headers=h)
    assert r.status_code == 200, r.text
    props = {f["properties"]["code"]: f["properties"] for f in r.json()["features"]}
    assert len(props) == 114
    table = handmade_client.get("/kpis", params={"date": "2026-06-30"}, headers=h).json()["units"]
    for u in table:
        p = props[u["code"]]
        assert (p["met"], p["on_track"], p["at_risk"], p["missed"], p["no_data"]) == \
            (u["met"], u["on_track"], u["at_risk"], u["missed"], u["no_data"])
    assert props[codes["commune_a"]]["met"] == 1 and props[codes["commune_a"]]["year"] == 2026
    commune = make_user("committee", "commune", codes["commune_a"])
    mine = handmade_client.get("/collections/kpi_communes/items", params={"datetime": "2026-06-30"},
                               headers=commune).json()["features"]
    assert [f["properties"]["code"] for f in mine] == [codes["commune_a"]]
    tile = handmade_client.get("/collections/kpi_communes/tiles/WebMercatorQuad/8/206/113", headers=h)
    assert tile.status_code in (200, 204), tile.text


def test_reports_roles_scope_and_annex(handmade_client, make_user, codes):
    import io

    from docx import Document
    from openpyxl import load_workbook

    com = make_user("committee", "commune", codes["commune_a"])
    url = f"/reports/commune/{codes['commune_a']}"
    q = {"kind": "year", "year": 2026, "maps": False}
    r = handmade_client.get(f"{url}.docx", params=q, headers=com)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.word")
    text_ = "\n".join(p.text for p in Document(io.BytesIO(r.content)).paragraphs)
    assert "Kỳ báo cáo từ ngày 01/11/2025 đến ngày 31/10/2026" in text_
    xlsx = handmade_client.get(f"{url}.xlsx", params=q, headers=com)
    wb = load_workbook(io.BytesIO(xlsx.content))
    kpi_sheet = wb[next(n for n in wb.sheetnames if "chỉ tiêu" in n)]
    rows = {row[0]: row[1:] for row in kpi_sheet.iter_rows(min_row=4, values_only=True) if row[0]}
    assert rows["Mô hình mới xây dựng trong năm"][:3] == ("≥ 1 mô hình", "1 mô hình", "Đạt")
    page = handmade_client.get(f"{url}.html", params=q, headers=com)
    assert page.headers["content-type"].startswith("text/html") and "<h1>BÁO CÁO</h1>" in page.text
    # the annex is police data; a commune account has no province roll-up; scope holds
    assert handmade_client.get(f"{url}.docx", params={**q, "annex": True}, headers=com).status_code == 403
    assert handmade_client.get(f"/reports/province/{codes['province']}.xlsx", params=q,
                               headers=com).status_code == 403
    other = make_user("committee", "commune", codes["commune_b"])
    assert handmade_client.get(f"{url}.xlsx", params=q, headers=other).status_code == 403
    police = make_user("police", username="ca_tinh")
    annexed = handmade_client.get(f"{url}.xlsx", params={**q, "annex": True}, headers=police)
    assert annexed.status_code == 200
    assert any("Phụ lục" in n for n in load_workbook(io.BytesIO(annexed.content)).sheetnames)
    with get_engine().connect() as conn:
        audited = conn.execute(text("SELECT count(*) FROM audit_log WHERE username = 'ca_tinh' "
                                    "AND action = 'read_points' AND entity = 'reports'")).scalar_one()
    assert audited == 1
    bad = handmade_client.get(f"{url}.docx", params={"start": "2026-05-01", "end": "2026-01-01"}, headers=com)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "end"
