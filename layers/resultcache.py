"""The analysis result cache shared by all workers: table ``result_cache`` on the primary.

Why: coverage of the whole country, KDE heatmaps and Gi* hot spots take seconds, and were
computed again on every request even when nothing had changed. Built as the tile cache is
(`layers.tilecache`): in PostgreSQL so every worker on every host sees the same entries with
no cache server to run; UNLOGGED (no WAL, emptied after a crash, not replicated), so it is
only ever used on the primary, even when the analysis itself is read from a replica.

Never stale: an entry's key holds the data version of the tables the analysis reads
(`layers.versions`), so a write makes every older entry unreachable; they are deleted when a
newer one of the same group is stored, and the oldest entries go when the table is over
ANTT_RESULT_CACHE_MB (checked on every store: entries are few and large, unlike tiles). A
cache that cannot be reached is skipped: the answer is computed as if it were empty.

This module holds no HTTP code: the keys and the responses are made in `api.resultcache`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """A stored response: its bytes, media type and its own headers (not the caching ones)."""

    body: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)


_GET = text("SELECT media_type, body, headers FROM result_cache WHERE key = CAST(:key AS uuid)")
# The entry in, and its group's older versions out, in one round trip.
_PUT = text("""
    WITH put AS (
        INSERT INTO result_cache (key, grp, version, media_type, body, headers, size_bytes)
        VALUES (CAST(:key AS uuid), :grp, :version, :media_type, :body, CAST(:headers AS jsonb), :size)
        ON CONFLICT (key) DO NOTHING RETURNING 1)
    DELETE FROM result_cache WHERE grp = :grp AND version < :version""")
_EVICT = text("""
    DELETE FROM result_cache c USING (
        SELECT key, sum(size_bytes) OVER (ORDER BY created_at DESC, key) AS upto FROM result_cache
    ) s
    WHERE c.key = s.key AND s.upto > :max_bytes""")
# The version and the entry in one round trip, when the analysis is read on the primary itself
# (the key is `layers.versions.versioned_key(digest, version)`, computed in SQL).
VERSION_AND_ENTRY = text("""
    SELECT v.version, c.media_type, c.body, c.headers
    FROM (SELECT antt_data_version(CAST(:tables AS text[])) AS version) v
    LEFT JOIN result_cache c
           ON c.key = CAST(md5(:digest || ':' || v.version) AS uuid)""")


def entry_of(media_type: str | None, body: bytes | memoryview | None,
             headers: dict[str, str] | None) -> Entry | None:
    """An Entry from a row's columns (None when the row held none)."""
    if body is None or media_type is None:
        return None
    return Entry(bytes(body), media_type, dict(headers or {}))


def get_or_raise(conn: Connection, key: str) -> Entry | None:
    """The entry under `key`, None if there is none; DBAPIError if the cache is unavailable."""
    row = conn.execute(_GET, {"key": key}).first()
    return entry_of(*row) if row else None


def get(conn: Connection, key: str) -> Entry | None:
    try:
        return get_or_raise(conn, key)
    except DBAPIError as exc:
        log.debug("result cache unavailable: %s", exc.orig)
        reset(conn)
        return None


def put(conn: Connection, key: str, group: str, version: int, entry: Entry, max_bytes: int) -> bool:
    """Store `entry` (the caller commits); older versions of `group` go, then the oldest
    entries while the table is over `max_bytes`. False when not stored (too large, disabled,
    or the cache unavailable: rolled back, never raised)."""
    if max_bytes <= 0 or len(entry.body) > max_bytes:
        return False
    try:
        conn.execute(_PUT, {"key": key, "grp": group, "version": version,
                            "media_type": entry.media_type, "body": entry.body,
                            "headers": json.dumps(entry.headers), "size": len(entry.body)})
        conn.execute(_EVICT, {"max_bytes": max_bytes})
    except DBAPIError as exc:
        log.debug("result not cached: %s", exc.orig)
        reset(conn)
        return False
    return True


def reset(conn: Connection) -> None:
    """Roll back after a failed cache statement, so the connection stays usable."""
    try:
        conn.rollback()
    except DBAPIError:
        pass


def evict(conn: Connection, max_bytes: int) -> int:
    """Bring the cache under `max_bytes` now; returns the entries deleted."""
    return conn.execute(_EVICT, {"max_bytes": max_bytes}).rowcount
