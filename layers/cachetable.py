"""The statements of a cache table in PostgreSQL, shared by the tile cache and the result cache.

Both are UNLOGGED tables on the primary keyed by a uuid (md5 of a statement or request digest
and a data version, `layers.versions.versioned_key`), with a group whose older versions go
when a newer entry is stored, and a size bound that evicts the oldest entries. Only their
payload columns differ, so the SQL is written once here from the column names.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, TextClause, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheTable:
    """A cache table: its name, the column naming an entry's group, its payload columns (in
    the order rows come back) and the SQL type of any payload bound as text (jsonb...)."""

    name: str
    group_column: str
    payload: Sequence[str]
    casts: dict[str, str] = field(default_factory=dict)

    @cached_property
    def get_sql(self) -> TextClause:
        return text(f"SELECT {', '.join(self.payload)} FROM {self.name} WHERE key = CAST(:key AS uuid)")

    @cached_property
    def put_sql(self) -> TextClause:
        """The entry in, and its group's older versions out, in one round trip."""
        values = ", ".join(f"CAST(:{c} AS {self.casts[c]})" if c in self.casts else f":{c}"
                           for c in self.payload)
        return text(f"""
            WITH put AS (
                INSERT INTO {self.name} (key, {self.group_column}, version, {', '.join(self.payload)},
                                         size_bytes)
                VALUES (CAST(:key AS uuid), :grp, :version, {values}, :size)
                ON CONFLICT (key) DO NOTHING RETURNING 1)
            DELETE FROM {self.name} WHERE {self.group_column} = :grp AND version < :version""")

    @cached_property
    def evict_sql(self) -> TextClause:
        """The oldest entries out while the table is over :max_bytes."""
        return text(f"""
            DELETE FROM {self.name} c USING (
                SELECT key, sum(size_bytes) OVER (ORDER BY created_at DESC, key) AS upto FROM {self.name}
            ) s
            WHERE c.key = s.key AND s.upto > :max_bytes""")

    @cached_property
    def version_and_entry_sql(self) -> TextClause:
        """The data version of :tables and the entry under it (the key computed in SQL as
        `versioned_key` does), in one round trip, when the data is read on the primary."""
        return text(f"""
            SELECT v.version, {', '.join('c.' + c for c in self.payload)}
            FROM (SELECT antt_data_version(CAST(:tables AS text[])) AS version) v
            LEFT JOIN {self.name} c ON c.key = CAST(md5(:digest || ':' || v.version) AS uuid)""")

    def get_or_raise(self, conn: Connection, key: str) -> tuple[Any, ...] | None:
        """The payload under `key`, None if there is none; DBAPIError if unavailable."""
        row = conn.execute(self.get_sql, {"key": key}).first()
        return tuple(row) if row else None

    def get(self, conn: Connection, key: str) -> tuple[Any, ...] | None:
        """The payload under `key`; None if there is none or the table is unavailable."""
        try:
            return self.get_or_raise(conn, key)
        except DBAPIError as exc:
            log.debug("%s unavailable: %s", self.name, exc.orig)
            reset(conn)
            return None

    def put(self, conn: Connection, key: str, group: str, version: int, payload: dict[str, Any],
            size: int, max_bytes: int, evict: bool = True) -> bool:
        """Store an entry of `size` bytes (older versions of `group` go), then evict over
        `max_bytes` if `evict`. False when not stored: too large, disabled, or the table
        unavailable (rolled back, never raised)."""
        if max_bytes <= 0 or size > max_bytes:
            return False
        try:
            conn.execute(self.put_sql, {"key": key, "grp": group, "version": version, "size": size} | payload)
            if evict:
                conn.execute(self.evict_sql, {"max_bytes": max_bytes})
        except DBAPIError as exc:
            log.debug("not stored in %s: %s", self.name, exc.orig)
            reset(conn)
            return False
        return True

    def evict(self, conn: Connection, max_bytes: int) -> int:
        """Bring the table under `max_bytes` now; returns the entries deleted."""
        return conn.execute(self.evict_sql, {"max_bytes": max_bytes}).rowcount


def reset(conn: Connection) -> None:
    """Roll back after a failed cache statement, so the connection stays usable."""
    try:
        conn.rollback()
    except DBAPIError:
        pass
