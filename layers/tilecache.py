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

import random
from typing import Any

from sqlalchemy import Connection

from layers.cachetable import CacheTable
from layers.tiles import Tile

EVICT_EVERY = 50  # about one store in this many checks the size bound
TABLE = CacheTable("tile_cache", "layer", ("data", "features", "generalisation"))


def tile_of(payload: tuple[Any, ...] | None) -> Tile | None:
    """A Tile from the payload columns of a row (None when the row held no entry)."""
    if payload is None or payload[0] is None:
        return None
    data, features, generalisation = payload
    return Tile(bytes(data), int(features), generalisation)


def get(conn: Connection, key: str) -> Tile | None:
    return tile_of(TABLE.get(conn, key))


def put(conn: Connection, key: str, group: str, version: int, tile: Tile, max_bytes: int) -> None:
    """Store `tile` (autocommit connection expected); older versions of `group` go."""
    TABLE.put(conn, key, group, version,
              {"data": tile.data, "features": tile.features, "generalisation": tile.generalisation},
              len(tile.data), max_bytes, evict=random.random() < 1 / EVICT_EVERY)


def evict(conn: Connection, max_bytes: int) -> int:
    """Bring the cache under `max_bytes` now; returns the entries deleted."""
    return TABLE.evict(conn, max_bytes)
