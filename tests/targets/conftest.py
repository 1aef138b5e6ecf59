"""Fixtures for the plan tests: Hải Phòng with the hand-made plan data set (tests/targets/handmade.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgtemplates import build_template
from sqlalchemy import Engine

from antt.db import make_engine

sys.path.insert(0, str(Path(__file__).parent))
from handmade import load_handmade  # noqa: E402

CODES: dict[str, str] = {}


def _build(url: str) -> None:
    eng = make_engine(url)
    CODES.update(load_handmade(eng))
    eng.dispose()


@pytest.fixture(scope="session")
def handmade_template(pg_admin_url: str, haiphong_template: str) -> str:
    return build_template(pg_admin_url, "tmpl_targets_handmade", _build, base=haiphong_template)


@pytest.fixture
def handmade_url(clone_db, handmade_template: str) -> str:
    return clone_db(handmade_template)


@pytest.fixture
def handmade(handmade_url: str) -> Iterator[tuple[Engine, dict[str, str]]]:
    eng = make_engine(handmade_url)
    with eng.connect() as conn:
        from sqlalchemy import text

        a, b = conn.execute(text(
            "SELECT code FROM admin_unit WHERE level = 'commune' ORDER BY code LIMIT 2")).scalars().all()
        prov = conn.execute(text("SELECT province_code FROM admin_unit WHERE code = :a"),
                            {"a": a}).scalar_one()
    codes = {"commune_a": a, "commune_b": b, "village_1": f"{a}-01", "village_2": f"{a}-02",
             "province": prov}
    yield eng, codes
    eng.dispose()


# The HTTP fixtures of tests/api/conftest.py (client_for, make_user), shared rather than copied.
def _load_api_fixtures():
    import importlib.util

    spec = importlib.util.spec_from_file_location("api_conftest_for_targets",
                                                  Path(__file__).parent.parent / "api" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_api = _load_api_fixtures()
client_for = _api.client_for
make_user = _api.make_user
TEST_PASSWORD = _api.TEST_PASSWORD


@pytest.fixture
def handmade_client(client_for, handmade_url: str):
    """A TestClient on the hand-made plan data (Hải Phòng + tests/targets/handmade.py)."""
    return client_for(handmade_url)


@pytest.fixture
def codes(handmade_url: str) -> dict[str, str]:
    eng = make_engine(handmade_url)
    with eng.connect() as conn:
        from sqlalchemy import text

        a, b = conn.execute(text(
            "SELECT code FROM admin_unit WHERE level = 'commune' ORDER BY code LIMIT 2")).scalars().all()
        prov = conn.execute(text("SELECT province_code FROM admin_unit WHERE code = :a"),
                            {"a": a}).scalar_one()
    eng.dispose()
    return {"commune_a": a, "commune_b": b, "village_1": f"{a}-01", "village_2": f"{a}-02",
            "province": prov}


# The Hải Phòng demo template of tests/demo/conftest.py (shared: same name, built once).
def _load_demo_fixtures():
    import importlib.util

    spec = importlib.util.spec_from_file_location("demo_conftest_for_targets",
                                                  Path(__file__).parent.parent / "demo" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_demo = _load_demo_fixtures()
demo_haiphong_template = _demo.demo_haiphong_template
cheap_password_hashes = _demo.cheap_password_hashes
DEMO_UNTIL = _demo.UNTIL


@pytest.fixture
def demo_url(clone_db, demo_haiphong_template: str) -> str:
    return clone_db(demo_haiphong_template)


@pytest.fixture
def demo_engine(demo_url: str) -> Iterator[Engine]:
    eng = make_engine(demo_url)
    yield eng
    eng.dispose()
