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
