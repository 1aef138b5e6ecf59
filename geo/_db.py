"""Small database helpers shared by the analytics modules (private to geo/)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, text

Bind = Connection | Engine

# A model is active on :on (alias m): founded, and not suspended/dissolved by then.
ACTIVE_SQL = ("m.founded_on <= :on AND NOT (m.status IN ('suspended', 'dissolved') "
              "AND COALESCE(m.status_since, m.founded_on) <= :on)")


def valid_on(alias: str) -> str:
    """SQL: the unit row ``alias`` is valid on :on (its era covers the date)."""
    return f"{alias}.valid_from <= :on AND ({alias}.valid_to IS NULL OR :on < {alias}.valid_to)"


@contextmanager
def connect(bind: Bind) -> Iterator[Connection]:
    """Use a caller's Connection as is (their transaction), or open one from an Engine."""
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.connect() as conn:
            yield conn


def frame(bind: Bind, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Run SQL and return a DataFrame with the result's columns (even when empty)."""
    with connect(bind) as conn:
        result = conn.execute(text(sql), dict(params or {}))
        cols = list(result.keys())
        # Plain tuples straight from the DBAPI cursor: pandas builds a frame from Row objects
        # ~10x slower, and Row creation itself costs ~0.3 s on 70k rows (text() has no result
        # processors to skip). Fallback: the ordinary Row path.
        cursor = getattr(result, "cursor", None)
        rows = cursor.fetchall() if cursor is not None else [tuple(r) for r in result.fetchall()]
        result.close()
        return pd.DataFrame.from_records(rows, columns=cols)
