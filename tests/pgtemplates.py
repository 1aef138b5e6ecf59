"""Database helpers for tests: create, clone and drop databases; session-wide templates.

A plain module (not a conftest) so every conftest can import it by one name.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

_templates: dict[str, str] = {}


def _admin(url: str) -> Engine:
    return create_engine(url, isolation_level="AUTOCOMMIT", poolclass=None)


def _db_url(admin_url: str, name: str) -> str:
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def create_database(admin_url: str, name: str, template: str | None = None) -> str:
    eng = _admin(admin_url)
    with eng.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        tmpl = f' TEMPLATE "{template}"' if template else ""
        conn.execute(text(f'CREATE DATABASE "{name}"{tmpl}'))
    eng.dispose()
    return _db_url(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    eng = _admin(admin_url)
    with eng.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    eng.dispose()


def build_template(admin_url: str, name: str, builder: Callable[[str], None],
                   base: str | None = None) -> str:
    """Create template database NAME once per session (from BASE), filled by BUILDER(url)."""
    if name not in _templates:
        url = create_database(admin_url, name, template=base)
        builder(url)
        _templates[name] = url
    return name
