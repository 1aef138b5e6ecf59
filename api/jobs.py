"""``/jobs``: poll, fetch and cancel long work (``antt.jobs``), from any worker.

A job is visible to the account that started it and to admins; to anyone else it does not
exist (404, so an id cannot be probed). Endpoints that start jobs live with their feature
(for example the planner) and answer ``202 Accepted`` with ``Location: /jobs/{id}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse, Response

from antt import jobs
from antt.db import get_engine
from api.deps import Principal, get_principal
from api.guards import reject_nul
from api.problems import Problem

router = APIRouter(prefix="/jobs", tags=["jobs"], dependencies=[Depends(reject_nul)])

JOB_ID = Path(..., description="Mã công việc (UUID) / job id")


def accepted(job_id: str) -> JSONResponse:
    """The answer of an endpoint that started a job: 202, where to poll, and the first state."""
    state = jobs.get(get_engine(), job_id)
    body = state.public() if state else {"id": job_id}
    body["links"] = _links(job_id)
    return JSONResponse(body, status_code=202, headers={"Location": f"/jobs/{job_id}"})


def _links(job_id: str) -> list[dict[str, str]]:
    return [{"rel": "self", "href": f"/jobs/{job_id}", "type": "application/json"},
            {"rel": "result", "href": f"/jobs/{job_id}/result", "type": "application/json"}]


def _visible(job_id: str, principal: Principal) -> jobs.JobState:
    state = jobs.get(get_engine(), job_id)
    if state is None or (principal.role != "admin" and state.owner != principal.username):
        raise Problem(404, f"Không có công việc {job_id}", f"No job {job_id}")
    return state


@router.get("", summary="Công việc của tôi / my jobs")
def list_my_jobs(limit: int = Query(50, ge=1, le=500),
                 principal: Principal = Depends(get_principal)) -> dict[str, Any]:
    owner = None if principal.role == "admin" else principal.username
    states = jobs.list_jobs(get_engine(), owner, limit)
    return {"jobs": [{**s.public(), "links": _links(s.id)} for s in states]}


@router.get("/{job_id}", summary="Tình trạng công việc / job status and progress")
def job_status(job_id: str = JOB_ID, principal: Principal = Depends(get_principal)) -> dict[str, Any]:
    state = _visible(job_id, principal)
    return {**state.public(), "links": _links(job_id)}


@router.get("/{job_id}/result", summary="Kết quả công việc / job result")
def job_result(job_id: str = JOB_ID, principal: Principal = Depends(get_principal)) -> Response:
    state = _visible(job_id, principal)
    if state.status == "failed":
        err = state.error or {}
        raise Problem(409, f"Công việc thất bại: {err.get('vi', '')}",
                      f"The job failed: {err.get('en', '')}", job=state.public())
    if state.status == "cancelled":
        raise Problem(409, "Công việc đã bị hủy", "The job was cancelled", job=state.public())
    if not state.finished:
        return JSONResponse({**state.public(), "links": _links(job_id)}, status_code=202,
                            headers={"Retry-After": "1", "Location": f"/jobs/{job_id}"})
    return JSONResponse(jobs.result(get_engine(), job_id))


@router.delete("/{job_id}", status_code=202, summary="Hủy công việc / cancel a job")
def cancel_job(job_id: str = JOB_ID, principal: Principal = Depends(get_principal)) -> dict[str, Any]:
    state = _visible(job_id, principal)
    if state.finished:
        raise Problem(409, f"Công việc đã kết thúc ({state.status})",
                      f"The job has already finished ({state.status})")
    jobs.cancel(get_engine(), job_id)
    return {**jobs.get(get_engine(), job_id).public(), "links": _links(job_id)}
