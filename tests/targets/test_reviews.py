"""The review of models: the proposal rule by hand, then a review over HTTP on the hand-made data —
proposals with reasons, confirm/change with audit, dissolve as a status event, replicas."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from antt.db import get_engine
from geo.review import proposal_for

ON = dt.date(2026, 11, 20)
D = dt.date


@pytest.mark.parametrize("status, ratings, founded, expected, words", [
    ("suspended", [("tot", D(2025, 11, 15))], D(2020, 1, 1), "dissolve", "Ngừng hoạt động"),
    ("active", [("yeu", D(2024, 11, 15)), ("yeu", D(2025, 11, 15))], D(2020, 1, 1), "dissolve",
     "Yếu hai kỳ liên tiếp (15/11/2024, 15/11/2025)"),
    ("active", [("tot", D(2023, 11, 15))], D(2020, 1, 1), "dissolve", "2 năm"),
    ("active", [], D(2020, 1, 1), "dissolve", "chưa từng được xếp loại"),
    ("active", [], D(2026, 2, 1), "keep", "Mô hình mới"),
    ("active", [("yeu", D(2024, 11, 15)), ("tot", D(2025, 11, 15))], D(2020, 1, 1), "replicate", "Tốt"),
    ("active", [("kha", D(2025, 11, 15))], D(2020, 1, 1), "keep", "Khá"),
    ("active", [("trung_binh", D(2025, 11, 15))], D(2020, 1, 1), "strengthen", "Trung bình"),
    ("active", [("kha", D(2024, 11, 15)), ("yeu", D(2025, 11, 15))], D(2020, 1, 1), "strengthen",
     "nếu kỳ sau vẫn Yếu"),
])
def test_proposal_rule(status, ratings, founded, expected, words):
    p = proposal_for(status, D(2026, 5, 1) if status == "suspended" else None, founded, "none", ratings, ON)
    assert p.proposal == expected
    assert words in p.reason_vi and p.reason_en


def test_recognition_is_named():
    p = proposal_for("active", None, D(2020, 1, 1), "mps", [("tot", D(2025, 11, 15))], ON)
    assert "Bộ Công an ghi nhận" in p.reason_vi and "Ministry" in p.reason_en


def _open(client, headers, commune, **extra):
    return client.post("/reviews", json={"commune": commune, "year": 2026, "kind": "tong_ket",
                                         "reviewed_on": ON.isoformat(), **extra}, headers=headers)


def test_review_proposals_decisions_and_replicas(handmade_client, make_user, codes):
    with get_engine().begin() as conn:  # M3 rated poor twice: proposed for dissolution
        conn.execute(text("INSERT INTO model_rating (model_id, rating, rated_on) SELECT id, 'yeu', d "
                          "FROM security_model, (VALUES (DATE '2026-05-15'), (DATE '2026-11-15')) v(d) "
                          "WHERE name = 'M3 trung bình'"))
    committee = make_user("committee", "commune", codes["commune_a"], username="bcd_a")
    r = _open(handmade_client, committee, codes["commune_a"])
    assert r.status_code == 201, r.text
    rev = r.json()
    items = {i["name"]: i for i in rev["items"]}
    # M2 was dissolved in March: nothing left to decide
    assert set(items) == {"M1 tốt", "M3 trung bình", "M4 mới"}
    assert items["M1 tốt"]["proposal"] == "replicate" and "Tốt (15/11/2025)" in items["M1 tốt"]["reason_vi"]
    assert items["M3 trung bình"]["proposal"] == "dissolve"
    assert [x["rating"] for x in items["M3 trung bình"]["ratings"]] == ["trung_binh", "yeu", "yeu"]
    assert items["M4 mới"]["proposal"] == "keep"
    assert rev["open"] == 3 and rev["counts"]["proposed"] == {"replicate": 1, "dissolve": 1, "keep": 1}
    assert _open(handmade_client, committee, codes["commune_a"]).status_code == 409

    base = f"/reviews/{rev['id']}/items"
    # a planner opens reviews but does not decide; another commune's committee sees nothing
    assert handmade_client.put(f"{base}/{items['M1 tốt']['id']}", json={"decision": "replicate"},
                               headers=make_user("planner")).status_code == 403
    other = make_user("committee", "commune", codes["commune_b"])
    assert handmade_client.get(f"/reviews/{rev['id']}", headers=other).status_code == 403
    # changing a proposal needs a reason
    m3 = items["M3 trung bình"]["id"]
    no_reason = handmade_client.put(f"{base}/{m3}", json={"decision": "strengthen"}, headers=committee)
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == "reason"
    # M3: the committee confirms the dissolution -> the model's status and a status event
    ok = handmade_client.put(f"{base}/{m3}", json={"decision": "dissolve"}, headers=committee)
    assert ok.status_code == 200, ok.text
    again = handmade_client.put(f"{base}/{m3}", json={"decision": "keep", "reason": "x"}, headers=committee)
    assert again.status_code == 409
    # M4: changed to 'strengthen' with a reason; M1: confirmed by confirm-all
    m4 = items["M4 mới"]["id"]
    changed = handmade_client.put(f"{base}/{m4}", json={"decision": "strengthen",
                                                        "reason": "Hoạt động chưa đều"}, headers=committee)
    assert changed.status_code == 200
    done = handmade_client.post(f"/reviews/{rev['id']}/confirm", headers=committee).json()
    assert done["open"] == 0
    decided = {i["name"]: (i["decision"], i["decided_by"]) for i in done["items"]}
    assert decided == {"M1 tốt": ("replicate", "bcd_a"), "M3 trung bình": ("dissolve", "bcd_a"),
                       "M4 mới": ("strengthen", "bcd_a")}
    with get_engine().connect() as conn:
        m3_row = conn.execute(text("SELECT status, status_since FROM security_model "
                                   "WHERE name = 'M3 trung bình'")).one()
        events = conn.execute(text("SELECT m.name, e.decision, e.status_before, e.status_after, e.reason "
                                   "FROM model_status_event e JOIN security_model m ON m.id = e.model_id "
                                   "ORDER BY m.name")).all()
        audit = conn.execute(text("SELECT action, entity, count(*) FROM audit_log WHERE username = 'bcd_a' "
                                  "GROUP BY 1, 2 ORDER BY 1, 2")).all()
    assert (m3_row.status, m3_row.status_since) == ("dissolved", ON)
    assert [(e.name, e.decision, e.status_before, e.status_after) for e in events] == [
        ("M1 tốt", "replicate", "active", "active"), ("M3 trung bình", "dissolve", "active", "dissolved"),
        ("M4 mới", "strengthen", "active", "active")]
    assert events[2].reason == "Hoạt động chưa đều"
    assert [tuple(a) for a in audit] == [("create", "model_review", 1), ("decide", "model_review_item", 3),
                                         ("update", "models", 1)]
    # the replicated model seeds a planned new one in village 2
    m1 = items["M1 tốt"]["id"]
    rep = handmade_client.post(f"{base}/{m1}/replicas", json={"villages": [codes["village_2"]],
                                                              "launch_date": "2027-03-01"}, headers=committee)
    assert rep.status_code == 201, rep.text
    with get_engine().connect() as conn:
        lp = conn.execute(text("SELECT l.status, l.model_type_code, v.code, m.name FROM launch_point l "
                               "JOIN admin_unit v ON v.id = l.village_id "
                               "JOIN security_model m ON m.id = l.source_model_id "
                               "WHERE l.source_model_id IS NOT NULL")).one()
    assert tuple(lp) == ("planned", "to_tu_quan", codes["village_2"], "M1 tốt")
    not_rep = handmade_client.post(f"{base}/{m4}/replicas", json={"villages": [codes["village_2"]],
                                                                  "launch_date": "2027-03-01"},
                                   headers=committee)
    assert not_rep.status_code == 422 and not_rep.json()["errors"][0]["field"] == "item_id"
    bad_village = handmade_client.post(f"{base}/{m1}/replicas", json={"villages": ["nope"],
                                                                      "launch_date": "2027-03-01"},
                                       headers=committee)
    assert bad_village.status_code == 422 and bad_village.json()["errors"][0]["field"] == "villages.0"
    listed = handmade_client.get("/reviews", params={"commune": codes["commune_a"]}, headers=committee).json()
    assert [(x["items"], x["open"]) for x in listed["reviews"]] == [(3, 0)]


def test_review_roles_and_dates(handmade_client, make_user, codes):
    assert _open(handmade_client, make_user("viewer"), codes["commune_a"]).status_code == 403
    assert _open(handmade_client, make_user("committee", "commune", codes["commune_b"]),
                 codes["commune_a"]).status_code == 403
    future = _open(handmade_client, make_user("planner"), codes["commune_a"], reviewed_on="2099-01-01")
    assert future.status_code == 422 and future.json()["errors"][0]["field"] == "reviewed_on"
    wrong_year = _open(handmade_client, make_user("planner"), codes["commune_a"], reviewed_on="2024-05-01")
    assert wrong_year.status_code == 422
