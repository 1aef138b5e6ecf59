"""Fixtures for the browser tests: a Hải Phòng demo database, a real uvicorn server, Chromium.

The demo data comes from Helper B's ``data.demo.build_haiphong_demo`` when it exists; until
then a small deterministic stand-in is built here in SQL (villages as Voronoi cells of seeded
random points inside each commune, models on villages, incidents as seeded random points), so
the page has real polygons and counts to draw.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from antt.db import make_engine
from antt.text import fold

CHROMIUM = "/usr/bin/chromium"
FALLBACK_VILLAGES_PER_COMMUNE = 6
FALLBACK_INCIDENTS = 3000

VILLAGES_SQL = """
SELECT c.id AS commune_id, c.code AS commune_code, c.province_code, d.path[1] AS n,
       ST_AsEWKB(ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_Intersection(c.geom, d.geom)), 3))) AS geom
FROM admin_unit c,
     LATERAL ST_Dump(ST_VoronoiPolygons(ST_GeneratePoints(c.geom, :per_commune, c.id), 0.0,
                                        c.geom)) d
WHERE c.level = 'commune'
ORDER BY c.code, n
"""
VILLAGE_NAMES = ["Đông", "Tây", "Nam", "Bắc", "Trung", "Thượng", "Hạ", "Tiền", "Hậu"]


def _fallback_demo(url: str) -> None:
    """A small deterministic Hải Phòng demo (villages, models, ratings, incidents, users)."""
    from antt.accounts import create_user

    eng = make_engine(url)
    with eng.begin() as conn:
        rows = conn.execute(text(VILLAGES_SQL), {"per_commune": FALLBACK_VILLAGES_PER_COMMUNE}).all()
        for r in rows:
            name = f"Thôn {VILLAGE_NAMES[(r.n - 1) % len(VILLAGE_NAMES)]} {r.n}"
            conn.execute(text(
                "INSERT INTO admin_unit (level, code, kind, name, full_name, name_search, parent_id, "
                "province_code, valid_from, is_demo, is_synthetic, geom) "
                "SELECT 'village', :code, 'thon', :name, :name, :search, :parent, :prov, "
                "'2025-07-01', true, true, ST_SetSRID(:geom ::geometry, 4326) "
                "WHERE NOT ST_IsEmpty(:geom ::geometry)"),
                {"code": f"{r.commune_code}{r.n:03d}", "name": name, "search": fold(name),
                 "parent": r.commune_id, "prov": r.province_code, "geom": r.geom})
        # Models in two of every three villages; ratings cycle through the four classes.
        conn.execute(text("""
            INSERT INTO security_model (type_code, name, host_kind, founded_on, is_demo, geom,
                                        commune_id, village_id)
            SELECT (ARRAY['to_tu_quan','dong_ho_tu_quan','camera_antt','an_toan_giao_thong'])[1 + v.id % 4],
                   'Mô hình ' || v.name, 'village', DATE '2024-01-01' + (v.id % 300), true,
                   ST_PointOnSurface(v.geom), v.parent_id, v.id
            FROM admin_unit v WHERE v.level = 'village' AND v.id % 3 <> 0"""))
        conn.execute(text("""
            INSERT INTO model_rating (model_id, rating, rated_on)
            SELECT id, (ARRAY['tot','kha','trung_binh','yeu'])[1 + id % 4], DATE '2026-01-15'
            FROM security_model"""))
        # Incidents: seeded random points over the province's communes, spread over two years.
        conn.execute(text("""
            INSERT INTO incident (category_code, occurred_at, youth_involved, is_demo, geom)
            SELECT (ARRAY['crime/theft','crime/disorder','crime/fraud/online','fire/fire','traffic'])
                       [1 + (d.n % 5)::int],
                   TIMESTAMPTZ '2025-01-01 08:00+07'
                       + make_interval(days => ((d.n * 7919 + c.id * 31) % 690)::int),
                   d.n % 4 = 0, true, d.geom
            FROM admin_unit c,
                 LATERAL ST_Dump(ST_GeneratePoints(c.geom, :per_commune, c.id + 7))
                     WITH ORDINALITY AS d(path, geom, n)
            WHERE c.level = 'commune'"""), {"per_commune": FALLBACK_INCIDENTS // 114})
        for username, role in (("admin", "admin"), ("police", "police"), ("planner", "planner"),
                               ("committee", "committee")):
            create_user(conn, username, f"{username}-pass", role, is_demo=True, replace=True)
    eng.dispose()


def _add_test_accounts(url: str) -> None:
    """Unscoped accounts with known passwords, one per role the tests act as."""
    from antt.accounts import create_user

    eng = make_engine(url)
    with eng.begin() as conn:
        for role in ("admin", "police", "planner", "committee"):
            create_user(conn, role, f"{role}-pass", role, is_demo=True, replace=True)
    eng.dispose()


def _demo_builder():
    # ANTT_WEB_TEST_DEMO=fallback uses the small stand-in even when the full demo exists.
    if os.environ.get("ANTT_WEB_TEST_DEMO") == "fallback":
        return _fallback_demo
    try:
        from data.demo import build_haiphong_demo  # Helper B's full demo
    except ImportError:
        return _fallback_demo

    def full_demo(url: str) -> None:
        build_haiphong_demo(url)
        _add_test_accounts(url)

    return full_demo


@pytest.fixture(scope="session")
def web_demo_template(pg_admin_url: str, haiphong_template: str) -> str:
    """Built once per session from the Hải Phòng template; tests clone it (~0.2 s each)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    name = "tmpl_web_demo"
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{haiphong_template}"'))
    admin.dispose()
    _demo_builder()(make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False))
    return name


@pytest.fixture
def demo_url(clone_db, web_demo_template: str) -> str:
    return clone_db(web_demo_template)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(demo_url: str, monkeypatch) -> Iterator[str]:
    """The real app under uvicorn on a free loopback port, bound to this test's database."""
    import uvicorn

    from antt import db, settings

    monkeypatch.setenv("DATABASE_URL", demo_url)
    monkeypatch.setenv("ANTT_SECRET_KEY", "web-test-secret-key-long-enough-for-hs256-0123456789")
    settings.get_settings.cache_clear()
    db.get_engine.cache_clear()
    from api.app import create_app

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        db.get_engine().dispose()
        db.get_engine.cache_clear()
        settings.get_settings.cache_clear()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is required for the browser tests ({CHROMIUM}); run `make setup`")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM,
                              args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        yield b
        b.close()


def today() -> dt.date:
    return dt.date.today()
