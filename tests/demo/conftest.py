"""Session templates: the Hải Phòng demo (real boundaries) and the synthetic-province demo."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from pgtemplates import build_template  # tests/pgtemplates.py (tests/ is on sys.path)
from sqlalchemy import Engine

from antt.db import make_engine

UNTIL = dt.date(2026, 10, 31)
SYNTHETIC_SEED = 7


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashes() -> Iterator[None]:
    """Demo runs hash five passwords; argon2's production cost (~0.5 s each on a busy machine)
    would dominate these tests. The cheap hashes still verify with the normal hasher."""
    from argon2 import PasswordHasher

    from antt import accounts

    saved = accounts._hasher
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    accounts._hasher = saved


def build_synthetic(url: str, seed: int = SYNTHETIC_SEED) -> None:
    from data.demo import generate

    eng = make_engine(url)
    generate(eng, None, seed=seed, incidents=3000, villages_per_commune=5, until=UNTIL,
             password_for=lambda role: f"demo-{role}-pass")
    eng.dispose()


def _build_haiphong(url: str) -> None:
    from data.demo import build_haiphong_demo

    build_haiphong_demo(url, until=UNTIL)


@pytest.fixture(scope="session")
def demo_haiphong_template(pg_admin_url: str, haiphong_template: str) -> str:
    return build_template(pg_admin_url, "tmpl_demo_hp_b", _build_haiphong, base=haiphong_template)


@pytest.fixture(scope="session")
def demo_synthetic_template(pg_admin_url: str, schema_template: str) -> str:
    return build_template(pg_admin_url, "tmpl_demo_syn_b", build_synthetic, base=schema_template)


@pytest.fixture
def demo_engine(clone_db, demo_haiphong_template: str) -> Iterator[Engine]:
    eng = make_engine(clone_db(demo_haiphong_template))
    yield eng
    eng.dispose()


@pytest.fixture
def synthetic_url(clone_db, demo_synthetic_template: str) -> str:
    return clone_db(demo_synthetic_template)


@pytest.fixture
def synthetic_engine(synthetic_url: str) -> Iterator[Engine]:
    eng = make_engine(synthetic_url)
    yield eng
    eng.dispose()
