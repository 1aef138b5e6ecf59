"""Admission control: a bounded number of requests in flight.

Why: endpoints and their dependencies are sync (they run in AnyIO's threadpool of 40) and
each request holds one pooled connection (`api.deps.get_conn`, pool 10 + 20 overflow) from
dependency resolution until the response is sent; the connection is returned by a threadpool
thread too. Under 100 concurrent clients every thread ended up blocked waiting for a
connection while the requests holding the connections waited for a thread: a deadlock broken
only by 30 s pool timeouts (every request failed). Queuing excess requests here, on the event
loop, before they take a thread or a connection, keeps both pools below their limits.
"""

from __future__ import annotations

import asyncio

# Below the connection pool (30) and the threadpool (40), with room for the health check.
MAX_IN_FLIGHT = 24


class AdmissionLimit:
    """Pure ASGI middleware: at most `limit` HTTP requests are processed at once."""

    def __init__(self, app, limit: int = MAX_IN_FLIGHT) -> None:
        self.app, self.limit = app, limit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        # One per event loop (the test client starts a loop per request).
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._slots is None:
            self._loop, self._slots = loop, asyncio.Semaphore(self.limit)
        return self._slots

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        async with self._semaphore():
            await self.app(scope, receive, send)
