"""GET /units/{level}/{code}/summary: coverage, models with ratings, targets and the monthly
trend, with small counts suppressed for committee accounts and scope enforced."""

from __future__ import annotations

from sqlalchemy import text

from antt.db import get_engine

ON = "2025-09-15"


def seed() -> tuple[str, str]:
    """One commune with a village (its whole area), models, institutions and incidents."""
    with get_engine().begin() as conn:
        cid, code, prov = conn.execute(text("SELECT id, code, province_code FROM admin_unit "
                                            "WHERE level = 'commune' ORDER BY code LIMIT 1")).one()
        vid = conn.execute(text(
            "INSERT INTO admin_unit (level, code, name, name_search, parent_id, province_code, valid_from, "
            "population, geom) SELECT 'village', :c || '01', 'Thôn Một', 'thon mot', id, province_code, "
            "valid_from, 1200, geom FROM admin_unit WHERE id = :id RETURNING id"),
            {"c": code, "id": cid}).scalar()
        at = "(SELECT ST_PointOnSurface(geom) FROM admin_unit WHERE id = :id)"
        m1 = conn.execute(text(f"INSERT INTO security_model (type_code, name, founded_on, geom) VALUES "
                               f"('camera_antt', 'Camera thôn', '2025-02-01', {at}) RETURNING id"),
                          {"id": cid}).scalar()
        conn.execute(text(f"INSERT INTO security_model (type_code, name, founded_on, geom) VALUES "
                          f"('to_tu_quan', 'Tổ tự quản', '2023-02-01', {at})"), {"id": cid})
        conn.execute(text("INSERT INTO model_rating (model_id, rating, rated_on) VALUES "
                          "(:m, 'yeu', '2025-03-01'), (:m, 'kha', '2025-08-01'), (:m, 'tot', '2025-12-01')"),
                     {"m": m1})
        for name, safe in (("UBND", True), ("Trường", True), ("Công ty", False)):
            iid = conn.execute(text(f"INSERT INTO institution (kind, name, geom) VALUES ('agency', :n, {at}) "
                                    "RETURNING id"), {"n": name, "id": cid}).scalar()
            conn.execute(text("INSERT INTO institution_year VALUES (:i, 2025, :s, true)"),
                         {"i": iid, "s": safe})
        conn.execute(text("INSERT INTO unit_year (unit_id, year, festival_held, movement_class, launched) "
                          "VALUES (:v, 2025, true, 'kha', true)"), {"v": vid})
        for when, n in (("2025-01-10", 4), ("2025-09-10", 1), ("2024-01-05", 5), ("2024-09-20", 2)):
            for _ in range(n):
                conn.execute(text(f"INSERT INTO incident (category_code, occurred_at, geom) VALUES "
                                  f"('crime/theft', CAST(:w AS timestamptz), {at})"),
                             {"w": when + " 10:00+07", "id": cid})
    return code, code + "01"


def test_commune_summary_for_police(haiphong_client, make_user):
    commune, village = seed()
    r = haiphong_client.get(f"/units/commune/{commune}/summary", params={"date": ON},
                            headers=make_user("police"))
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["unit"]["code"] == commune and len(s["unit"]["bbox"]) == 4
    assert s["coverage"]["villages"] == 1 and s["coverage"]["models_active"] == 2
    assert [(m["name"], m["rating"]) for m in s["models"]] == [("Tổ tự quản", None), ("Camera thôn", "kha")]
    targets = {t["key"]: t for t in s["targets"]}
    assert targets["institutions_safe"]["value"] == 2 / 3 and targets["institutions_safe"]["met"] is False
    # Villages and institutions are the movement's units (seed 001, geo.kpi): the village
    # launched and is classified khá; the three institutions have no such record for 2025.
    assert targets["launched"]["value"] == 1 / 4 and targets["launched"]["met"] is False
    assert targets["class_kha_or_better"]["value"] == 1 / 4
    assert targets["class_kha_or_better"]["basis"] == {"count": 1, "recorded": 4, "year": 2025}
    assert targets["new_models"]["value"] == 1 and targets["new_models"]["met"] is True
    assert targets["festival"]["value"] == 1.0 and targets["festival"]["basis"]["recorded"] == 4
    trend = s["trend"]
    assert trend["months"][0] == "2025-01" and trend["months"][-1] == "2025-09"
    assert trend["this_year"][0] == 4 and trend["this_year"][8] == 1
    # September last year: the 20th is after the 15th, so it is not in the same period.
    assert trend["last_year"][0] == 5 and trend["last_year"][8] == 0
    assert trend["total_this_year"] == 5


def test_committee_sees_suppressed_trend_and_scope(haiphong_client, make_user):
    commune, village = seed()
    r = haiphong_client.get(f"/units/village/{village}/summary", params={"date": ON},
                            headers=make_user("committee", "commune", commune))
    assert r.status_code == 200, r.text
    trend = r.json()["trend"]
    assert trend["this_year"][8] is None and trend["this_year"][0] == 4 and trend["suppressed"] is True
    assert trend["total_this_year"] is None
    assert r.json()["coverage"]["covered"] is True
    with get_engine().connect() as conn:
        other = conn.execute(text("SELECT code FROM admin_unit WHERE level = 'commune' "
                                  "ORDER BY code OFFSET 1 LIMIT 1")).scalar()
    r = haiphong_client.get(f"/units/commune/{other}/summary",
                            headers=make_user("committee", "commune", commune))
    assert r.status_code == 403 and r.json()["errors"][0]["field"] == "code"
    assert haiphong_client.get("/units/commune/99999/summary", headers=make_user("viewer")).status_code == 404
    assert haiphong_client.get("/units/province/31/summary", headers=make_user("viewer")).status_code == 422
