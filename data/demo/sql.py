"""Small database helpers for the demo: COPY a frame into a table, read a query into a frame.

Why COPY: the demo writes up to a million incidents; row-by-row INSERTs would take minutes.
"""

from __future__ import annotations

import io

import pandas as pd
from sqlalchemy import Connection


def copy_frame(conn: Connection, table: str, frame: pd.DataFrame) -> int:
    """COPY the frame's columns (names = table columns) into TABLE; returns the row count."""
    if frame.empty:
        return 0
    buf = io.StringIO()
    frame.to_csv(buf, index=False, header=False, na_rep="\\N", sep="\t")
    buf.seek(0)
    cols = ", ".join(frame.columns)
    with conn.connection.dbapi_connection.cursor() as cur:
        cur.copy_expert(
            f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv, DELIMITER E'\\t', NULL '\\N')", buf)
    return len(frame)


def read_frame(conn: Connection, sql: str, params: dict | None = None) -> pd.DataFrame:
    """A query's rows as a DataFrame, through the caller's transaction."""
    with conn.connection.dbapi_connection.cursor() as cur:
        cur.execute(sql, params or {})
        cols = [d[0] for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=cols)


def execute(conn: Connection, sql: str, params: dict | None = None) -> int:
    """Run a statement on the raw connection (psycopg2 %(name)s parameters); rowcount back."""
    with conn.connection.dbapi_connection.cursor() as cur:
        cur.execute(sql, params or {})
        return cur.rowcount
