"""Data versions: one number per set of tables that grows with every committed write to them.

Why: an HTTP validator (ETag) and a shared tile cache must change exactly when the data under a
response changes, in every worker and host, without asking the data itself. Statement-level
triggers (migration 0007) count the write statements of every tracked table; the version of
a query is `antt_data_version(tables it reads)`, one indexed lookup.

A response that reads a table without a version (added by a later migration that did not call
`antt_track_changes`) is not keyed this way: `version_tables` says None and the caller falls
back to an ETag of the bytes, private, and no shared cache.

A response's key is a hash of the statement that makes it (its SQL text and bind values: the
layer, tile, filters, the caller's role through `suppress_below`, its scope, today's date for
unit validity, ...) and that version. The same statement on the same data gives the same
bytes, so equal keys mean equal responses, for any caller and worker.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, text

# The tables migration 0007 tracks (tests/api/test_versions_caching.py checks it against the
# database). Later migrations add theirs with `SELECT antt_track_changes('table')`; what is
# tracked is read from the database (`tracked_tables`).
TRACKED = ("admin_unit", "unit_lineage", "model_type", "institution", "institution_year",
           "unit_year", "security_model", "model_rating", "fire_group", "incident_category",
           "incident", "launch_point")
# Written only by the triggers of another tracked table: its version covers them.
DERIVED = {"admin_unit_part": "admin_unit"}
# Read by every layer through unit_at()/unit_now() (functions hide their reads from the SQL
# text), and a change of boundaries moves everything placed in them: always in the version.
ALWAYS = ("admin_unit",)

VERSION_SQL = "SELECT antt_data_version(CAST(:tables AS text[]))"

_COMMENT = re.compile(r"--[^\n]*")
_FROM = re.compile(r"\b(?:FROM|JOIN)\s+(?:ONLY\s+)?([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\()", re.IGNORECASE)
_CTE = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s+AS\s+(?:NOT\s+)?(?:MATERIALIZED\s+)?\(", re.IGNORECASE)
_tracked: dict[str, frozenset[str]] = {}


@lru_cache(maxsize=1024)
def tables_read(sql: str) -> frozenset[str]:
    """The tables `sql` reads: FROM/JOIN names that are not its own CTEs nor function calls
    (its statements repeat per layer, role and scope, so this is cached)."""
    sql = _COMMENT.sub("", sql)
    ctes = {m.lower() for m in _CTE.findall(sql)}
    return frozenset(DERIVED.get(n, n) for n in (m.lower() for m in _FROM.findall(sql)) if n not in ctes)


def tracked_tables(conn: Connection) -> frozenset[str]:
    """Tables with a data version, read once per database and process (tracking changes only
    with a migration; a worker started before it sees the new table as untracked: uncached)."""
    key = conn.engine.url.render_as_string(hide_password=True)
    found = _tracked.get(key)
    if found is None:
        found = _tracked[key] = frozenset(conn.execute(text("SELECT tbl FROM data_version")).scalars())
    return found


def version_tables(conn: Connection, sql: str) -> tuple[str, ...] | None:
    """The tables whose version keys a response made by `sql`; None when it reads a table
    without a version (then it must not be cached by version: the caller falls back to an
    ETag of the bytes and no shared cache)."""
    reads = tables_read(sql) | set(ALWAYS)
    if not reads <= tracked_tables(conn):
        return None
    return tuple(sorted(reads))


def known_version_tables(engine: Engine, sql: str) -> tuple[str, ...] | None:
    """`version_tables` without the database: None also when this process has not yet read
    what `engine`'s database tracks (the in-process tile memo's fast path, api/tiles.py)."""
    tracked = _tracked.get(engine.url.render_as_string(hide_password=True))
    if tracked is None:
        return None
    reads = tables_read(sql) | set(ALWAYS)
    return tuple(sorted(reads)) if reads <= tracked else None


def data_version(conn: Connection, tables: Iterable[str]) -> int:
    return int(conn.execute(text(VERSION_SQL), {"tables": list(tables)}).scalar_one())


def statement_digest(*parts: Any) -> str:
    """A stable hash of statements and their bind values (repr of sorted dicts)."""
    h = hashlib.md5(usedforsecurity=False)
    for part in parts:
        if isinstance(part, dict):
            part = sorted(part.items())
        h.update(repr(part).encode())
        h.update(b"\x00")
    return h.hexdigest()


def versioned_key(digest: str, version: int) -> str:
    """The key of a response: its statement digest under a data version (a uuid string)."""
    return str(uuid.UUID(hashlib.md5(f"{digest}:{version}".encode(), usedforsecurity=False).hexdigest()))


def etag_of(key: str) -> str:
    return f'"{key.replace("-", "")}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags
