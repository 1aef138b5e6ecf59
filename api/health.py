"""Liveness (`/healthz`) and readiness (`/readyz`) of one worker.

`/healthz` answers 200 while the process serves HTTP, whatever the database does (a load
balancer must not restart workers because PostgreSQL is restarting: their pools reconnect on
their own); it adds the primary's versions when it answers.

`/readyz` says whether this worker can do its job: which database each pool reaches (the
primary; every replica with its replay position and lag), the server versions, and whether
the schema is at the migrations' head. 200 when the primary answers at the head revision;
503 problem+json otherwise (a replica down is reported, not a failure: reads fall back).
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from antt import __version__
from antt.db import check_postgis, get_engine
from api.problems import problem_response
from api.readroute import get_router

router = APIRouter(tags=["system"])


@lru_cache
def migrations_head() -> str | None:
    from alembic.script import ScriptDirectory

    from antt.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


def _error(exc: BaseException) -> str:
    msg = str(getattr(exc, "orig", exc)).strip()
    return msg.splitlines()[0] if msg else type(exc).__name__


@router.get("/healthz", summary="Tiến trình còn sống / liveness")
def healthz() -> dict[str, object]:
    body: dict[str, object] = {"status": "ok", "version": __version__, "pid": os.getpid()}
    try:
        body.update(check_postgis(get_engine()))
    except Exception as exc:  # noqa: BLE001 - liveness does not depend on the database
        body["database"] = f"unreachable: {_error(exc)}"
    return body


def _primary() -> dict[str, Any]:
    info: dict[str, Any] = {}
    try:
        with get_engine().connect() as conn:
            row = conn.execute(text(
                "SELECT current_setting('server_version'), postgis_lib_version(), "
                "pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN NULL "
                "ELSE pg_current_wal_lsn()::text END, "
                "(SELECT version_num FROM alembic_version LIMIT 1)")).one()
    except DBAPIError as exc:
        return {"reachable": False, "error": _error(exc)}
    info.update(reachable=True, postgresql=row[0], postgis=row[1], in_recovery=row[2],
                wal_lsn=row[3], schema=row[4], schema_head=migrations_head())
    return info


@router.get("/readyz", summary="Sẵn sàng phục vụ / readiness (databases, replicas, lag)",
            responses={503: {"description": "Chưa sẵn sàng / not ready",
                             "content": {"application/problem+json": {}}}})
def readyz() -> JSONResponse:
    primary = _primary()
    replicas = get_router().status()
    body = {"pid": os.getpid(), "version": __version__, "primary": primary, "replicas": replicas,
            "reads_from": "replica" if any(r["fit"] for r in replicas) else "primary"}
    problems = []
    if not primary["reachable"]:
        problems.append(("cơ sở dữ liệu chính không truy cập được", "the primary cannot be reached"))
    elif primary["in_recovery"]:
        problems.append(("cơ sở dữ liệu chính đang ở chế độ chỉ đọc (standby)",
                         "the primary is a read-only standby"))
    elif primary["schema"] != primary["schema_head"]:
        at, head = primary["schema"], primary["schema_head"]
        problems.append((f"lược đồ ở {at}, cần {head}: chạy `antt migrate`",
                         f"schema at {at}, head is {head}: run `antt migrate`"))
    if problems:
        vi, en = "; ".join(p[0] for p in problems), "; ".join(p[1] for p in problems)
        return problem_response(503, f"Chưa sẵn sàng: {vi}", f"Not ready: {en}",
                                headers={"Retry-After": "2"}, instance="/readyz", **body)
    return JSONResponse({"status": "ready", **body})
