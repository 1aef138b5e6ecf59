"""Failed logins per username and per client IP, counted in PostgreSQL (``login_failure``).

Why in the database: with several uvicorn workers (or hosts) an in-process window let a
guesser try ``workers × limit`` passwords a minute. Here every worker counts the same rows,
so the limit is the one in the settings whatever the number of processes.

Exact even under concurrency: an attempt first *reserves* its failure (under a transaction
advisory lock per key, taken in a fixed order), then checks the password; a wrong password
keeps the reservation, a right one removes it (and clears the username's window). So at most
``limit`` attempts per key can be in the window at once, however many arrive together.
A process killed between the two steps leaves its reservation as a failure (the safe side).

The clock is the database's (one clock for all hosts) unless one is given (tests hold it
still so Retry-After is exact). Only failures count; a success clears the username's window.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from sqlalchemy import Connection, text

# A fixed second argument for hashtextextended: these advisory locks live in their own space.
_LOCK_SEED = 7_321_001


class FailureWindow:
    """Sliding one-window counter of failures per key ("user:alice", "ip:10.0.0.1")."""

    def __init__(self, limit: int, window_s: float = 60.0,
                 clock: Callable[[], float] | None = None) -> None:
        self.limit, self.window_s, self._clock = limit, window_s, clock

    def _now(self, conn: Connection) -> float:
        if self._clock is not None:
            return float(self._clock())
        return float(conn.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one())

    def _wait(self, conn: Connection, keys: Sequence[str], now: float) -> int | None:
        """Seconds until every key is under the limit again (None: none is at it)."""
        rows = conn.execute(text(
            "SELECT key, array_agg(at ORDER BY at) FROM login_failure "
            "WHERE key = ANY(:keys) AND at > :since GROUP BY key"),
            {"keys": list(keys), "since": now - self.window_s}).all()
        wait: float | None = None
        for _key, times in rows:
            if len(times) >= self.limit:
                # under the limit once the (n - limit + 1)-th oldest failure leaves the window
                leaves = times[len(times) - self.limit] + self.window_s
                wait = leaves - now if wait is None else max(wait, leaves - now)
        return None if wait is None else max(1, math.ceil(wait))

    def reserve(self, conn: Connection, *keys: str) -> tuple[int | None, list[int]]:
        """(seconds to wait, []) if a key is at the limit; else (None, ids of the failures
        recorded now for every key, to `forgive` if the attempt succeeds). Commits."""
        try:
            conn.execute(text(
                "SELECT pg_advisory_xact_lock(hashtextextended(k, :seed)) "
                "FROM unnest(CAST(:keys AS text[])) AS k ORDER BY k"),
                {"keys": sorted(set(keys)), "seed": _LOCK_SEED})
            now = self._now(conn)
            conn.execute(text("DELETE FROM login_failure WHERE at <= :since"),
                         {"since": now - self.window_s})
            wait = self._wait(conn, keys, now)
            ids: list[int] = []
            if wait is None:
                ids = list(conn.execute(text(
                    "INSERT INTO login_failure (key, at) SELECT k, :now "
                    "FROM unnest(CAST(:keys AS text[])) AS k RETURNING id"),
                    {"keys": list(keys), "now": now}).scalars())
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        return wait, ids

    def forgive(self, conn: Connection, ids: Sequence[int], clear: str | None = None) -> None:
        """The attempt succeeded: drop its reserved rows (and all of `clear`'s). Not committed:
        the caller commits with its own writes (the login's audit row)."""
        conn.execute(text("DELETE FROM login_failure WHERE id = ANY(:ids) OR key = :clear"),
                     {"ids": list(ids), "clear": clear})

    def retry_after(self, conn: Connection, *keys: str) -> int | None:
        """Seconds until the busiest key may try again, or None if none is blocked."""
        return self._wait(conn, keys, self._now(conn))

    def fail(self, conn: Connection, *keys: str) -> None:
        """Record one failure for each key now (committed)."""
        conn.execute(text("INSERT INTO login_failure (key, at) SELECT k, :now "
                          "FROM unnest(CAST(:keys AS text[])) AS k"),
                     {"keys": list(keys), "now": self._now(conn)})
        conn.commit()

    def clear(self, conn: Connection, key: str) -> None:
        conn.execute(text("DELETE FROM login_failure WHERE key = :key"), {"key": key})
        conn.commit()

    def reset(self, conn: Connection) -> None:
        conn.execute(text("DELETE FROM login_failure"))
        conn.commit()
