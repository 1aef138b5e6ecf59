"""In-process limiter for failed logins (per username and per client IP).

Why in-process: the service runs as one uvicorn worker next to its own database, and a
password guesser is slowed enough by a per-process window. With several workers each worker
keeps its own window, so the effective limit is ``workers × limit`` — documented, not hidden.
Only failures count; a successful login clears the username's window.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class FailureWindow:
    """Sliding one-window counter of failures per key ("user:alice", "ip:10.0.0.1")."""

    def __init__(self, limit: int, window_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window_s, self._clock = limit, window_s, clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _prune(self, key: str, now: float) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        return hits

    def retry_after(self, *keys: str) -> int | None:
        """Seconds until the busiest key may try again, or None if none is blocked."""
        now = self._clock()
        wait: float | None = None
        with self._lock:
            for key in keys:
                hits = self._prune(key, now)
                if len(hits) >= self.limit:
                    key_wait = hits[0] + self.window_s - now
                    wait = key_wait if wait is None else max(wait, key_wait)
        return None if wait is None else max(1, math.ceil(wait))

    def fail(self, *keys: str) -> None:
        now = self._clock()
        with self._lock:
            for key in keys:
                self._prune(key, now).append(now)

    def clear(self, key: str) -> None:
        with self._lock:
            self._hits.pop(key, None)

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()
