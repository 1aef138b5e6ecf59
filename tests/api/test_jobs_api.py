"""/jobs over HTTP: owners and admins see a job, everyone else gets 404; result and cancel."""

from __future__ import annotations

from jobkinds import STARTED  # registers the test job kinds

from antt import jobs
from antt.db import get_engine


def test_owner_polls_and_fetches_the_result_others_get_404(api_client, make_user):
    planner = make_user("planner", username="nguoi_lap")
    other = make_user("planner", username="nguoi_khac")
    admin = make_user("admin")
    job_id = jobs.submit(get_engine(), "test.count_communes", {"level": "commune"},
                         owner="nguoi_lap", owner_role="planner")
    jobs.wait(get_engine(), job_id, timeout_s=30)

    r = api_client.get(f"/jobs/{job_id}", headers=planner)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "done" and body["progress"] == 1
    assert {"rel": "result", "href": f"/jobs/{job_id}/result", "type": "application/json"} in body["links"]
    result = api_client.get(f"/jobs/{job_id}/result", headers=planner).json()
    assert result == {"level": "commune", "count": 0}
    assert api_client.get(f"/jobs/{job_id}", headers=admin).status_code == 200

    r = api_client.get(f"/jobs/{job_id}", headers=other)
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert api_client.get(f"/jobs/{job_id}").status_code == 401
    assert [j["id"] for j in api_client.get("/jobs", headers=planner).json()["jobs"]] == [job_id]
    assert api_client.get("/jobs", headers=other).json()["jobs"] == []


def test_failed_job_result_is_409_problem_with_the_error(api_client, make_user):
    headers = make_user("planner", username="p1")
    job_id = jobs.submit(get_engine(), "test.write_then_fail", {}, owner="p1")
    jobs.wait(get_engine(), job_id, timeout_s=30)
    r = api_client.get(f"/jobs/{job_id}/result", headers=headers)
    assert r.status_code == 409
    assert r.json()["detail_en"] == "The job failed: Population data is missing"


def test_cancel_over_http(api_client, make_user):
    headers = make_user("planner", username="p2")
    STARTED.clear()
    job_id = jobs.submit(get_engine(), "test.until_cancelled", {}, owner="p2")
    assert STARTED.wait(30)
    r = api_client.get(f"/jobs/{job_id}/result", headers=headers)
    assert r.status_code == 202 and r.headers["location"] == f"/jobs/{job_id}"
    assert api_client.delete(f"/jobs/{job_id}", headers=headers).status_code == 202
    assert jobs.wait(get_engine(), job_id, timeout_s=30).status == "cancelled"
    assert api_client.delete(f"/jobs/{job_id}", headers=headers).status_code == 409
