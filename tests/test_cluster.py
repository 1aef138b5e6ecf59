"""The embedded cluster (`antt db ...`) and the DATABASE_URL switch, driven as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from antt.cluster import PORT_RANGE, EmbeddedCluster
from antt.db import DatabaseError, check_postgis, make_engine

ANTT = [sys.executable, "-m", "antt.cli"]


def _antt(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | env
    return subprocess.run([*ANTT, *args], capture_output=True, text=True, env=full, timeout=120)


def test_db_up_status_url_down_as_a_user(tmp_path: Path):
    env = {"ANTT_HOME": str(tmp_path / ".antt")}
    up = _antt("db", "up", env=env)
    assert up.returncode == 0, up.stderr
    url = up.stdout.strip().splitlines()[-1]
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    assert url.startswith("postgresql+psycopg2://postgres@127.0.0.1:")
    assert port != 5432 and PORT_RANGE[0] <= port <= PORT_RANGE[1]
    try:
        again = _antt("db", "up", env=env)  # reuses the running cluster, same port
        assert again.returncode == 0 and again.stdout.strip().splitlines()[-1] == url
        status = _antt("db", "status", env=env)
        assert '"running": true' in status.stdout and '"postgis": "3.' in status.stdout
        assert _antt("db", "url", env=env).stdout.strip() == url
        pid = int((tmp_path / ".antt/pgdata/postmaster.pid").read_text().split()[0])
        owner = subprocess.run(["ps", "-o", "user=", "-p", str(pid)], capture_output=True,
                               text=True).stdout.strip()
        if os.geteuid() == 0:
            assert owner == "postgres"  # postgres refuses root: the server runs unprivileged
        listen = (tmp_path / ".antt/pgdata/postmaster.pid").read_text().splitlines()
        assert "127.0.0.1" in listen  # bound to loopback only
    finally:
        down = _antt("db", "down", env=env)
    assert down.returncode == 0
    assert '"running": false' in _antt("db", "status", env=env).stdout


def test_database_url_overrides_the_embedded_cluster(db_url: str, tmp_path: Path):
    env = {"ANTT_HOME": str(tmp_path / "unused"), "DATABASE_URL": db_url}
    out = _antt("db", "url", env=env)
    assert out.stdout.strip() == db_url
    migrated = _antt("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert not (tmp_path / "unused" / "pgdata").exists()  # no embedded cluster was made


def test_missing_postgis_is_a_clear_error(pg_admin_url: str, clone_db):
    url = clone_db("template0")
    eng = make_engine(url)
    with pytest.raises(DatabaseError, match="PostGIS"):
        check_postgis(eng)
    eng.dispose()


def test_cluster_port_is_kept_between_runs(tmp_path: Path):
    first = EmbeddedCluster(home=tmp_path / "c").choose_port()
    assert EmbeddedCluster(home=tmp_path / "c").choose_port() == first


def test_a_fresh_port_taken_before_start_is_replaced(tmp_path: Path, monkeypatch):
    """Two clusters starting at once: the port chosen looked free, then another process bound it."""
    import socket

    import antt.cluster

    home = tmp_path / "race"
    wanted = EmbeddedCluster(home=home).choose_port()
    (home / "port").unlink()  # as if never chosen: the next choice picks `wanted` again
    real = antt.cluster._port_free
    calls = []

    def looks_free_once(port: int) -> bool:  # the check in choose_port, just before the race
        calls.append(port)
        return True if len(calls) == 1 else real(port)

    monkeypatch.setattr(antt.cluster, "_port_free", looks_free_once)
    cluster = EmbeddedCluster(home=home, fast=True)
    with socket.socket() as other:
        other.bind(("127.0.0.1", wanted))
        other.listen()
        try:
            url = cluster.up()
            assert cluster.port != wanted and f":{cluster.port}/" in url
            assert int((home / "port").read_text()) == cluster.port
        finally:
            cluster.destroy()
    # a kept port is never changed silently
    kept = EmbeddedCluster(home=tmp_path / "kept")
    kept.home.mkdir()
    kept.portfile.write_text(str(wanted))
    with socket.socket() as other:
        other.bind(("127.0.0.1", wanted))
        other.listen()
        with pytest.raises(antt.cluster.ClusterError):
            kept.up()
    kept.destroy()


def test_healthz_reports_versions(db_url: str, monkeypatch):
    from fastapi.testclient import TestClient

    from antt.db import get_engine
    from antt.settings import get_settings
    from api.app import create_app

    monkeypatch.setenv("DATABASE_URL", db_url)
    get_settings.cache_clear()
    get_engine.cache_clear()
    try:
        body = TestClient(create_app()).get("/healthz").json()
    finally:
        get_engine().dispose()
        get_engine.cache_clear()
        get_settings.cache_clear()
    assert body["status"] == "ok"
    assert body["postgis"].startswith("3.")
    with make_engine(db_url).connect() as conn:
        assert conn.execute(text("select postgis_lib_version()")).scalar() == body["postgis"]
