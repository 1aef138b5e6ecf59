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
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from layers.cachetable import CacheTable, reset

__all__ = ["TABLE", "Entry", "entry_of", "evict", "get", "get_or_raise", "put", "reset"]

TABLE = CacheTable("result_cache", "grp", ("media_type", "body", "headers"), {"headers": "jsonb"})


@dataclass(frozen=True)
class Entry:
    """A stored response: its bytes, media type and its own headers (not the caching ones)."""

    body: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)


def entry_of(payload: tuple[Any, ...] | None) -> Entry | None:
    """An Entry from the payload columns of a row (None when the row held no entry)."""
    if payload is None:
        return None
    media_type, body, headers = payload
    if body is None or media_type is None:
        return None
    return Entry(bytes(body), media_type, dict(headers or {}))


def get_or_raise(conn: Connection, key: str) -> Entry | None:
    """The entry under `key`, None if there is none; DBAPIError if the cache is unavailable."""
    return entry_of(TABLE.get_or_raise(conn, key))


def get(conn: Connection, key: str) -> Entry | None:
    return entry_of(TABLE.get(conn, key))


def put(conn: Connection, key: str, group: str, version: int, entry: Entry, max_bytes: int) -> bool:
    """Store `entry` (the caller commits); older versions of `group` go, then the oldest
    entries while the table is over `max_bytes` (entries are few and large: checked on every
    store). False when not stored (too large, disabled, or the cache unavailable)."""
    payload = {"media_type": entry.media_type, "body": entry.body, "headers": json.dumps(entry.headers)}
    return TABLE.put(conn, key, group, version, payload, len(entry.body), max_bytes)


def evict(conn: Connection, max_bytes: int) -> int:
    """Bring the cache under `max_bytes` now; returns the entries deleted."""
    return TABLE.evict(conn, max_bytes)
