"""LISTEN for PostgreSQL notifications in a daemon thread, one connection per channel and engine.

Why: a worker keeps a few seconds' cache of who a credential belongs to (api/deps.py); the
database tells every worker when an account or a key changes (migration 0007 triggers
NOTIFY at commit), whoever changed it (API, CLI, psql, another host), so the cache is dropped
at once instead of at the end of its time to live.

A notification can be missed only while the connection is down; so each (re)connection starts
with `on_gap()` (drop everything), after LISTEN is in force. While it is down, whatever was
cached keeps its own time to live (the bound the cache promises anyway). The thread stops with the engine
(`Engine.dispose()`), or by itself when the database no longer exists.

Optional, for a listener that must also know how far it has caught up (layers/versionwatch.py):
`heartbeat(conn)` runs on the listening connection every `heartbeat_s` seconds; notifications
that arrive with its result are handed to `on_notify` first, then the callable it returns (if
any) runs. `with_payloads` hands `on_notify` the list of payloads of each batch.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event

log = logging.getLogger(__name__)

_listeners: dict[tuple[int, str], Listener] = {}
_lock = threading.Lock()


class Listener:
    """LISTEN `channel` on the database of `engine`; call `on_notify()` for each batch
    (`on_notify(payloads)` with `with_payloads`)."""

    def __init__(self, engine: Engine, channel: str, on_notify: Callable[..., None],
                 on_gap: Callable[[], None],
                 heartbeat: Callable[[Any], Callable[[], None] | None] | None = None,
                 heartbeat_s: float = 1.0, with_payloads: bool = False) -> None:
        self.engine = engine  # held: the key below is its id, which must not be reused
        self.channel, self.on_notify, self.on_gap = channel, on_notify, on_gap
        self.heartbeat, self.heartbeat_s, self.with_payloads = heartbeat, heartbeat_s, with_payloads
        self.backend_pid: int | None = None  # the listening backend (tests terminate it)
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        kwargs = {k: v for k, v in kwargs.items() if k != "options"}  # no statement timeout here
        # Notice a dead peer within ~10 s even without a FIN (host gone, cable cut).
        kwargs |= {"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 5,
                   "keepalives_interval": 2, "keepalives_count": 3}
        self._connect_args = (args, kwargs)
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"listen-{channel}", daemon=True)

    def start(self) -> Listener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        import psycopg2

        backoff = 0.2
        while not self._stop.is_set():
            conn = None
            try:
                conn = psycopg2.connect(*self._connect_args[0], **self._connect_args[1])
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(f'LISTEN "{self.channel}"')
                self.backend_pid = conn.get_backend_pid()
                self.on_gap()  # whatever changed while nobody listened
                self.connected.set()
                backoff = 0.2
                next_beat = time.monotonic()
                while not self._stop.is_set():
                    wait = 1.0
                    if self.heartbeat is not None:
                        wait = min(wait, max(0.0, next_beat - time.monotonic()))
                    ready, _, _ = select.select([conn], [], [], wait)
                    if ready:
                        conn.poll()  # raises when the server has gone
                    after = None
                    if self.heartbeat is not None and time.monotonic() >= next_beat:
                        after = self.heartbeat(conn)  # notifications may arrive with its result
                        next_beat = time.monotonic() + self.heartbeat_s
                    if conn.notifies:
                        payloads = [n.payload for n in conn.notifies]
                        conn.notifies.clear()
                        if self.with_payloads:
                            self.on_notify(payloads)
                        else:
                            self.on_notify()
                    if after is not None:
                        after()  # only once what came with the heartbeat has been handed on
            except psycopg2.OperationalError as exc:
                if "does not exist" in str(exc):  # the database was dropped (tests): done
                    log.debug("listener %s: database gone, stopping", self.channel)
                    return
                log.info("listener %s: connection lost (%s); retrying", self.channel,
                         str(exc).strip().splitlines()[0] if str(exc).strip() else exc)
            except Exception:  # noqa: BLE001 - the thread must survive anything and retry
                log.exception("listener %s failed; retrying", self.channel)
            finally:
                self.connected.clear()  # until reconnected the cache relies on its TTL
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:  # noqa: BLE001
                        pass
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 5.0)


def listen(engine: Engine, channel: str, on_notify: Callable[..., None],
           on_gap: Callable[[], None] | None = None, **options: Any) -> Listener:
    """The listener of `channel` on `engine`'s database, started once per process (`options`:
    heartbeat, heartbeat_s, with_payloads; see `Listener`)."""
    key = (id(engine), channel)
    found = _listeners.get(key)  # the hot path (every authentication): no lock
    if found is not None and not found._stop.is_set():
        return found
    with _lock:
        found = _listeners.get(key)
        if found is not None and not found._stop.is_set():
            return found
        listener = Listener(engine, channel, on_notify, on_gap or on_notify, **options)
        _listeners[key] = listener

        def stop(*_args) -> None:
            listener.stop()
            with _lock:
                if _listeners.get(key) is listener:
                    del _listeners[key]

        event.listen(engine, "engine_disposed", stop)
        return listener.start()
