"""Long work as jobs: state, progress and result in PostgreSQL, work in a background thread.

Why the database holds the state: with several API workers (or hosts) behind a proxy, the
worker that answers ``GET /jobs/{id}`` is rarely the one running the job. Every worker reads
the same ``job`` row, so the answer does not depend on which process the client reaches.

How a job runs
--------------
- A job *kind* is a plain function registered with :func:`job_kind`: it takes a
  :class:`JobContext` and the job's JSON parameters and returns a JSON-able result. The same
  function answers the direct (synchronous) call, so a job's result equals a direct call's.
- :func:`submit` writes a ``queued`` row and hands the work to this process's bounded thread
  pool (``ANTT_JOB_THREADS``). The thread marks the row ``running``, calls the kind, and stores
  ``done`` with the result, or ``failed`` with a bilingual error, or ``cancelled``.
- ``ctx.progress(fraction, message)`` is written on its own autocommit connection (throttled),
  so pollers see it while the job's own transaction is still open. It also raises
  :class:`JobCancelled` once a cancel was requested (from any worker).
- A heartbeat (every progress call, and a timer while the job is silent) proves the worker is
  alive. A ``queued`` or ``running`` row whose heartbeat is older than
  ``ANTT_JOB_STALE_SECONDS`` belonged to a process that died (kill -9, host lost): readers mark
  it ``failed`` with the reason "lost", never leave it "running" forever. Because the kind's
  writes happen in its own transaction, a killed job leaves nothing half-written.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, text

log = logging.getLogger(__name__)

STATUSES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = frozenset({"done", "failed", "cancelled"})

JobFunction = Callable[["JobContext", dict[str, Any]], Any]
_KINDS: dict[str, JobFunction] = {}


def job_kind(name: str) -> Callable[[JobFunction], JobFunction]:
    """Register FN as the job kind NAME (decorator). Names are unique per process."""

    def register(fn: JobFunction) -> JobFunction:
        if name in _KINDS and _KINDS[name] is not fn:
            raise ValueError(f"job kind {name!r} is already registered")
        _KINDS[name] = fn
        return fn

    return register


def kinds() -> list[str]:
    return sorted(_KINDS)


class JobCancelled(Exception):
    """Raised inside a job by ``ctx.progress`` once someone asked to cancel it."""


class JobError(Exception):
    """A job failed for a reason its user can act on: stored as its bilingual error."""

    def __init__(self, vi: str, en: str, **detail: Any) -> None:
        super().__init__(en)
        self.vi, self.en, self.detail = vi, en, detail


@dataclass(frozen=True)
class JobState:
    id: str
    kind: str
    status: str
    progress: float
    message: str | None
    params: dict[str, Any]
    error: dict[str, Any] | None
    owner: str | None
    owner_role: str | None
    worker: str | None
    cancel_requested: bool
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    heartbeat_at: dt.datetime

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def public(self) -> dict[str, Any]:
        """The JSON a poller gets (the result itself is fetched separately: it may be large)."""
        return {
            "id": self.id, "kind": self.kind, "status": self.status,
            "progress": round(self.progress, 4), "message": self.message,
            "error": self.error, "owner": self.owner,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


class JobContext:
    """What a running job gets: its id, parameters, engine and the progress callback."""

    def __init__(self, engine: Engine, job_id: str, params: dict[str, Any],
                 min_interval_s: float = 0.25) -> None:
        self.engine, self.id, self.params = engine, job_id, params
        self._min_interval = min_interval_s
        self._last_write = 0.0
        self._last_fraction = -1.0

    def progress(self, fraction: float, message: str | None = None, force: bool = False) -> None:
        """Report FRACTION (0..1) done; raise JobCancelled if a cancel was asked for.

        Writes at most every ``min_interval_s`` unless FORCE (or the fraction reached 1), so a
        tight loop may call it freely."""
        fraction = min(1.0, max(0.0, float(fraction)))
        now = time.monotonic()
        if not force and fraction < 1.0 and now - self._last_write < self._min_interval:
            return
        self._last_write, self._last_fraction = now, fraction
        with self.engine.connect() as conn:
            cancel = conn.execute(text(
                "UPDATE job SET progress = GREATEST(progress, :f), "
                "message = COALESCE(:m, message), heartbeat_at = now() "
                "WHERE id = :id RETURNING cancel_requested"),
                {"f": fraction, "m": message, "id": self.id}).scalar()
            conn.commit()
        if cancel:
            raise JobCancelled(self.id)


class _Heartbeat:
    """Keeps a silent job's heartbeat fresh, so it is not mistaken for a dead worker's."""

    def __init__(self, engine: Engine, job_id: str, every_s: float) -> None:
        self._engine, self._id, self._every = engine, job_id, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"job-heartbeat-{job_id[:8]}",
                                        daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                with self._engine.connect() as conn:
                    conn.execute(text("UPDATE job SET heartbeat_at = now() WHERE id = :id "
                                      "AND status = 'running'"), {"id": self._id})
                    conn.commit()
            except Exception:  # noqa: BLE001 - a missed beat only risks a false "lost"
                log.warning("job %s: heartbeat failed", self._id, exc_info=True)


def worker_name() -> str:
    """Host and process id: which worker ran a job (shown to admins, used in logs)."""
    return f"{socket.gethostname()}:{os.getpid()}"


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            from antt.settings import get_settings

            _executor = ThreadPoolExecutor(max_workers=get_settings().job_threads,
                                           thread_name_prefix="antt-job")
        return _executor


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def create(conn: Connection, kind: str, params: dict[str, Any], owner: str | None = None,
           owner_role: str | None = None) -> str:
    """Insert a queued job row on CONN (the caller commits) and return its id."""
    if kind not in _KINDS:
        raise ValueError(f"unknown job kind {kind!r}; known: {', '.join(kinds())}")
    job_id = str(uuid.uuid4())
    conn.execute(text(
        "INSERT INTO job (id, kind, params, owner, owner_role, worker) "
        "VALUES (:id, :k, CAST(:p AS jsonb), :o, :r, :w)"),
        {"id": job_id, "k": kind, "p": _dumps(params), "o": owner, "r": owner_role,
         "w": worker_name()})
    return job_id


def submit(engine: Engine, kind: str, params: dict[str, Any], owner: str | None = None,
           owner_role: str | None = None) -> str:
    """Queue KIND(PARAMS) to run in this process's job pool; return the job id at once."""
    with engine.begin() as conn:
        job_id = create(conn, kind, params, owner, owner_role)
        prune(conn)
    _pool().submit(execute, engine, job_id)
    return job_id


def run_direct(engine: Engine, kind: str, params: dict[str, Any]) -> Any:
    """Run KIND(PARAMS) now, in the caller's thread, with no job row: the direct call."""
    return _KINDS[kind](_DirectContext(engine, params), params)


class _DirectContext(JobContext):
    """Context for a direct call: progress is not stored and there is nothing to cancel."""

    def __init__(self, engine: Engine, params: dict[str, Any]) -> None:
        super().__init__(engine, "direct", params)

    def progress(self, fraction: float, message: str | None = None, force: bool = False) -> None:
        return None


def execute(engine: Engine, job_id: str) -> str:
    """Run the queued job JOB_ID in this thread and store its outcome; return the status."""
    from antt.settings import get_settings

    with engine.connect() as conn:
        row = conn.execute(text(
            "UPDATE job SET status = 'running', started_at = now(), heartbeat_at = now(), "
            "worker = :w WHERE id = :id AND status = 'queued' AND NOT cancel_requested "
            "RETURNING kind, params"), {"id": job_id, "w": worker_name()}).one_or_none()
        if row is None:  # cancelled before it started, or taken already
            conn.execute(text("UPDATE job SET status = 'cancelled', finished_at = now() "
                              "WHERE id = :id AND status = 'queued'"), {"id": job_id})
            conn.commit()
            return "cancelled"
        conn.commit()
    kind, params = row
    from antt.db import job_engine

    ctx = JobContext(job_engine(engine), job_id, params)  # no API statement timeout for jobs
    status, result, error = "done", None, None
    try:
        with _Heartbeat(engine, job_id, get_settings().job_heartbeat_seconds):
            result = _KINDS[kind](ctx, params)
    except JobCancelled:
        status = "cancelled"
        error = {"vi": "Công việc đã bị hủy", "en": "The job was cancelled"}
    except JobError as exc:
        status, error = "failed", {"vi": exc.vi, "en": exc.en, **exc.detail}
    except Exception as exc:  # noqa: BLE001 - stored for the poller, and logged in full
        log.exception("job %s (%s) failed", job_id, kind)
        status = "failed"
        error = {"vi": f"Lỗi khi chạy công việc: {type(exc).__name__}",
                 "en": f"The job failed: {type(exc).__name__}: {exc}"}
    with engine.connect() as conn:
        conn.execute(text(
            "UPDATE job SET status = :s, result = CAST(:r AS jsonb), error = CAST(:e AS jsonb), "
            "progress = CASE WHEN :s = 'done' THEN 1 ELSE progress END, "
            "finished_at = now(), heartbeat_at = now() WHERE id = :id"),
            {"s": status, "r": None if result is None else _dumps(result),
             "e": None if error is None else _dumps(error), "id": job_id})
        conn.commit()
    return status


_COLUMNS = ("id, kind, status, progress, message, params, error, owner, owner_role, worker, "
            "cancel_requested, created_at, started_at, finished_at, heartbeat_at")


def _state(row: Any) -> JobState:
    return JobState(**{**row, "id": str(row["id"])})


def mark_lost(conn: Connection, stale_seconds: float) -> int:
    """Unfinished jobs whose worker stopped beating: failed, with the reason. Returns how many."""
    n = conn.execute(text(
        "UPDATE job SET status = 'failed', finished_at = now(), error = CAST(:e AS jsonb) "
        "WHERE status IN ('queued', 'running') "
        "AND heartbeat_at < now() - make_interval(secs => :s)"),
        {"s": stale_seconds, "e": _dumps({
            "vi": "Tiến trình chạy công việc đã dừng (máy chủ khởi động lại?); hãy chạy lại",
            "en": "The process running this job stopped (server restarted?); run it again",
            "reason": "lost"})}).rowcount
    return n


def get(engine: Engine, job_id: str) -> JobState | None:
    """The job's state as every worker sees it (a dead worker's job reads as failed)."""
    from antt.settings import get_settings

    try:
        uuid.UUID(job_id)
    except ValueError:
        return None
    with engine.connect() as conn:
        mark_lost(conn, get_settings().job_stale_seconds)
        conn.commit()
        row = conn.execute(text(f"SELECT {_COLUMNS} FROM job WHERE id = :id"),
                           {"id": job_id}).mappings().one_or_none()
    return None if row is None else _state(row)


def result(engine: Engine, job_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(text("SELECT result FROM job WHERE id = :id"),
                            {"id": job_id}).scalar_one_or_none()


def list_jobs(engine: Engine, owner: str | None, limit: int = 50) -> list[JobState]:
    """Newest first; OWNER None lists everyone's (admins)."""
    from antt.settings import get_settings

    with engine.connect() as conn:
        mark_lost(conn, get_settings().job_stale_seconds)
        conn.commit()
        rows = conn.execute(text(
            f"SELECT {_COLUMNS} FROM job WHERE (CAST(:o AS text) IS NULL OR owner = :o) "
            "ORDER BY created_at DESC LIMIT :n"), {"o": owner, "n": limit}).mappings().all()
    return [_state(r) for r in rows]


def cancel(engine: Engine, job_id: str) -> bool:
    """Ask for a cancel (seen by the running job at its next progress call). False if finished."""
    with engine.connect() as conn:
        n = conn.execute(text("UPDATE job SET cancel_requested = true WHERE id = :id "
                              "AND status IN ('queued', 'running')"), {"id": job_id}).rowcount
        conn.commit()
    return n > 0


def wait(engine: Engine, job_id: str, timeout_s: float = 60.0, poll_s: float = 0.05) -> JobState:
    """Poll until JOB_ID is finished (for the CLI and tests); TimeoutError after TIMEOUT_S."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = get(engine, job_id)
        if state is None:
            raise KeyError(job_id)
        if state.finished:
            return state
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {state.status} after {timeout_s} s")
        time.sleep(poll_s)


def prune(conn: Connection, keep_days: int = 14) -> int:
    """Finished jobs older than KEEP_DAYS go, so results do not pile up."""
    return conn.execute(text(
        "DELETE FROM job WHERE finished_at < now() - make_interval(days => :d)"),
        {"d": keep_days}).rowcount
