"""Data versions: one number per set of tables that grows with every committed write to them.

Why: an HTTP validator (ETag) and a shared tile cache must change exactly when the data under a
response changes, in every worker and host, without asking the data itself. Statement-level
triggers (migration 0007) count the write statements of every tracked table; the version of
a query is `antt_data_version(tables it reads)`, one indexed lookup.

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

from sqlalchemy import Connection, text

# The tables migration 0007 tracks (tests/api/test_versions_caching.py checks it against the database).
TRACKED = ("admin_unit", "unit_lineage", "model_type", "institution", "institution_year",
           "unit_year", "security_model", "model_rating", "fire_group", "incident_category",
           "incident", "launch_point")
_TRACKED_RE = re.compile(r"\b(" + "|".join(TRACKED) + r")\b")

VERSION_SQL = "SELECT antt_data_version(CAST(:tables AS text[]))"


@lru_cache(maxsize=1024)
def tables_of(sql: str) -> tuple[str, ...]:
    """The tracked tables `sql` names (its statements repeat per layer, role and scope)."""
    return tuple(sorted(set(_TRACKED_RE.findall(sql))))


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
