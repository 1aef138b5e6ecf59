"""Test databases on a real PostGIS.

A throwaway cluster (the project's own EmbeddedCluster, fsync off) is started once per
session in a temp dir, unless ANTT_TEST_DATABASE_URL names a server where we may create
databases. Templates (migrated schema; + Hải Phòng 2025 boundaries) are built once; every test
gets its own clone in ~0.2 s, so tests never see each other's writes.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pgtemplates import build_template, create_database, drop_database  # noqa: F401 (re-export)
from sqlalchemy import Engine

from antt.cluster import EmbeddedCluster
from antt.db import make_engine

ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    external = os.environ.get("ANTT_TEST_DATABASE_URL")
    if external:
        yield external
        return
    home = Path(tempfile.mkdtemp(prefix="antt-test-"))
    cluster = EmbeddedCluster(home=home, fast=True, dbname="postgres")
    cluster.up()
    try:
        yield cluster.url("postgres")
    finally:
        cluster.destroy()


def _migrate(url: str) -> None:
    from antt.migrate import upgrade

    upgrade(url)


def _load_haiphong(url: str) -> None:
    from data.boundaries import sources
    from data.boundaries.load import load_2025

    eng = make_engine(url)
    load_2025(eng, sources.path_of(sources.COMMUNES_2025_HAIPHONG), province_code="31")
    eng.dispose()


@pytest.fixture(scope="session")
def schema_template(pg_admin_url: str) -> str:
    return build_template(pg_admin_url, "tmpl_schema", _migrate)


@pytest.fixture(scope="session")
def haiphong_template(pg_admin_url: str, schema_template: str) -> str:
    return build_template(pg_admin_url, "tmpl_haiphong", _load_haiphong, base=schema_template)


@pytest.fixture
def clone_db(pg_admin_url: str) -> Iterator[Callable[[str], str]]:
    """Factory: a fresh database cloned from a template, dropped after the test."""
    made: list[str] = []

    def clone(template: str) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        made.append(name)
        return create_database(pg_admin_url, name, template=template)

    yield clone
    for name in made:
        drop_database(pg_admin_url, name)


@pytest.fixture
def db_url(clone_db, schema_template: str) -> str:
    """An empty, migrated database of this test's own."""
    return clone_db(schema_template)


@pytest.fixture
def haiphong_url(clone_db, haiphong_template: str) -> str:
    """A migrated database with the real Hải Phòng 2025 province and its 114 communes."""
    return clone_db(haiphong_template)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def haiphong_engine(haiphong_url: str) -> Iterator[Engine]:
    eng = make_engine(haiphong_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
