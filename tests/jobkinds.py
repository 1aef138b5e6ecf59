"""Job kinds for the tests of antt.jobs and /jobs (a module, so both test files share them)."""

from __future__ import annotations

import threading

from sqlalchemy import text

from antt import jobs

STARTED = threading.Event()


@jobs.job_kind("test.count_communes")
def _count(ctx: jobs.JobContext, params: dict) -> dict:
    with ctx.engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM admin_unit WHERE level = :l"),
                         {"l": params["level"]}).scalar_one()
    for i in range(4):
        ctx.progress((i + 1) / 4, f"bước {i + 1}/4 / step {i + 1}/4", force=True)
    return {"level": params["level"], "count": n}


@jobs.job_kind("test.write_then_fail")
def _write_then_fail(ctx: jobs.JobContext, params: dict) -> None:
    with ctx.engine.begin() as conn:
        conn.execute(text("INSERT INTO demo_manifest (key, value) VALUES ('half', '{}')"))
        raise jobs.JobError("Thiếu dữ liệu dân số", "Population data is missing", field="population")


@jobs.job_kind("test.until_cancelled")
def _until_cancelled(ctx: jobs.JobContext, params: dict) -> None:
    STARTED.set()
    while True:
        ctx.progress(0.5, force=True)
        threading.Event().wait(0.02)
