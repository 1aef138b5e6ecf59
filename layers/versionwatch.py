"""Per-process watch of data versions, and the bounded memo it keeps valid (the tile memo).

Why: a tile served from the shared PostgreSQL cache still costs one round trip (the data
version and the entry), most of a cached tile's time. A worker that knows, without asking,
that no tracked table has changed since it last read a tile can serve that tile again from
memory. It knows through the notifications of migration 0015: every committed write statement
on a tracked table sends `pg_notify('antt_data', table)` at commit, and each worker LISTENs
(`antt.listen`, one connection per process and database).

What the watch keeps:
- a generation per table, bumped by each notification batch naming it, and a gap counter,
  bumped on every (re)connection of the listener (notifications may have been missed): a
  memo entry holds the `token` of its tables read *before* its database lookup, and is valid
  only while the token is unchanged, so a notification that arrives during the lookup makes
  it invalid at once;
- `healthy`: the listener is connected and its heartbeat (a read every `BEAT_S` on its own
  connection) is recent (`STALE_S`): a silent, dead connection stops memo use within seconds;
- `caught_up`: a WAL position of the primary such that every transaction whose commit record
  ends at or before it has had its notifications handed on. Each heartbeat reads the primary's
  flush position (`FLUSHED_SQL`): a commit record at or before it is on disk, so its backend
  has only in-memory steps left (marking itself committed, signalling the listeners).
  PostgreSQL sends a listening session the notifications signalled to it before the
  ReadyForQuery of its next statement, so once a read returns, the transactions flushed before
  the *previous* read have all been delivered: `caught_up` is the position of the previous read.

Consistency: a request carrying its own last write position (the `antt_lsn` cookie or
`X-Antt-Min-LSN`, api/readroute.py) is served from the memo only if `caught_up` is at or past
it, so a writer never reads its own write stale; other clients may see the previous answer
for the notification delay after a commit (milliseconds), the bound the replica path already
accepts for clients without a position. Assumed: a backend whose commit record is flushed
signals its listeners within one heartbeat (`BEAT_S`, 200 ms). Only in-memory steps lie
between, no I/O: the flush position, not the insert position, is what makes it so (a commit
record is inserted before its fsync, which a loaded disk may stretch past a heartbeat). A
synchronous standby would add its wait there; the replica of `antt db replica` streams
asynchronously. With `synchronous_commit = off` a commit returns before its flush: its writer
then reads from the database, not the memo, until the WAL writer has flushed it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Engine, event

from antt.listen import Listener, listen

CHANNEL = "antt_data"  # NOTIFY'd by antt_data_changed() (migration 0015)
BEAT_S = 0.2
STALE_S = 2.0
# The primary's WAL insert position: at or past the end of the commit record of every committed
# write (pg_current_wal_lsn, the write position, may still be behind it with synchronous_commit
# off). When the last record ended exactly at a WAL page (or segment) boundary, the insert
# position is just past the next page's header, where no record ends: it is taken back to the
# boundary, which is where a standby that replayed that record reports itself.
HEAD_SQL = """
    SELECT CASE WHEN l % seg = 40 THEN l - 40 WHEN l % blk = 24 THEN l - 24 ELSE l END
    FROM (SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint AS l,
                 pg_size_bytes(current_setting('wal_segment_size')) AS seg,
                 current_setting('wal_block_size')::bigint AS blk) x"""
# How far the primary's WAL is on disk: the heartbeat's position (see the module doc).
FLUSHED_SQL = "SELECT pg_current_wal_flush_lsn() - '0/0'::pg_lsn"

Token = tuple[int, tuple[int, ...]]


class Memo:
    """A bounded LRU of (token, value) by bytes; thread-safe, no I/O (usable on the event loop)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[str, tuple[Token, Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, token: Token) -> Any | None:
        """The value under `key` if it was stored under `token`, else None (a stale one goes)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] != token:
                del self._entries[key]
                self.bytes -= entry[2]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: str, token: Token, value: Any, size: int) -> None:
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.bytes -= old[2]
            self._entries[key] = (token, value, size)
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, (_, _, gone) = self._entries.popitem(last=False)
                self.bytes -= gone

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0


class VersionWatch:
    """What one process knows of the data versions of one database (see the module doc)."""

    def __init__(self, engine: Engine, memo_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.engine, self.clock = engine, clock
        self.memo = Memo(memo_bytes)
        self.gap = 0
        self.caught_up: int | None = None
        self.beat_at = float("-inf")
        self._generations: dict[str, int] = {}
        self._previous: int | None = None
        self._lock = threading.Lock()
        self.listener: Listener | None = None

    def token(self, tables: Iterable[str]) -> Token:
        """The generations of `tables` now: read before a lookup, compared before a memo use."""
        g = self._generations
        return self.gap, tuple(g.get(t, 0) for t in tables)

    def healthy(self) -> bool:
        listener = self.listener
        return (listener is not None and listener.connected.is_set()
                and self.clock() - self.beat_at < STALE_S)

    def covers(self, lsn: int | None) -> bool:
        """Whether every commit up to the caller's write position `lsn` has been seen."""
        if lsn is None:
            return True
        caught = self.caught_up
        return caught is not None and lsn <= caught

    # -- the listener's callbacks (its thread) -------------------------------------------
    def on_notify(self, payloads: list[str]) -> None:
        with self._lock:
            for table in set(payloads):
                self._generations[table] = self._generations.get(table, 0) + 1

    def on_gap(self) -> None:
        with self._lock:
            self.gap += 1
            self.caught_up = self._previous = None
        self.memo.clear()  # nothing in it can be used again

    def heartbeat(self, conn: Any) -> Callable[[], None]:
        with conn.cursor() as cur:
            cur.execute(FLUSHED_SQL)
            lsn = int(cur.fetchone()[0])

        def caught_up() -> None:  # run once the notifications that came with the read count
            self.caught_up, self._previous = self._previous, lsn
            self.beat_at = self.clock()

        return caught_up


_watches: dict[int, VersionWatch] = {}
_lock = threading.Lock()


def running(engine: Engine) -> VersionWatch | None:
    """The watch of `engine` if one was started (no I/O, no start: the memo's fast path)."""
    return _watches.get(id(engine))


def watch(engine: Engine, memo_bytes: int) -> VersionWatch:
    """The watch of `engine`'s database (the primary's), started once per process; it goes
    with the engine (`Engine.dispose()`)."""
    found = _watches.get(id(engine))
    if found is not None and found.listener is not None and not found.listener._stop.is_set():
        return found
    with _lock:
        found = _watches.get(id(engine))
        if found is not None and found.listener is not None and not found.listener._stop.is_set():
            return found
        w = VersionWatch(engine, memo_bytes)
        _watches[id(engine)] = w

        def gone(*_args: Any) -> None:
            with _lock:
                if _watches.get(id(engine)) is w:
                    del _watches[id(engine)]

        event.listen(engine, "engine_disposed", gone)
        w.listener = listen(engine, CHANNEL, w.on_notify, w.on_gap, heartbeat=w.heartbeat,
                            heartbeat_s=BEAT_S, with_payloads=True)
        return w
