"""A server that goes away right after a request's statements ran: the answer stands, and the
connection is dropped from its pool instead of failing the request while it is put back
(the replica test once got a 503 this way: the tile was built, then resetting the connection
raised). Real PostgreSQL: the backend is ended with pg_terminate_backend."""

from __future__ import annotations

from sqlalchemy import text

from api.readroute import autocommit, release


def _end_backend(engine, pid: int) -> None:
    with engine.connect() as other:
        assert other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one()
        other.commit()


def test_server_gone_after_the_work_in_autocommit(engine) -> None:
    conn = engine.connect()
    with autocommit(conn):
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        answer = conn.execute(text("SELECT 41 + 1")).scalar_one()
        _end_backend(engine, pid)
    assert answer == 42
    release(conn)  # no exception, whether resetting autocommit noticed the loss or closing did
    assert conn.closed
    with engine.connect() as fresh:  # the pool goes on with a new connection, not the dead one
        assert fresh.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid


def test_server_gone_before_release(engine) -> None:
    """A transaction left open (reads): closing it rolls back, which fails on a dead server."""
    conn = engine.connect()
    pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    _end_backend(engine, pid)
    release(conn)  # no exception: the connection is dropped
    assert conn.closed
    with engine.connect() as fresh:
        assert fresh.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
