"""The demo on the real Hải Phòng 2025 communes: structure the analyses must be able to find."""

from __future__ import annotations

import statistics

from sqlalchemy import text

from antt.accounts import authenticate

from .conftest import UNTIL

LAST_YEAR_START = "2025-11-01"  # the last 12 months of a window ending 2026-10-31


def _manifest(conn) -> dict:
    return conn.execute(text("SELECT value FROM demo_manifest WHERE key = 'demo'")).scalar_one()


def test_manifest_matches_the_database(demo_engine):
    with demo_engine.connect() as conn:
        m = _manifest(conn)
        villages = conn.execute(text("SELECT count(*) FROM admin_unit WHERE level = 'village'")).scalar_one()
        incidents = conn.execute(text("SELECT count(*) FROM incident")).scalar_one()
    assert m["synthetic"] is False and m["province_codes"] == ["31"] and m["until"] == UNTIL.isoformat()
    assert m["counts"]["communes"] == 114
    assert m["counts"]["villages"] == villages and 900 <= villages <= 1200
    assert m["counts"]["incidents"] == incidents == 10_000
    assert len(m["hotspots"]) == 3 and len({h["commune_code"] for h in m["hotspots"]}) == 3
    assert len(m["uncovered"]) >= 3
    assert {u["reason"] for u in m["uncovered"]} == {"no_model", "poor_rating", "inactive"}


def test_every_generated_row_is_marked_demo(demo_engine):
    with demo_engine.connect() as conn:
        for table in ("incident", "security_model", "fire_group", "institution", "launch_point",
                      "unit_year"):
            total, demo = conn.execute(text(
                f"SELECT count(*), count(*) FILTER (WHERE is_demo) FROM {table}")).one()
            assert total > 0 and total == demo, table
        village_rows = conn.execute(text(
            "SELECT count(*) FILTER (WHERE NOT is_demo) FROM admin_unit WHERE level = 'village'")
        ).scalar_one()
        real_communes_marked = conn.execute(text(
            "SELECT count(*) FILTER (WHERE is_demo OR is_synthetic) FROM admin_unit "
            "WHERE level = 'commune'")).scalar_one()
        users = conn.execute(text("SELECT count(*) FROM app_user WHERE is_demo")).scalar_one()
    assert village_rows == 0
    assert real_communes_marked == 0  # real boundaries are real data, not demo
    assert users == 5


def test_villages_tile_their_communes_and_have_people(demo_engine):
    with demo_engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT c.code, ST_Area(ST_Transform(c.geom, 3405)) AS commune_m2,
                   sum(ST_Area(ST_Transform(v.geom, 3405))) AS villages_m2, count(*) AS n,
                   min(v.population) AS min_pop, bool_and(v.households < v.population) AS hh_ok
            FROM admin_unit v JOIN admin_unit c ON c.id = v.parent_id
            WHERE v.level = 'village' GROUP BY c.code, c.geom""")).all()
        named = conn.execute(text(
            "SELECT count(*) FROM admin_unit WHERE level = 'village' AND kind IN "
            "('thôn', 'xóm', 'tổ dân phố', 'khu phố')")).scalar_one()
    assert len(rows) == 114
    for code, commune_m2, villages_m2, n, min_pop, hh_ok in rows:
        assert abs(villages_m2 - commune_m2) <= 0.001 * commune_m2, code
        assert 7 <= n <= 11 and min_pop > 0 and hh_ok, code
    assert named == sum(r.n for r in rows)


def test_uncovered_villages_have_no_qualifying_model_and_the_rest_do(demo_engine):
    qualifying = """
        SELECT DISTINCT m.village_id FROM security_model m
        JOIN LATERAL (SELECT rating FROM model_rating r WHERE r.model_id = m.id
                      ORDER BY rated_on DESC, id DESC LIMIT 1) last ON true
        WHERE m.status = 'active' AND last.rating IN ('tot', 'kha', 'trung_binh')"""
    with demo_engine.connect() as conn:
        m = _manifest(conn)
        covered = {r[0] for r in conn.execute(text(qualifying))}
        villages = {r[0] for r in conn.execute(text("SELECT id FROM admin_unit WHERE level = 'village'"))}
        by_code = dict(conn.execute(text("SELECT code, id FROM admin_unit WHERE level = 'village'")).all())
    uncovered = {by_code[u["village_code"]] for u in m["uncovered"]}
    assert uncovered and not (uncovered & covered)
    assert villages - uncovered == covered


def test_planted_hotspots_burn_hotter_in_the_last_year(demo_engine):
    with demo_engine.connect() as conn:
        m = _manifest(conn)
        counts = dict(conn.execute(text(
            "SELECT v.code, count(i.id) FILTER (WHERE i.occurred_at >= :d) FROM admin_unit v "
            "LEFT JOIN incident i ON i.village_id = v.id WHERE v.level = 'village' GROUP BY v.code"),
            {"d": LAST_YEAR_START}).all())
        before = dict(conn.execute(text(
            "SELECT v.code, count(*) FROM admin_unit v JOIN incident i ON i.village_id = v.id "
            "WHERE i.occurred_at >= CAST(:d AS date) - 365 AND i.occurred_at < :d GROUP BY v.code"),
            {"d": LAST_YEAR_START}).all())
        youth_all = conn.execute(text("SELECT avg(youth_involved::int) FROM incident")).scalar_one()
        for h in m["hotspots"]:
            youth = conn.execute(text(
                "SELECT avg(i.youth_involved::int) FROM incident i JOIN admin_unit v ON v.id = i.village_id "
                "WHERE v.code = :c AND i.occurred_at >= :d"), {"c": h["village_code"], "d": LAST_YEAR_START}
            ).scalar_one()
            if h["youth_heavy"]:
                assert youth > float(youth_all) + 0.3, h["village_name"]
    hot = {h["village_code"] for h in m["hotspots"]}
    median = statistics.median(v for k, v in counts.items() if k not in hot)
    for code in hot:
        assert counts[code] >= 10 * max(median, 1), code
        assert counts[code] >= 5 * (before.get(code, 0) + 1), code


def test_incidents_follow_the_calendar(demo_engine):
    with demo_engine.connect() as conn:
        tet, normal = conn.execute(text("""
            SELECT count(*) FILTER (WHERE d BETWEEN '2024-02-05' AND '2024-02-15'
                                       OR d BETWEEN '2025-01-24' AND '2025-02-03') / 22.0,
                   count(*) FILTER (WHERE d BETWEEN '2024-04-01' AND '2024-09-30') / 183.0
            FROM (SELECT (occurred_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS d FROM incident) t""")).one()
        weekend, weekday = conn.execute(text("""
            SELECT count(*) FILTER (WHERE dow >= 6) / 2.0, count(*) FILTER (WHERE dow <= 4) / 4.0
            FROM (SELECT extract(isodow FROM occurred_at AT TIME ZONE 'Asia/Ho_Chi_Minh') AS dow
                  FROM incident) t""")).one()
        first, last = conn.execute(text(
            "SELECT min(occurred_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, "
            "max(occurred_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date FROM incident")).one()
    # Before the last 12 months, so the planted hotspots do not count: Tết 2024 and 2025.
    assert float(tet) > 1.4 * float(normal)
    assert float(weekend) > 1.15 * float(weekday)
    assert str(first) >= "2023-11-01" and str(last) <= "2026-10-31"


def test_incident_units_agree_with_unit_at(demo_engine):
    with demo_engine.connect() as conn:
        wrong_village, wrong_commune, missing = conn.execute(text("""
            SELECT count(*) FILTER (WHERE village_id IS DISTINCT FROM unit_at(geom, 'village', :d)),
                   count(*) FILTER (WHERE commune_id IS DISTINCT FROM unit_at(geom, 'commune', :d)),
                   count(*) FILTER (WHERE village_id IS NULL OR commune_id IS NULL)
            FROM incident"""), {"d": UNTIL}).one()
    assert (wrong_village, wrong_commune, missing) == (0, 0, 0)


def test_demo_accounts_log_in_with_their_roles_and_scopes(demo_engine):
    with demo_engine.connect() as conn:
        for role in ("admin", "police", "planner", "committee", "viewer"):
            account = authenticate(conn, f"demo_{role}", f"demo-{role}-pass")
            assert account is not None and account.role == role
            scoped = role in ("planner", "committee")
            expected = ("province", "31") if scoped else ("all", None)
            assert (account.scope_level, account.scope_code) == expected


def test_village_people_come_from_the_2009_census(demo_engine):
    """Hải Phòng 2025 = Hải Phòng + Hải Dương of 2009: the villages carry that census total."""
    from data.boundaries import sources

    census = sources.read_vector(sources.path_of(sources.COMMUNES_2009), columns=["province", "population"])
    expected = census.loc[census["province"].isin(["Hai Phong", "Hai Duong"]), "population"].sum()
    with demo_engine.connect() as conn:
        total = conn.execute(text(
            "SELECT sum(population) FROM admin_unit WHERE level = 'village'")).scalar_one()
    assert expected > 3_000_000
    assert abs(total - expected) <= 0.03 * expected
