"""Fixtures for the HTTP API tests (shared by the layer/feature/tile/search and the
auth/editing/analytics test files).

The app reads its engine and settings through cached factories (`antt.db.get_engine`,
`antt.settings.get_settings`), so a client is bound to a test database by setting
DATABASE_URL and clearing both caches; the engine is disposed when the test ends.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from pgtemplates import build_template

from antt.accounts import create_user
from antt.db import get_engine
from antt.settings import get_settings

TEST_SECRET = "antt-test-signing-key-not-for-production"
TEST_PASSWORD = "mat-khau-thu-nghiem"
_user_seq = itertools.count(1)


def _reset_caches() -> None:
    get_settings.cache_clear()
    try:
        get_engine().dispose()
    except Exception:  # noqa: BLE001 - nothing to dispose when no URL was ever set
        pass
    get_engine.cache_clear()


@pytest.fixture
def client_for(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], TestClient]]:
    """Factory: a TestClient on `api.app.create_app()` bound to the database URL given."""
    clients: list[TestClient] = []

    def make(url: str) -> TestClient:
        from api.app import create_app

        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("ANTT_SECRET_KEY", TEST_SECRET)
        # The in-process tile memo may serve the previous tile for the moments a notification
        # takes to arrive, and most tests write and read back at once: off unless a test (or a
        # real server, tests/scale) turns it on (tests/api/test_tile_memo.py).
        monkeypatch.setenv("ANTT_TILE_MEMO_MB", "0")
        _reset_caches()
        client = TestClient(create_app())
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
    _reset_caches()


@pytest.fixture
def api_client(client_for, db_url: str) -> TestClient:
    """A client on an empty migrated database of this test's own."""
    return client_for(db_url)


@pytest.fixture
def haiphong_client(client_for, haiphong_url: str) -> TestClient:
    """A client on a database with the real Hải Phòng 2025 province and its 114 communes."""
    return client_for(haiphong_url)


@pytest.fixture
def make_user() -> Callable[..., dict[str, str]]:
    """Factory: create an account in the app's current database; returns its auth headers.

    `make_user("police")`, `make_user("planner", "commune", "11311")`. The token is minted
    with `api.deps.issue_token`, the same code `/auth/token` uses, so the tests do not
    depend on the login endpoint (tested on its own).
    """
    from api.deps import issue_token

    def make(role: str, scope_level: str = "all", scope_code: str | None = None,
             username: str | None = None) -> dict[str, str]:
        name = username or f"{role}{next(_user_seq)}"
        with get_engine().begin() as conn:
            account = create_user(conn, name, TEST_PASSWORD, role, scope_level, scope_code,
                                  replace=True)
        return {"Authorization": f"Bearer {issue_token(account)}"}

    return make


# --- a small, known layer data set on the real Hải Phòng communes (layers/features/tiles) ---
# The first three communes by code get: a village each, 7 / 2 / 4 incidents, 3 / 2 / 0 models.
LAYER_DATA_SQL = """
CREATE TEMP TABLE pick AS
SELECT row_number() OVER (ORDER BY code) AS k, id, code, ST_PointOnSurface(geom) AS pt
FROM admin_unit WHERE level = 'commune' ORDER BY code LIMIT 3;

INSERT INTO admin_unit (level, code, kind, name, full_name, name_search, parent_id, province_code,
                        valid_from, is_synthetic, geom)
SELECT 'village', p.code || '-01', v.kind, v.name, v.full_name, v.search, p.id, '31', '2025-07-01', true,
       ST_Multi(ST_CollectionExtract(ST_Intersection(c.geom,
           ST_Buffer(p.pt::geography, 600)::geometry), 3))
FROM pick p JOIN admin_unit c ON c.id = p.id
JOIN (VALUES (1, 'thôn', 'Tân Kỳ', 'Thôn Tân Kỳ', 'tan ky'),
             (2, 'xóm', 'Đông Hải', 'Xóm Đông Hải', 'dong hai'),
             (3, 'tổ dân phố', 'Số 5', 'Tổ dân phố Số 5', 'so 5')) v(k, kind, name, full_name, search)
  ON v.k = p.k;

INSERT INTO incident (category_code, occurred_at, youth_involved, geom)
SELECT CASE WHEN n % 3 = 0 THEN 'traffic' WHEN n % 3 = 1 THEN 'crime/theft' ELSE 'crime/fraud/online' END,
       CASE WHEN p.k = 3 THEN timestamptz '2024-03-10 09:00+07' + n * interval '1 day'
            ELSE timestamptz '2025-08-01 09:00+07' + n * interval '1 day' END,
       n % 2 = 0,
       ST_SetSRID(ST_MakePoint(ST_X(p.pt) + n * 0.00004, ST_Y(p.pt) + n * 0.00003), 4326)
FROM pick p CROSS JOIN LATERAL generate_series(1, CASE p.k WHEN 1 THEN 7 WHEN 2 THEN 2 ELSE 4 END) n;

INSERT INTO security_model (type_code, name, founded_on, status, geom)
SELECT (ARRAY['to_tu_quan', 'camera_antt', 'dong_ho_tu_quan'])[n], 'Mô hình ' || p.code || '-' || n,
       date '2020-01-01' + n * 100, CASE WHEN n = 3 THEN 'suspended' ELSE 'active' END,
       ST_SetSRID(ST_MakePoint(ST_X(p.pt) - n * 0.0001, ST_Y(p.pt)), 4326)
FROM pick p CROSS JOIN LATERAL generate_series(1, CASE p.k WHEN 1 THEN 3 WHEN 2 THEN 2 ELSE 0 END) n;
INSERT INTO model_rating (model_id, rating, rated_on)
SELECT id, 'kha', date '2024-12-01' FROM security_model UNION ALL
SELECT id, 'tot', date '2025-12-01' FROM security_model WHERE status = 'active' AND name LIKE '%-1';

INSERT INTO fire_group (name, households, founded_on, geom)
SELECT 'Tổ liên gia ' || code, 12, '2023-05-01', pt FROM pick WHERE k = 1;
INSERT INTO institution (kind, name, geom) SELECT 'school', 'Trường THCS ' || code, pt FROM pick WHERE k = 2;
INSERT INTO institution_year (institution_id, year, antt_safe) SELECT id, 2025, true FROM institution;
INSERT INTO launch_point (name, theme, launch_date, village_id)
SELECT 'Phát động ' || v.name, 'ANTQ', '2025-08-19', v.id FROM admin_unit v WHERE v.level = 'village';
"""


def _load_layer_data(url: str) -> None:
    from sqlalchemy import text

    from antt.db import make_engine

    eng = make_engine(url)
    with eng.begin() as conn:
        for statement in LAYER_DATA_SQL.split(";\n"):
            if statement.strip():
                conn.execute(text(statement))
    eng.dispose()


@pytest.fixture(scope="session")
def layer_data_template(request: pytest.FixtureRequest, pg_admin_url: str,
                        haiphong_template: str) -> str:
    # tests/conftest.py, as pytest registered it (the name 'conftest' is this file here).
    return build_template(pg_admin_url, "tmpl_api_layer_data", _load_layer_data, base=haiphong_template)


@pytest.fixture
def layer_client(client_for, clone_db, layer_data_template: str) -> TestClient:
    """A client on Hải Phòng plus LAYER_DATA_SQL (villages, incidents, models, ...)."""
    return client_for(clone_db(layer_data_template))
