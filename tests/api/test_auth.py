"""Login (JWT + HttpOnly cookie), logout, /auth/me, API keys and the failed-login rate limit."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from antt.accounts import create_api_key, create_user
from antt.db import get_engine
from api.auth import login_limiter
from api.ratelimit import FailureWindow

PASSWORD = "mat-khau-dung-1"


@pytest.fixture
def alice(haiphong_client):
    with get_engine().begin() as conn:
        create_user(conn, "alice", PASSWORD, "committee", "province", "31")
    yield "alice"


def test_login_sets_http_only_strict_cookie_and_me_works_with_it(haiphong_client, alice):
    r = haiphong_client.post("/auth/token", data={"username": alice, "password": PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["role"] == "committee"
    assert (body["scope_level"], body["scope_code"]) == ("province", "31")
    cookie = r.headers["set-cookie"].lower()
    assert "antt_token=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    me = haiphong_client.get("/auth/me")  # the cookie jar now carries antt_token
    assert me.status_code == 200 and me.json()["sees_points"] is False and me.json()["can_edit"] == []
    bearer = haiphong_client.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"},
                                 cookies={})
    assert bearer.json()["username"] == alice
    out = haiphong_client.post("/auth/logout")
    assert out.status_code == 204 and 'antt_token=""' in out.headers["set-cookie"]
    haiphong_client.cookies.clear()
    r = haiphong_client.get("/auth/me")
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")


def test_api_key_header(haiphong_client, alice):
    with get_engine().begin() as conn:
        key = create_api_key(conn, alice)
    assert haiphong_client.get("/auth/me", headers={"X-API-Key": key}).json()["username"] == alice
    assert haiphong_client.get("/auth/me", headers={"X-API-Key": key + "x"}).status_code == 401


def test_wrong_password_401_then_429_with_retry_after(haiphong_client, alice, monkeypatch):
    limiter = login_limiter()
    limit = limiter.limit
    now = [1000.0]  # the limiter's clock, held still so Retry-After is exact
    monkeypatch.setattr(limiter, "_clock", lambda: now[0])
    for _ in range(limit):
        r = haiphong_client.post("/auth/token", data={"username": alice, "password": "sai-mat-khau"})
        assert r.status_code == 401
        assert r.json()["detail_vi"] and r.json()["detail_en"]
    # Even the right password is refused now: the window is per username and per IP.
    now[0] = 1015.0  # 15 s later: the 60 s window of the failures at t=1000 has 45 s left
    r = haiphong_client.post("/auth/token", data={"username": alice, "password": PASSWORD})
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "45"
    assert r.headers["content-type"].startswith("application/problem+json")
    with get_engine().connect() as conn:
        actions = conn.execute(text("SELECT action FROM audit_log WHERE entity = 'app_user'")).scalars().all()
    assert actions == ["login_failed"] * limit
    now[0] = 1060.5  # the window has passed: the right password works again
    r = haiphong_client.post("/auth/token", data={"username": alice, "password": PASSWORD})
    assert r.status_code == 200


def test_failure_window_by_hand(engine):
    now = [100.0]
    window = FailureWindow(limit=2, window_s=60, clock=lambda: now[0])
    with engine.connect() as conn:
        window.fail(conn, "user:a", "ip:x")
        assert window.retry_after(conn, "user:a") is None
        now[0] = 110.0
        window.fail(conn, "user:a", "ip:x")
        assert window.retry_after(conn, "user:a") == 50  # the first failure leaves the window at t=160
        assert window.retry_after(conn, "user:b", "ip:x") == 50  # same IP, other user: blocked too
        assert window.retry_after(conn, "user:b", "ip:y") is None
        assert window.reserve(conn, "user:b", "ip:x") == (50, [])  # blocked: nothing reserved
        now[0] = 160.0
        assert window.retry_after(conn, "user:a") is None
        window.fail(conn, "user:c")
        window.fail(conn, "user:c")
        window.clear(conn, "user:c")
        assert window.retry_after(conn, "user:c") is None
        # three failures of one key inside the window (two workers racing past a plain check):
        # blocked until the second oldest leaves, not the oldest
        for t in (200.0, 201.0, 202.0):
            now[0] = t
            window.fail(conn, "user:d")
        now[0] = 230.0
        assert window.retry_after(conn, "user:d") == 31  # 201 + 60 - 230
        # a reservation is a failure until forgiven
        now[0] = 300.0
        wait, ids = window.reserve(conn, "user:e", "ip:z")
        assert wait is None and len(ids) == 2
        wait, ids2 = window.reserve(conn, "user:e", "ip:z")
        assert wait is None
        assert window.reserve(conn, "user:e") == (60, [])
        window.forgive(conn, ids2)
        conn.commit()
        assert window.retry_after(conn, "user:e") is None
        with engine.connect() as other:  # the rows are in the database, seen by any connection
            n = other.execute(text("SELECT count(*) FROM login_failure WHERE key = 'user:e'")).scalar()
        assert n == 1


def test_missing_form_fields_are_422_problem(haiphong_client):
    r = haiphong_client.post("/auth/token", data={"username": "x"})
    assert r.status_code == 422 and "password" in r.json()["detail_en"]
