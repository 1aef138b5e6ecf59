"""Database errors reach the client as clear problem+json, never a bare 500 (api/problems.py).

Real PostgreSQL raises each error: a statement past the pool's statement_timeout, and
SQLSTATEs raised by a trigger (disk full 53100 cannot be caused safely on a shared machine;
PostgreSQL raises it the same way, by SQLSTATE).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from antt.db import get_engine
from antt.settings import get_settings

POINT = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [106.68, 20.86]},
         "properties": {"category_code": "crime/theft", "occurred_at": "2025-08-20T10:00:00"}}


def _problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["detail_vi"] and body["detail_en"]
    return body


def test_statement_timeout_is_a_503_problem(client_for, layer_data_template, clone_db, make_user,
                                            monkeypatch):
    monkeypatch.setenv("ANTT_STATEMENT_TIMEOUT_S", "0.3")
    client = client_for(clone_db(layer_data_template))
    headers = make_user("viewer")
    with get_engine().begin() as conn:  # make the data version lookup slow for this test
        conn.execute(text("ALTER FUNCTION antt_data_version(text[]) RENAME TO antt_data_version_real"))
        conn.execute(text("""CREATE FUNCTION antt_data_version(t text[]) RETURNS bigint LANGUAGE sql AS
                             $$ SELECT antt_data_version_real(t) + 0 * length(pg_sleep(2)::text) $$"""))
    body = _problem(client.get("/collections/communes/items?limit=1", headers=headers), 503)
    assert body["sqlstate"] == "57014" and "statement_timeout" in body["detail_en"]
    assert "Retry-After" in client.get("/collections/communes/items?limit=1", headers=headers).headers
    # the pool recovers by itself: with the lookup fast again the same client gets its page
    with get_engine().begin() as conn:
        conn.execute(text("DROP FUNCTION antt_data_version(text[])"))
        conn.execute(text("ALTER FUNCTION antt_data_version_real(text[]) RENAME TO antt_data_version"))
    assert client.get("/collections/communes/items?limit=1", headers=headers).status_code == 200


@pytest.mark.parametrize(("sqlstate", "status"), [
    ("53100", 507),  # disk_full
    ("53200", 503),  # out_of_memory
    ("53300", 503),  # too_many_connections
    ("40001", 503),  # serialization_failure: retry
    ("57P01", 503),  # admin_shutdown
    ("23514", 422),  # check_violation
    ("XX000", 500),  # internal_error: still problem+json
])
def test_sqlstates_raised_by_the_database(haiphong_client, make_user, sqlstate, status):
    headers = make_user("police")
    with get_engine().begin() as conn:
        conn.execute(text(f"""
            CREATE FUNCTION fail_write() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'simulated' USING ERRCODE = '{sqlstate}'; END $$;
            CREATE TRIGGER fail_write BEFORE INSERT ON incident FOR EACH ROW EXECUTE FUNCTION fail_write();
        """))
        before = conn.execute(text("SELECT count(*) FROM incident")).scalar()
    r = haiphong_client.post("/collections/incidents/items", json=POINT, headers=headers)
    body = _problem(r, status)
    assert body["sqlstate"] == sqlstate
    assert "simulated" not in r.text  # the server's message stays in the log
    if status == 503:
        assert r.headers["retry-after"]
    with get_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incident")).scalar() == before
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'create'")).scalar() == 0


def test_database_down_is_a_503_problem_and_the_pool_recovers(haiphong_url, client_for, make_user,
                                                               monkeypatch):
    client = client_for(haiphong_url)
    headers = make_user("viewer")
    assert client.get("/collections/communes/items?limit=1", headers=headers).status_code == 200
    with get_engine().connect() as conn:  # every pooled connection of the app is cut
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    # pre-ping replaces the dead connections: the next request is answered normally
    assert client.get("/collections/communes/items?limit=1", headers=headers).status_code == 200
    # now point the app at a port where nothing listens: 503 + Retry-After, not 500
    get_engine().dispose()
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:9/nothing")
    get_settings.cache_clear()
    get_engine.cache_clear()
    r = client.get("/collections/communes/items?limit=1", headers=headers)
    assert _problem(r, 503)["detail_en"].startswith("The database cannot be reached")
    assert r.headers["retry-after"]
    assert _problem(client.get("/readyz"), 503)["primary"]["reachable"] is False
    assert client.get("/healthz").status_code == 200  # liveness does not depend on it


def test_an_unexpected_error_is_a_500_problem(haiphong_client, make_user, monkeypatch):
    import api.features

    def boom(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(api.features, "build_query", boom)
    client = TestClient(haiphong_client.app, raise_server_exceptions=False)
    r = client.get("/collections/communes/items", headers=make_user("viewer"))
    assert _problem(r, 500)["title"].endswith("Internal server error")
    assert "a bug" not in r.text
