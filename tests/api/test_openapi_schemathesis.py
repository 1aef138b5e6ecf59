"""Property-based requests generated from the OpenAPI document (schemathesis 4, ASGI): no
operation answers 5xx, and every error is problem+json.

Bounded (a few examples per operation, no deadline) so the file runs in about a minute. The
app is built at import (building it touches no database) and bound to one clone of the small
layer data set (tests/api/conftest.py); every generated request is sent as an admin (the role
that reaches every code path) and as the committee (the role with the most privacy filters).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api.app import create_app

EXAMPLES = 12
APP = create_app()
# The coverage phase alone sends ~9,000 boundary-value requests (minutes on two shared cores);
# the fuzzing phase, bounded by EXAMPLES, keeps the file near a minute.
CONFIG = schemathesis.Config.from_dict({"phases": {"coverage": {"enabled": False}}})
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG)
UNGUARDED = ("/", "/conformance", "/healthz", "/readyz", "/auth/logout")


@pytest.fixture(scope="module")
def role_headers(request, pg_admin_url, layer_data_template) -> Iterator[dict[str, dict[str, str]]]:
    """One clone of the layer data set for the whole module (the app bound to it through
    DATABASE_URL and a cache reset, as tests/api/conftest.py does), and two accounts."""
    from antt.accounts import create_user
    from antt.db import get_engine
    from antt.settings import get_settings
    from api.deps import issue_token

    root = request.config.pluginmanager.get_plugin(str(Path(__file__).parent.parent / "conftest.py"))
    name = f"t_schemathesis_{uuid.uuid4().hex[:8]}"
    url = root.create_database(pg_admin_url, name, template=layer_data_template)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABASE_URL", url)
        mp.setenv("ANTT_SECRET_KEY", "antt-schemathesis-signing-key-at-least-32-bytes")
        get_settings.cache_clear()
        get_engine.cache_clear()
        headers = {}
        with get_engine().begin() as conn:
            for role in ("admin", "committee"):
                account = create_user(conn, f"st_{role}", "mat-khau-thu-nghiem", role, replace=True)
                headers[role] = {"Authorization": f"Bearer {issue_token(account)}"}
        yield headers
        get_engine().dispose()
        get_engine.cache_clear()
        get_settings.cache_clear()
    root.drop_database(pg_admin_url, name)


def test_every_guarded_operation_declares_its_problem_responses():
    missing = []
    for path, ops in APP.openapi()["paths"].items():
        for method, op in ops.items():
            codes = set(op.get("responses", {}))
            if path not in UNGUARDED and not any(c.startswith("4") for c in codes):
                missing.append(f"{method.upper()} {path}")
    assert missing == []


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, role_headers):
    for role, headers in role_headers.items():
        response = case.call(headers={**(case.headers or {}), **headers})
        where = (role, case.method, case.formatted_path, case.query, response.status_code)
        assert response.status_code < 500, (*where, response.text[:300])
        if response.status_code >= 400:
            content_type = (response.headers.get("content-type") or [""])[0]
            assert content_type.startswith("application/problem+json"), (*where, content_type)
