"""`antt db url --libpq` and `antt db psql`: the project database from psql, as a newcomer
reaches for it (the SQLAlchemy URL of `antt db url` is refused by psql)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

ANTT = [sys.executable, "-m", "antt.cli"]
PSQL = shutil.which("psql")
pytestmark = pytest.mark.skipif(PSQL is None, reason="psql is not installed")


def _antt(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | env
    return subprocess.run([*ANTT, *args], capture_output=True, text=True, env=full, timeout=120)


def _psql(url: str, sql: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return subprocess.run([PSQL, url, "-Atc", sql], capture_output=True, text=True, env=env,
                          timeout=60)


def test_libpq_url_of_database_url_is_accepted_by_psql(db_url: str, tmp_path: Path):
    env = {"ANTT_HOME": str(tmp_path / "unused"), "DATABASE_URL": db_url}
    plain = _antt("db", "url", env=env).stdout.strip()
    assert plain == db_url and plain.startswith("postgresql+psycopg2://")
    assert _psql(plain, "select 1").returncode != 0  # what the issue reports
    libpq = _antt("db", "url", "--libpq", env=env)
    assert libpq.returncode == 0, libpq.stderr
    url = libpq.stdout.strip()
    assert url.startswith("postgresql://") and "+psycopg2" not in url
    done = _psql(url, "select 1")
    assert (done.returncode, done.stdout.strip()) == (0, "1"), done.stderr
    assert _psql(url, "select current_database()").stdout.strip() == make_url(db_url).database


def test_libpq_url_keeps_a_password_with_special_characters(db_url: str, tmp_path: Path):
    """Percent-encoded as libpq expects; the test server trusts local users, so the password is
    not checked, but psql must parse the URL to connect at all."""
    with_pw = make_url(db_url).set(password="p@ss:w/rd %?").render_as_string(hide_password=False)
    env = {"ANTT_HOME": str(tmp_path / "unused"), "DATABASE_URL": with_pw}
    url = _antt("db", "url", "--libpq", env=env).stdout.strip()
    assert "p%40ss%3Aw%2Frd" in url
    assert make_url(url).password == "p@ss:w/rd %?"
    assert _psql(url, "select 1").stdout.strip() == "1"


def test_db_psql_runs_psql_on_database_url(db_url: str, tmp_path: Path):
    env = {"ANTT_HOME": str(tmp_path / "unused"), "DATABASE_URL": db_url}
    ok = _antt("db", "psql", "-Atc", "select 40 + 2", env=env)
    assert (ok.returncode, ok.stdout.strip()) == (0, "42"), ok.stderr
    bad = _antt("db", "psql", "-Atc", "select no_such_column", env=env)
    assert bad.returncode != 0 and "no_such_column" in bad.stderr
    assert not (tmp_path / "unused" / "pgdata").exists()  # no embedded cluster was made


def test_db_psql_and_libpq_url_on_the_embedded_cluster(tmp_path: Path):
    env = {"ANTT_HOME": str(tmp_path / ".antt")}
    try:
        up = _antt("db", "up", env=env)  # `antt db psql` would start it too; up shows the URL
        assert up.returncode == 0, up.stderr
        url = _antt("db", "url", "--libpq", env=env).stdout.strip()
        port = make_url(up.stdout.strip().splitlines()[-1]).port
        assert url == f"postgresql://postgres@127.0.0.1:{port}/antt"
        assert _psql(url, "select postgis_lib_version() is not null").stdout.strip() == "t"
        via = _antt("db", "psql", "-Atc", "select current_database()", env=env)
        assert (via.returncode, via.stdout.strip()) == (0, "antt"), via.stderr
    finally:
        _antt("db", "down", env=env)
