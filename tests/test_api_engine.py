"""The API's engines ping a pooled connection only after it sat idle (antt.db.api_engine): a
server restart is noticed at checkout, and busy traffic pays no ping round trip per request.
Real PostgreSQL; the backend is ended with pg_terminate_backend."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from antt import db
from antt.db import api_engine


@pytest.fixture
def counted(db_url, monkeypatch):
    """An API engine of one connection, with its pings counted."""
    engine = api_engine(db_url, pool_size=1, max_overflow=0)
    pings: list[float] = []
    real = engine.dialect.do_ping

    def counting(dbapi_connection):
        pings.append(time.monotonic())
        return real(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counting)
    yield engine, pings
    engine.dispose()


def _pid(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def test_busy_connection_is_not_pinged(counted) -> None:
    engine, pings = counted
    pids = {_pid(engine) for _ in range(20)}
    assert len(pids) == 1 and pings == []


def test_idle_connection_is_pinged_and_replaced_when_dead(counted, db_url, monkeypatch) -> None:
    engine, pings = counted
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.3)
    first = _pid(engine)
    with api_engine(db_url).connect() as other:
        assert other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first}).scalar_one()
    time.sleep(0.5)
    second = _pid(engine)  # no error: the ping found it dead and the pool reconnected
    assert second != first and len(pings) == 1
    time.sleep(0.5)
    assert _pid(engine) == second and len(pings) == 2  # alive: pinged, kept


def test_every_session_runs_without_jit_and_keeps_its_own_options(db_url) -> None:
    """antt.db.make_engine: JIT off in every session (SESSION_OPTIONS), merged with the options
    an engine asks for (the API's statement timeout)."""
    plain = db.make_engine(db_url)
    timed = db.make_engine(db_url, connect_args={"options": "-c statement_timeout=1234"})
    try:
        with plain.connect() as conn:
            assert conn.execute(text("SHOW jit")).scalar_one() == "off"
        with timed.connect() as conn:
            assert conn.execute(text("SHOW jit")).scalar_one() == "off"
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "1234ms"
    finally:
        plain.dispose()
        timed.dispose()
