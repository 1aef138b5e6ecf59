"""The shared analysis result cache (api/resultcache.py, layers/resultcache.py, migration 0014):
byte-identical hits, invalidation by the data version of exactly the tables an analysis reads,
no sharing between role classes or scopes, the heatmap PNG stored by heatmap.json, and a cache
that is off or unreachable never changing an answer."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from antt.db import get_engine
from antt.settings import get_settings
from api import resultcache as rc
from layers import resultcache
from layers.resultcache import Entry
from layers.versions import tracked_tables

INSERT_INCIDENT = ("INSERT INTO incident (category_code, occurred_at, geom) SELECT 'crime/theft', "
                   "'2025-09-01T10:00+07', ST_PointOnSurface(geom) FROM admin_unit "
                   "WHERE level = 'commune' ORDER BY code LIMIT 1")
COVERAGE = "/analytics/coverage/communes"
COVERAGE_Q = {"date": "2025-12-31", "min_rating": "any"}


def _first_commune() -> str:
    with get_engine().connect() as conn:
        return conn.execute(text("SELECT code FROM admin_unit WHERE level = 'commune' "
                                 "ORDER BY code LIMIT 1")).scalar_one()


def _heat_q() -> dict[str, str]:
    return {"commune": _first_commune(), "cell": "250", "bandwidth": "600",
            "start": "2025-01-01", "end": "2025-12-31"}


def _entries(group_prefix: str = "") -> int:
    with get_engine().connect() as conn:
        return conn.execute(text("SELECT count(*) FROM result_cache WHERE grp LIKE :g"),
                            {"g": f"{group_prefix}%"}).scalar_one()


def _write(sql: str) -> None:
    with get_engine().begin() as conn:
        conn.execute(text(sql))


def _props(response) -> dict[str, dict]:
    return {f["id"]: f["properties"] for f in response.json()["features"]}


def test_every_analysis_reads_tracked_tables_only(engine):
    with engine.connect() as conn:
        tracked = tracked_tables(conn)
    for tables in (rc.INCIDENTS, rc.COVERAGE, rc.UNCOVERED):
        assert set(tables) <= tracked, set(tables) - tracked
        assert {"admin_unit", "unit_lineage"} <= set(tables)
    assert {"security_model", "model_rating", "model_type", "fire_group", "institution",
            "institution_year", "unit_year"} <= set(rc.COVERAGE)
    assert {"incident", "incident_category"} <= set(rc.UNCOVERED) & set(rc.INCIDENTS)


def test_hit_is_byte_identical_with_etag_and_304(layer_client, make_user):
    viewer = make_user("viewer")
    first = layer_client.get(COVERAGE, params=COVERAGE_Q, headers=viewer)
    assert first.status_code == 200, first.text
    assert first.headers["x-result-cache"] == "miss"
    assert first.headers["cache-control"] == "private, no-cache"
    assert "Authorization" in first.headers["vary"]
    again = layer_client.get(COVERAGE, params=COVERAGE_Q, headers=viewer)
    assert again.headers["x-result-cache"] == "hit"
    assert again.content == first.content and again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["etag"] == first.headers["etag"]
    # the same query in another order is the same entry
    reordered = layer_client.get(f"{COVERAGE}?min_rating=any&date=2025-12-31", headers=viewer)
    assert reordered.headers["x-result-cache"] == "hit" and reordered.content == first.content
    same = layer_client.get(COVERAGE, params=COVERAGE_Q,
                            headers=viewer | {"If-None-Match": first.headers["etag"]})
    assert same.status_code == 304 and same.content == b""
    assert _entries("coverage/communes:") == 1
    # another viewer with the same scope shares the entry
    assert layer_client.get(COVERAGE, params=COVERAGE_Q,
                            headers=make_user("viewer")).headers["x-result-cache"] == "hit"


def test_a_write_to_a_table_read_is_a_miss_with_the_new_answer(layer_client, make_user):
    viewer = make_user("viewer")
    code = _first_commune()
    before = layer_client.get(COVERAGE, params=COVERAGE_Q, headers=viewer)
    assert before.status_code == 200
    active = _props(before)[code]["models_active"]
    assert active == 2  # LAYER_DATA_SQL: 3 models, the third suspended
    _write("UPDATE security_model SET status = 'suspended', status_since = '2025-01-01' "
           f"WHERE name = 'Mô hình {code}-1'")
    after = layer_client.get(COVERAGE, params=COVERAGE_Q,
                             headers=viewer | {"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and after.headers["x-result-cache"] == "miss"
    assert after.headers["etag"] != before.headers["etag"]
    assert _props(after)[code]["models_active"] == active - 1
    assert layer_client.get(COVERAGE, params=COVERAGE_Q, headers=viewer).headers["x-result-cache"] == "hit"
    assert _entries("coverage/communes:") == 1  # the older version went when the new one was stored

    police = make_user("police")
    q = _heat_q()
    heat = layer_client.get("/analytics/heatmap", params=q, headers=police)
    assert heat.status_code == 200, heat.text
    assert heat.json()["n_points"] == 7
    _write(INSERT_INCIDENT)
    heat2 = layer_client.get("/analytics/heatmap", params=q, headers=police)
    assert heat2.headers["x-result-cache"] == "miss" and heat2.json()["n_points"] == 8


def test_a_write_to_an_unrelated_table_keeps_the_hit(layer_client, make_user):
    viewer, police = make_user("viewer"), make_user("police")

    def states() -> list[str]:
        cov = layer_client.get(COVERAGE, params=COVERAGE_Q, headers=viewer)
        heat = layer_client.get("/analytics/heatmap", params=_heat_q(), headers=police)
        assert cov.status_code == heat.status_code == 200
        return [cov.headers["x-result-cache"], heat.headers["x-result-cache"]]

    assert states() == ["miss", "miss"]
    _write("UPDATE launch_point SET notes = 'x'")  # read by neither
    assert states() == ["hit", "hit"]
    _write(INSERT_INCIDENT)  # coverage per commune reads no incidents; the heatmap does
    assert states() == ["hit", "miss"]
    _write("UPDATE security_model SET name = name || ' '")  # the heatmap reads no models
    assert states() == ["miss", "hit"]


def test_roles_and_scopes_never_share_an_entry(layer_client, make_user):
    police, viewer = make_user("police"), make_user("viewer")
    scoped = make_user("viewer", "province", "31")
    url = "/analytics/coverage/uncovered"
    # min_count 5: no unit is covered, so every commune is listed
    q = {"level": "commune", "date": "2025-12-31", "start": "2025-01-01", "end": "2025-12-31",
         "min_count": "5"}
    p = layer_client.get(url, params=q, headers=police)
    v = layer_client.get(url, params=q, headers=viewer)
    s = layer_client.get(url, params=q, headers=scoped)
    assert p.status_code == v.status_code == s.status_code == 200, (p.text, v.text, s.text)
    assert [r.headers["x-result-cache"] for r in (p, v, s)] == ["miss", "miss", "miss"]
    assert len({p.headers["etag"], v.headers["etag"], s.headers["etag"]}) == 3
    # the second commune has 2 incidents: the police see 2, the viewer a suppressed count
    second = sorted(_props(p))[1]
    assert _props(p)[second]["incidents"] == 2 and _props(v)[second]["incidents"] is None
    again = layer_client.get(url, params=q, headers=viewer)
    assert again.headers["x-result-cache"] == "hit" and again.content == v.content
    assert _entries("coverage/uncovered:") == 3
    # the heatmap too: the police's is drawn from the points, the viewer's from public squares
    hp = layer_client.get("/analytics/heatmap.json", params=_heat_q(), headers=police).json()
    hv = layer_client.get("/analytics/heatmap.json", params=_heat_q(), headers=viewer)
    assert hv.headers["x-result-cache"] == "miss"
    assert hp["n_points"] == 7 and hv.json()["n_points"] < 7
    assert hv.json()["notes"]["aggregated_to_m"] == 250


def test_heatmap_json_stores_the_png_its_url_asks_for(layer_client, make_user, monkeypatch):
    police = make_user("police")
    meta = layer_client.get("/analytics/heatmap.json", params=_heat_q(), headers=police)
    assert meta.status_code == 200 and meta.headers["x-result-cache"] == "miss"
    body = meta.json()
    png = layer_client.get(body["png_url"], headers=police)
    assert png.status_code == 200 and png.headers["x-result-cache"] == "hit"
    assert png.content[:4] == b"\x89PNG" and png.headers["content-type"] == "image/png"
    assert png.headers["cache-control"] == "no-store"  # as before: it may be drawn from the points
    bounds = [float(v) for v in png.headers["x-bounds"].split(",")]
    assert bounds == [round(v, 7) for v in body["bounds"]]
    # exactly the PNG the endpoint draws itself (computed again with the cache off)
    monkeypatch.setenv("ANTT_RESULT_CACHE_MB", "0")
    get_settings.cache_clear()
    fresh = layer_client.get(body["png_url"], headers=police)
    assert fresh.headers["x-result-cache"] == "miss"
    assert fresh.content == png.content and fresh.headers["x-bounds"] == png.headers["x-bounds"]
    assert fresh.headers["x-bandwidth-m"] == png.headers["x-bandwidth-m"]
    # the PNG request's key is its own query's: another viewer's png_url is not the police's
    monkeypatch.delenv("ANTT_RESULT_CACHE_MB")
    get_settings.cache_clear()
    viewer = make_user("viewer")
    vmeta = layer_client.get("/analytics/heatmap.json", params=_heat_q(), headers=viewer).json()
    def query(url: str) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(url).query))

    assert query(vmeta["png_url"]) == query(body["png_url"])
    vpng = layer_client.get(vmeta["png_url"], headers=viewer)
    assert vpng.headers["x-result-cache"] == "hit" and vpng.content != png.content


def test_the_day_is_in_the_key(layer_client, make_user, monkeypatch):
    import datetime as dt

    import api.analytics

    viewer = make_user("viewer")
    assert layer_client.get(COVERAGE, params=COVERAGE_Q, headers=viewer).headers["x-result-cache"] == "miss"
    assert layer_client.get(COVERAGE, params=COVERAGE_Q, headers=viewer).headers["x-result-cache"] == "hit"
    monkeypatch.setattr(api.analytics, "today_vn", lambda: dt.date(2031, 1, 2))
    assert layer_client.get(COVERAGE, params=COVERAGE_Q, headers=viewer).headers["x-result-cache"] == "miss"


def test_cache_off_still_answers(layer_client, make_user, monkeypatch):
    viewer = make_user("viewer")
    on = layer_client.get(COVERAGE, params=COVERAGE_Q, headers=viewer)
    _write("DELETE FROM result_cache")
    monkeypatch.setenv("ANTT_RESULT_CACHE_MB", "0")
    get_settings.cache_clear()
    off = [layer_client.get(COVERAGE, params=COVERAGE_Q, headers=viewer) for _ in range(2)]
    assert [r.headers["x-result-cache"] for r in off] == ["miss", "miss"]
    assert off[0].content == off[1].content == on.content
    assert off[0].headers["etag"] == on.headers["etag"]  # still versioned: 304 works without the cache
    revalidated = layer_client.get(COVERAGE, params=COVERAGE_Q,
                                   headers=viewer | {"If-None-Match": on.headers["etag"]})
    assert revalidated.status_code == 304
    meta = layer_client.get("/analytics/heatmap.json", params=_heat_q(), headers=viewer).json()
    assert layer_client.get(meta["png_url"], headers=viewer).headers["x-result-cache"] == "miss"
    assert _entries() == 0


def test_unreachable_cache_is_skipped(layer_client, make_user, monkeypatch):
    viewer = make_user("viewer")
    expected = layer_client.get(COVERAGE, params=COVERAGE_Q, headers=viewer).content
    # the table gone from the primary (as after a failed migration or a dropped cache)
    _write("ALTER TABLE result_cache RENAME TO result_cache_away")
    try:
        got = [layer_client.get(COVERAGE, params=COVERAGE_Q, headers=viewer) for _ in range(2)]
        assert [r.status_code for r in got] == [200, 200]
        assert [r.headers["x-result-cache"] for r in got] == ["miss", "miss"]
        assert got[0].content == got[1].content == expected
    finally:
        _write("ALTER TABLE result_cache_away RENAME TO result_cache")
    # read from a replica while the primary (which holds the cache) cannot be reached

    def down():
        raise OperationalError("connect", {}, Exception("primary down"))

    for module in ("api.resultcache", "api.readroute"):  # the lookup (readroute) and the store
        monkeypatch.setattr(f"{module}.is_replica", lambda engine: True)
        monkeypatch.setattr(f"{module}.autocommit_connection", down)
    got = [layer_client.get(COVERAGE, params=COVERAGE_Q, headers=viewer) for _ in range(2)]
    assert [r.status_code for r in got] == [200, 200]
    assert [r.headers["x-result-cache"] for r in got] == ["miss", "miss"]
    assert got[0].content == expected


def test_an_audited_answer_is_never_stored(layer_client, make_user):
    from sqlalchemy import Connection

    from api.audit import record
    from api.deps import Principal, get_conn, get_principal

    def audited(request: Request, principal: Principal = Depends(get_principal),
                conn: Connection = Depends(get_conn)):
        def build(_: rc.Context) -> Entry:
            record(conn, principal, "read_points", "incidents", detail={"count": 1})
            conn.commit()  # as an endpoint that audits a read does
            return rc.json_entry({"points": 1})

        return rc.cached(request, principal, conn, rc_today(), "test-audited", rc.INCIDENTS, build)

    layer_client.app.add_api_route("/test-audited", audited)
    police = make_user("police")
    got = [layer_client.get("/test-audited", headers=police) for _ in range(2)]
    assert [r.headers["x-result-cache"] for r in got] == ["miss", "miss"]
    assert _entries("test-audited:") == 0
    with get_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'read_points'")).scalar() == 2


def rc_today():
    from api.analytics import today_vn

    return today_vn()


def test_cache_is_bounded_and_groups_keep_their_newest_version(engine):
    blob = Entry(b"x" * 10_000, "application/json", {"X-Test": "1"})
    with engine.connect() as conn:
        for i in range(10):
            assert resultcache.put(conn, f"00000000-0000-0000-0000-{i:012d}", f"g{i}", 1, blob, 10**9)
            conn.commit()
        assert resultcache.get(conn, "00000000-0000-0000-0000-000000000003") == blob
        assert resultcache.evict(conn, 55_000) == 5
        conn.commit()
        assert conn.execute(text("SELECT sum(size_bytes), count(*) FROM result_cache")).one() == (50_000, 5)
        # a newer version of a group replaces its older entries
        assert resultcache.put(conn, "00000000-0000-0000-0000-000000000100", "g9", 2, blob, 10**9)
        conn.commit()
        assert resultcache.get(conn, "00000000-0000-0000-0000-000000000009") is None
        assert resultcache.get(conn, "00000000-0000-0000-0000-000000000100") == blob
        # over the bound on a store: the oldest go; an entry over the whole bound is not stored
        assert not resultcache.put(conn, "00000000-0000-0000-0000-000000000200", "big", 1,
                                   Entry(b"y" * 30_000, "image/png"), 20_000)
        assert resultcache.put(conn, "00000000-0000-0000-0000-000000000201", "h", 1, blob, 20_000)
        conn.commit()
        assert conn.execute(text("SELECT count(*) FROM result_cache")).scalar() == 2
