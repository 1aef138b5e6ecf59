"""A real API server (uvicorn, the app of api.app) plus one slow job kind, for the fault tests:
`python tests/scale/fault_server.py PORT`. The job writes ROWS incidents one by one in ONE
transaction, reporting progress after each, so a kill -9 lands in the middle of it.

Why a launcher of its own: no endpoint of the product starts a generic job (features that
start jobs own their endpoints); this adds `POST /test/slow-job` (admin) and nothing else.
"""

from __future__ import annotations

import sys
import time

import uvicorn
from fastapi import Depends
from sqlalchemy import text

from antt import jobs
from antt.db import get_engine
from api.app import create_app
from api.deps import require_roles
from api.jobs import accepted


@jobs.job_kind("faults.slow_write")
def slow_write(ctx: jobs.JobContext, params: dict) -> dict:
    n = int(params["rows"])
    with ctx.engine.begin() as conn:
        for i in range(n):
            conn.execute(text(
                "INSERT INTO incident (category_code, occurred_at, description, geom) VALUES "
                "('crime/theft', '2025-08-20T10:00+07', 'slow job', "
                "ST_SetSRID(ST_MakePoint(106.63 + :d, 20.83), 4326))"), {"d": (i % 30) * 0.001})
            ctx.progress((i + 1) / n, f"{i + 1}/{n}", force=True)
            time.sleep(float(params.get("pause_s", 0.05)))
    return {"written": n}


def make_app():
    app = create_app()

    @app.post("/test/slow-job", status_code=202)
    def start(rows: int = 200, principal=Depends(require_roles("admin"))):
        return accepted(jobs.submit(get_engine(), "faults.slow_write", {"rows": rows},
                                    owner=principal.username, owner_role=principal.role))

    return app


if __name__ == "__main__":
    uvicorn.run(make_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="info")
