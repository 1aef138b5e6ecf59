"""The vector tile cache shared by all workers: table ``tile_cache`` on the primary.

Why in PostgreSQL: every worker on every host sees the same entries, with no cache server to
run; one indexed lookup costs about what the data version lookup does. The table is UNLOGGED
(no WAL, emptied after a crash, not replicated: a cache), so it is only used on the primary,
even when the tile itself is built on a replica.

Never stale: an entry's key holds the data version of the tables the tile reads
(`layers.versions`), so a write makes every older entry unreachable; they are deleted when a
newer one of the same group is stored, and the oldest entries go when the table is over
ANTT_TILE_CACHE_MB. A cache that cannot be reached (the primary down while a replica serves)
is skipped: the tile is built as if it were empty.
"""

from __future__ import annotations

import logging
import random

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from layers.tiles import Tile

log = logging.getLogger(__name__)

EVICT_EVERY = 50  # about one store in this many checks the size bound

_GET = text("SELECT data, features, generalisation FROM tile_cache WHERE key = CAST(:key AS uuid)")
# The entry in, and its group's older versions out, in one round trip.
_PUT = text("""
    WITH put AS (
        INSERT INTO tile_cache (key, layer, version, data, features, generalisation, size_bytes)
        VALUES (CAST(:key AS uuid), :grp, :version, :data, :features, :gen, :size)
        ON CONFLICT (key) DO NOTHING RETURNING 1)
    DELETE FROM tile_cache WHERE layer = :grp AND version < :version""")
_EVICT = text("""
    DELETE FROM tile_cache c USING (
        SELECT key, sum(size_bytes) OVER (ORDER BY created_at DESC, key) AS upto FROM tile_cache
    ) s
    WHERE c.key = s.key AND s.upto > :max_bytes""")
# The version and the entry in one round trip, when the tile is read on the primary itself.
VERSION_AND_ENTRY = text("""
    SELECT v.version, c.data, c.features, c.generalisation
    FROM (SELECT antt_data_version(CAST(:tables AS text[])) AS version) v
    LEFT JOIN tile_cache c
           ON c.key = CAST(md5(:digest || ':' || v.version) AS uuid)""")


def get(conn: Connection, key: str) -> Tile | None:
    try:
        row = conn.execute(_GET, {"key": key}).first()
    except DBAPIError as exc:
        log.debug("tile cache unavailable: %s", exc.orig)
        _reset(conn)
        return None
    return Tile(bytes(row[0]), int(row[1]), row[2]) if row else None


def put(conn: Connection, key: str, group: str, version: int, tile: Tile, max_bytes: int) -> None:
    """Store `tile` (autocommit connection expected); older versions of `group` go."""
    if max_bytes <= 0 or len(tile.data) > max_bytes:
        return
    try:
        conn.execute(_PUT, {"key": key, "grp": group, "version": version, "data": tile.data,
                            "features": tile.features, "gen": tile.generalisation,
                            "size": len(tile.data)})
        if random.random() < 1 / EVICT_EVERY:
            conn.execute(_EVICT, {"max_bytes": max_bytes})
    except DBAPIError as exc:
        log.debug("tile not cached: %s", exc.orig)
        _reset(conn)


def _reset(conn: Connection) -> None:
    try:
        conn.rollback()
    except DBAPIError:
        pass


def evict(conn: Connection, max_bytes: int) -> int:
    """Bring the cache under `max_bytes` now; returns the entries deleted."""
    return conn.execute(_EVICT, {"max_bytes": max_bytes}).rowcount
