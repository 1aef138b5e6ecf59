"""Engine and connection helpers, and the PostGIS version check.

Every module that touches the database gets its engine here, so the choice between an external
``DATABASE_URL`` and the embedded cluster is made in one place.
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Engine, create_engine, text

MIN_POSTGIS = (3, 1)


class DatabaseError(RuntimeError):
    """The database is missing, unreachable, or too old."""


def database_url(start: bool = False) -> str:
    """The URL in force: DATABASE_URL if set, else the embedded cluster (started if asked)."""
    from antt.cluster import default_cluster
    from antt.settings import get_settings

    s = get_settings()
    if s.database_url:
        url = s.database_url
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg2://" + url.split("://", 1)[1]
        return url
    cluster = default_cluster()
    return cluster.up() if start else cluster.url()


def make_engine(url: str, **kw) -> Engine:
    return create_engine(url, pool_pre_ping=True, future=True, **kw)


@lru_cache
def get_engine() -> Engine:
    return make_engine(database_url(start=False), pool_size=10, max_overflow=20)


def check_postgis(engine: Engine) -> dict[str, str]:
    """Return server versions; raise if PostGIS is missing or older than 3.1."""
    with engine.connect() as conn:
        pg = conn.execute(text("show server_version")).scalar_one()
        try:
            lib = conn.execute(text("select postgis_lib_version()")).scalar_one()
        except Exception as exc:  # noqa: BLE001 - reported to the user
            raise DatabaseError(
                "PostGIS chưa được cài trong cơ sở dữ liệu / PostGIS is not installed in this "
                "database: run `antt migrate`."
            ) from exc
    major, minor = (int(x) for x in lib.split(".")[:2])
    if (major, minor) < MIN_POSTGIS:
        raise DatabaseError(f"PostGIS {lib} is too old; 3.1 or newer is required.")
    return {"postgresql": pg, "postgis": lib}
