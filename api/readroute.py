"""Which database answers a request: the primary, or a streaming replica (READ_DATABASE_URL).

The rule (sound, and the same in every worker):

1. Writes, and every request that is not GET or HEAD, use the primary. So do the paths in
   `PRIMARY_PATHS` (login and accounts, the audit log, job progress, health).
2. A GET or HEAD reads from a replica when one is *fit*: it answered its last check, it is at
   most ANTT_REPLICA_MAX_LAG_S behind the primary, and it has replayed the caller's own last
   write. Otherwise it reads from the primary (logged when a replica goes unfit or fit again;
   never an error of its own).
3. Read-your-writes: after every non-GET request the response carries the primary's WAL
   insert position, taken after the request committed (`X-Antt-LSN`, and the `antt_lsn` cookie, which
   browsers and cookie-keeping clients send back on their own; other clients send it as
   `X-Antt-Min-LSN`). A read carrying a position goes to a replica only if that replica has
   replayed at least that far (checked on the replica itself), else to the primary. So a
   writer never reads older data than its own write; other clients read data at most
   ANTT_REPLICA_MAX_LAG_S old. The in-process tile memo (api/tiles.py) honours the same
   position, so the header and cookie are also sent when it is on, replicas or not.
4. A replica that fails (refuses connections, or dies mid-query) is left alone for
   ANTT_REPLICA_DOWN_S; a GET whose replica died under it is run once more on the primary
   (GET is safe to repeat), so the client sees a normal answer.

Per process, by design: each worker measures each replica itself (at most every
ANTT_REPLICA_CHECK_S), so nothing here needs sharing; the decision rests on the replica's own
replay position, the same for every worker.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool

from antt.db import get_engine, get_read_engines, is_replica
from antt.settings import get_settings
from layers.cachetable import CacheTable, reset
from layers.versions import data_version, versioned_key
from layers.versionwatch import HEAD_SQL

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD"})
PRIMARY_PATHS = ("/auth", "/audit", "/jobs", "/healthz", "/readyz")
LSN_COOKIE = "antt_lsn"
LSN_HEADER = "X-Antt-LSN"
MIN_LSN_HEADER = "X-Antt-Min-LSN"
SOURCE_HEADER = "X-Antt-Database"  # which database answered: 'primary' or 'replica'
LSN_COOKIE_MAX_AGE = 600
PRIMARY_ONLY = "antt_primary_only"  # scope["state"] flag: this request must not use a replica
READ_FROM = "antt_read_from"


class ReplicaLost(Exception):
    """A replica failed under a read; the read is run again on the primary (not a DB error
    class, so no exception handler turns it into a response before it can be retried)."""


def parse_lsn(value: str | None) -> int | None:
    """'16/B374D848' -> an integer; None for anything else (a bad cookie is ignored)."""
    if not value or "/" not in value or len(value) > 17:
        return None
    hi, _, lo = value.strip().partition("/")
    try:
        return (int(hi, 16) << 32) | int(lo, 16)
    except ValueError:
        return None


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


@dataclass
class ReplicaState:
    """What this worker last measured of one replica."""

    engine: Engine
    name: str
    checked_at: float = float("-inf")
    down_until: float = 0.0
    replay_lsn: int | None = None
    lag_s: float | None = None
    lag_bytes: int | None = None
    replay_age_s: float | None = None
    error: str | None = None
    fit: bool | None = None
    # (monotonic time, primary LSN) samples: the replica's lag in seconds is the age of the
    # newest primary position it has replayed (resolution: the check interval)
    samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=64))
    lock: threading.Lock = field(default_factory=threading.Lock)


def _name(engine: Engine) -> str:
    u = engine.url
    return f"{u.host}:{u.port}/{u.database}"


class Router:
    """The replicas of one set of engines, as this worker sees them."""

    def __init__(self, primary: Engine, replicas: tuple[Engine, ...]) -> None:
        self.primary = primary
        self.replicas = [ReplicaState(e, _name(e)) for e in replicas]
        self._next = itertools.count()

    # -- measuring ------------------------------------------------------------------------
    def _probe(self, st: ReplicaState) -> None:
        s = get_settings()
        now = time.monotonic()
        try:
            with st.engine.connect() as conn:
                rec, replay, age = conn.execute(text(
                    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() - '0/0'::pg_lsn, "
                    "extract(epoch FROM now() - pg_last_xact_replay_timestamp())")).one()
        except DBAPIError as exc:
            self._failed(st, exc)
            st.checked_at = now
            return
        st.checked_at, st.error = now, None
        try:
            with self.primary.connect() as conn:
                head = int(conn.execute(text(HEAD_SQL)).scalar_one())
        except DBAPIError:
            # The primary is down: nothing newer than what the replica has can be read anywhere,
            # so the replica stays fit (read-only service); a writer's read waits for the primary.
            st.lag_s, st.lag_bytes = None, None
            st.replay_lsn = int(replay) if replay is not None else None
            st.replay_age_s = float(age) if age is not None else None
            self._set_fit(st, bool(rec), None if rec else "not in recovery (not a standby)")
            return
        if not rec:  # promoted, or not a standby at all: reading from it is not reading a replica
            st.replay_lsn, st.lag_s, st.lag_bytes = None, None, None
            self._set_fit(st, False, "not in recovery (not a standby)")
            return
        st.replay_lsn = int(replay) if replay is not None else None
        st.replay_age_s = float(age) if age is not None else None
        st.samples.append((now, head))
        if st.replay_lsn is None:
            st.lag_s, st.lag_bytes = None, None
        elif st.replay_lsn >= head:
            st.lag_s, st.lag_bytes = 0.0, 0
        else:
            st.lag_bytes = head - st.replay_lsn
            lsns = [lsn for _, lsn in st.samples]
            i = bisect.bisect_right(lsns, st.replay_lsn) - 1  # newest sample it has replayed
            # none old enough yet: unknown until the next check
            st.lag_s = now - st.samples[i][0] if i >= 0 else None
        ok = st.lag_s is not None and st.lag_s <= s.replica_max_lag_s
        self._set_fit(st, ok, None if ok else f"lag {st.lag_s:.1f} s > {s.replica_max_lag_s:g} s"
                      if st.lag_s is not None else "lag not measured yet")

    def _set_fit(self, st: ReplicaState, fit: bool, why: str | None) -> None:
        if st.fit is not fit:
            if fit:
                log.warning("replica %s: reading from it again", st.name)
            else:
                log.warning("replica %s: not read from (%s); reads go to the primary", st.name, why)
        st.fit = fit

    def _failed(self, st: ReplicaState, exc: BaseException) -> None:
        st.down_until = time.monotonic() + get_settings().replica_down_s
        st.error = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        self._set_fit(st, False, f"down: {st.error}")

    def refresh(self, st: ReplicaState, force: bool = False) -> None:
        """Re-measure `st` if its last check is older than the interval (one thread at a time;
        the others use the last measure rather than wait)."""
        now = time.monotonic()
        if not force and now - st.checked_at < get_settings().replica_check_s:
            return
        if now < st.down_until and not force:
            return
        if st.lock.acquire(blocking=force):
            try:
                if force or time.monotonic() - st.checked_at >= get_settings().replica_check_s:
                    self._probe(st)
            finally:
                st.lock.release()

    # -- choosing -------------------------------------------------------------------------
    def candidates(self) -> list[ReplicaState]:
        """Fit replicas, in round-robin order."""
        if not self.replicas:
            return []
        start = next(self._next) % len(self.replicas)
        out = []
        for st in self.replicas[start:] + self.replicas[:start]:
            if time.monotonic() < st.down_until:
                continue
            self.refresh(st)
            if st.fit:
                out.append(st)
        return out

    def connect(self, min_lsn: int | None) -> tuple[Connection, ReplicaState | None]:
        """A connection to a fit replica that has replayed `min_lsn`, else to the primary."""
        for st in self.candidates():
            conn = None
            try:
                conn = st.engine.connect()
                if min_lsn is not None and (st.replay_lsn or 0) < min_lsn:
                    # measured behind the caller's write a moment ago: ask the replica itself
                    replay = conn.execute(text(
                        "SELECT pg_last_wal_replay_lsn() - '0/0'::pg_lsn")).scalar_one()
                    if replay is None or int(replay) < min_lsn:
                        conn.close()
                        continue
                    st.replay_lsn = max(st.replay_lsn or 0, int(replay))
                    conn.commit()  # end the check's transaction: the request starts afresh
                return conn, st
            except DBAPIError as exc:
                self._failed(st, exc)
                if conn is not None:
                    conn.close()
        return self.primary.connect(), None

    def engine_for(self, min_lsn: int | None) -> Engine:
        """For work that opens its own connections (report maps): a fit replica's engine that
        had replayed `min_lsn` at its last check, else the primary's."""
        for st in self.candidates():
            if min_lsn is None or (st.replay_lsn or 0) >= min_lsn:
                return st.engine
        return self.primary

    def lost(self, engine: Engine, exc: BaseException) -> None:
        for st in self.replicas:
            if st.engine is engine:
                self._failed(st, exc)

    def status(self) -> list[dict[str, object]]:
        """For /readyz: every replica measured now."""
        out = []
        for st in self.replicas:
            self.refresh(st, force=True)
            out.append({"name": st.name, "fit": bool(st.fit), "error": st.error,
                        "replay_lsn": format_lsn(st.replay_lsn) if st.replay_lsn is not None else None,
                        "lag_s": None if st.lag_s is None else round(st.lag_s, 3),
                        "lag_bytes": st.lag_bytes,
                        "last_replayed_commit_age_s":
                            None if st.replay_age_s is None else round(st.replay_age_s, 3)})
        return out


_routers: dict[tuple[int, tuple[int, ...]], Router] = {}
_routers_lock = threading.Lock()


def get_router() -> Router:
    """The router of the engines in force (one per process and engine set)."""
    primary, replicas = get_engine(), get_read_engines()
    key = (id(primary), tuple(id(e) for e in replicas))
    router = _routers.get(key)
    if router is None:
        with _routers_lock:
            router = _routers.setdefault(key, Router(primary, replicas))
    return router


def min_lsn_of(request: Request) -> int | None:
    """The caller's last write position (header or cookie), if any."""
    lsns = [parse_lsn(request.headers.get(MIN_LSN_HEADER)), parse_lsn(request.cookies.get(LSN_COOKIE))]
    known = [x for x in lsns if x is not None]
    return max(known) if known else None


def reads_from_replica(scope: dict) -> bool:
    """Whether this request may read from a replica at all (rule 1)."""
    if scope.get("method") not in SAFE_METHODS:
        return False
    if scope.get("state", {}).get(PRIMARY_ONLY):
        return False
    path = scope.get("path", "")
    return not any(path == p or path.startswith(p + "/") for p in PRIMARY_PATHS)


def is_replica_failure(exc: BaseException) -> bool:
    """A replica went away under a query, or cancelled it (recovery conflict): worth a retry
    on the primary. Not: a bad query, a timeout, anything the primary would answer alike."""
    import psycopg2

    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    code = getattr(exc.orig, "pgcode", None) or ""
    if not code:  # raised by the client library: the connection is gone or unusable
        return isinstance(exc.orig, psycopg2.OperationalError | psycopg2.InterfaceError)
    # 25006: a GET that writes (an audit row, a memo) reached a read-only replica: run it on
    # the primary rather than fail (logged with its path, to be routed better)
    return code.startswith("08") or code in ("57P01", "57P02", "57P03", "40001", "57P04", "25006")


def open_read_connection(scope: dict, min_lsn: int | None) -> Connection:
    """The connection a request reads with, per the module's rule; notes which it is."""
    state = scope.setdefault("state", {})
    router = get_router()
    if router.replicas and reads_from_replica(scope):
        conn, st = router.connect(min_lsn)
    else:
        conn, st = router.primary.connect(), None
    state[READ_FROM] = "replica" if st is not None else "primary"
    return conn


def read_engine(request: Request) -> Engine:
    """The engine a read-only request may use by itself (rule 1-3, without a live check)."""
    router = get_router()
    if router.replicas and reads_from_replica(request.scope):
        engine = router.engine_for(min_lsn_of(request))
    else:
        engine = router.primary
    request.scope.setdefault("state", {})[READ_FROM] = "primary" if engine is router.primary else "replica"
    return engine


def request_connection(request: Request) -> Iterator[Connection]:
    """`api.deps.get_conn`: the request's one connection; a replica failing under it becomes
    ReplicaLost, which `ReadYourWrites` answers by running the request again on the primary."""
    conn = open_read_connection(request.scope, min_lsn_of(request))
    engine = conn.engine
    try:
        yield conn
    except DBAPIError as exc:
        router = get_router()
        if any(st.engine is engine for st in router.replicas) and is_replica_failure(exc):
            router.lost(engine, exc)
            log.warning("replica %s failed under %s %s; retrying on the primary", _name(engine),
                        request.method, request.url.path)
            raise ReplicaLost(str(exc)) from exc
        raise
    finally:
        release(conn)


def release(conn: Connection) -> None:
    """Give `conn` back to its pool. Closing rolls back what is left open; when the server
    went away after the request's work was done (the answer is built, every write committed),
    that rollback fails: the connection is dropped instead, and the answer stands."""
    try:
        conn.close()
    except DBAPIError as exc:
        log.warning("%s: connection lost while releasing it (%s); dropped", _name(conn.engine),
                    str(getattr(exc, "orig", exc)).strip().splitlines()[:1])
        if not conn.closed:  # (a disconnect seen by SQLAlchemy has invalidated and closed it)
            conn.invalidate(exc)
            conn.close()


def _current_lsn() -> str | None:
    try:
        with get_engine().connect() as conn:
            return format_lsn(int(conn.execute(text(HEAD_SQL)).scalar_one()))
    except DBAPIError:
        return None  # the primary is down: the write failed too, nothing to wait for


class ReadYourWrites:
    """Pure ASGI middleware: the source header on every answer; after every non-GET request
    (when replicas are configured, or the in-process tile memo is on: api/tiles.py) the
    primary's WAL position as X-Antt-LSN and the antt_lsn
    cookie (rule 3); and a GET whose replica died under it (ReplicaLost, raised before any
    byte of the answer was sent) run once more, on the primary (rule 4)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        track = scope["method"] not in SAFE_METHODS and (bool(get_read_engines())
                                                           or get_settings().tile_memo_mb > 0)

        async def sender(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                source = scope.get("state", {}).get(READ_FROM)
                if source:
                    headers.append((SOURCE_HEADER.lower().encode(), source.encode()))
                if track:
                    lsn = await run_in_threadpool(_current_lsn)
                    if lsn:
                        headers.append((LSN_HEADER.lower().encode(), lsn.encode()))
                        headers.append((b"set-cookie", (
                            f"{LSN_COOKIE}={lsn}; Max-Age={LSN_COOKIE_MAX_AGE}; Path=/; "
                            "SameSite=Strict; HttpOnly").encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, sender)
        except ReplicaLost:
            if scope["method"] not in SAFE_METHODS:
                raise
            scope.setdefault("state", {})[PRIMARY_ONLY] = True
            await self.app(scope, receive, sender)


@contextmanager
def autocommit(conn: Connection) -> Iterator[Connection]:
    """`conn` with statements committing one by one, back in transaction mode afterwards.
    psycopg2's own flag, not SQLAlchemy's isolation_level option: that one costs a
    `SET default_transaction_isolation` round trip on the way in and on the way out."""
    dbapi = conn.connection.driver_connection
    try:
        dbapi.autocommit = True
    except conn.dialect.loaded_dbapi.Error as exc:  # closed under us: as SQLAlchemy would say it
        conn.invalidate(exc)
        raise DBAPIError.instance(None, None, exc, conn.dialect.loaded_dbapi.Error,
                                  connection_invalidated=True) from exc
    try:
        yield conn
    finally:
        if not dbapi.closed:
            try:
                dbapi.autocommit = False
            except conn.dialect.loaded_dbapi.Error as exc:
                # The server went away after the statements ran: what they returned stands, the
                # connection is dropped from the pool rather than put back half-reset.
                conn.invalidate(exc)


@contextmanager
def autocommit_connection() -> Iterator[Connection]:
    """A pooled primary connection in autocommit (see `autocommit`)."""
    with get_engine().connect() as conn, autocommit(conn):
        yield conn


def cache_lookup(conn: Connection, tables: tuple[str, ...], digest: str, use_cache: bool,
                 table: CacheTable) -> tuple[int, tuple[Any, ...] | None]:
    """The data version of `tables` and the payload `table` holds under it for `digest`.
    On the primary: one round trip (an unavailable cache table leaves the version alone). On
    a replica: the version there (it matches the replica's data) and the entry on the
    primary, skipped if the primary cannot be reached."""
    if not is_replica(conn.engine):
        if use_cache:
            try:
                row = conn.execute(table.version_and_entry_sql,
                                   {"tables": list(tables), "digest": digest}).one()
                return int(row[0]), tuple(row[1:])
            except DBAPIError:
                reset(conn)
        return data_version(conn, tables), None
    version = data_version(conn, tables)
    if not use_cache:
        return version, None
    try:
        with autocommit_connection() as primary:
            return version, table.get(primary, versioned_key(digest, version))
    except DBAPIError:
        return version, None
