"""Run Alembic migrations from code (``antt migrate``), without an alembic.ini on disk."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def current(url: str) -> str | None:
    from sqlalchemy import text

    from antt.db import make_engine

    eng = make_engine(url)
    try:
        with eng.connect() as conn:
            exists = conn.execute(text("select to_regclass('alembic_version')")).scalar()
            if not exists:
                return None
            return conn.execute(text("select version_num from alembic_version")).scalar()
    finally:
        eng.dispose()
