"""Engine and connection helpers, and the PostGIS version check.

Every module that touches the database gets its engine here, so the choice between an external
``DATABASE_URL`` and the embedded cluster is made in one place. ``READ_DATABASE_URL`` names
read replicas (streaming standbys): `get_read_engines()` gives one engine per replica, and
`primary_of(engine)` the engine every write must use (a replica refuses writes).

Engines are per process (each uvicorn worker has its own pools); nothing else about the
database is kept in a process.
"""

from __future__ import annotations

import threading
import time
import weakref
from functools import lru_cache

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DisconnectionError

MIN_POSTGIS = (3, 1)


class DatabaseError(RuntimeError):
    """The database is missing, unreachable, or too old."""


def sqlalchemy_url(url: str) -> str:
    """A libpq-style URL (postgres://, postgresql://) with the psycopg2 driver named."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def database_url(start: bool = False) -> str:
    """The URL in force: DATABASE_URL if set, else the embedded cluster (started if asked)."""
    from antt.cluster import default_cluster
    from antt.settings import get_settings

    s = get_settings()
    if s.database_url:
        return sqlalchemy_url(s.database_url)
    cluster = default_cluster()
    return cluster.up() if start else cluster.url()


# Every session of the project runs with PostgreSQL's JIT off. JIT compiles a statement whose
# estimated cost passes jit_above_cost, and spatial joins and CTEs are estimated far above their
# real cost: JIT fired on statements that run in well under a second and spent up to 1.8 s
# compiling them (the national coverage statement: 2.3 s with JIT, 0.5 s without; a 1 ms
# ST_HexagonGrid tile query spent 0.4 s). No statement here is bound by expression evaluation
# enough to win it back.
SESSION_OPTIONS = "-c jit=off"


def make_engine(url: str, **kw) -> Engine:
    """An engine whose sessions run with SESSION_OPTIONS (plus any ``connect_args`` options)."""
    connect_args = dict(kw.pop("connect_args", {}))
    connect_args["options"] = " ".join(filter(None, (SESSION_OPTIONS, connect_args.get("options"))))
    return create_engine(url, **{"pool_pre_ping": True, "future": True, **kw,
                                 "connect_args": connect_args})


PING_AFTER_IDLE_S = 1.0


def api_engine(url: str, **kw) -> Engine:
    """An engine for request traffic. `pool_pre_ping` costs a round trip on every checkout,
    i.e. on every request (a cached tile is otherwise a single indexed read). Here a pooled
    connection is pinged only when it sat idle longer than PING_AFTER_IDLE_S: a server restart
    or failover is still noticed at checkout after a quiet second, and a connection that dies
    between two busy requests fails its statement, which invalidates the pool (SQLAlchemy) and
    is answered as a lost replica (retried on the primary) or a 503 problem+json."""
    engine = make_engine(url, pool_pre_ping=False, **kw)

    @event.listens_for(engine, "checkin")
    def _idle_from(dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, proxy) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:  # the pool reconnects and tries again
            raise DisconnectionError(str(exc).strip()) from exc

    return engine


def _api_connect_args() -> dict[str, object]:
    """The API's limits, set once per connection (no per-request SET): how long to wait for a
    connection, and how long a statement may run (then SQLSTATE 57014 -> 503 problem+json)."""
    from antt.settings import get_settings

    s = get_settings()
    args: dict[str, object] = {"connect_timeout": s.connect_timeout_s}
    if s.statement_timeout_s > 0:
        args["options"] = f"-c statement_timeout={int(s.statement_timeout_s * 1000)}"
    return args


_replicas: weakref.WeakSet[Engine] = weakref.WeakSet()
_timed: weakref.WeakSet[Engine] = weakref.WeakSet()  # engines with the API's statement timeout


@lru_cache
def get_engine() -> Engine:
    """The primary: every write, and every read that must see the latest writes."""
    engine = api_engine(database_url(start=False), pool_size=10, max_overflow=20,
                        connect_args=_api_connect_args())
    _timed.add(engine)
    return engine


@lru_cache
def _read_engines(urls: tuple[str, ...]) -> tuple[Engine, ...]:
    engines = tuple(api_engine(sqlalchemy_url(u), pool_size=10, max_overflow=20,
                               connect_args=_api_connect_args()) for u in urls)
    _replicas.update(engines)
    _timed.update(engines)
    return engines


def get_read_engines() -> tuple[Engine, ...]:
    """One engine per replica in READ_DATABASE_URL (none: reads use the primary)."""
    from antt.settings import get_settings

    return _read_engines(tuple(get_settings().read_database_urls()))


_job_engines: dict[int, Engine] = {}
_job_lock = threading.Lock()


def job_engine(engine: Engine) -> Engine:
    """The engine long work (antt.jobs) runs on: the API's primary without its statement
    timeout (ANTT_STATEMENT_TIMEOUT_S bounds requests, not jobs); any other engine as is.
    Disposed with `engine`."""
    if engine not in _timed:
        return engine
    from antt.settings import get_settings

    with _job_lock:
        found = _job_engines.get(id(engine))
        if found is None:
            found = make_engine(engine.url, pool_size=2, max_overflow=10,
                                connect_args={"connect_timeout": get_settings().connect_timeout_s,
                                              "options": "-c statement_timeout=0"})
            _job_engines[id(engine)] = found

            def drop(*_args, key=id(engine), job=found) -> None:
                job.dispose()
                _job_engines.pop(key, None)

            event.listen(engine, "engine_disposed", drop)
        return found


def is_replica(engine: Engine) -> bool:
    return engine in _replicas


def primary_of(engine: Engine) -> Engine:
    """The engine to write with when `engine` is the one a request reads with."""
    return get_engine() if is_replica(engine) else engine


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
