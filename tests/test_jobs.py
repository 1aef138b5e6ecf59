"""antt.jobs: state in PostgreSQL, progress, results, failures, cancel, and dead workers."""

from __future__ import annotations

import pytest
from jobkinds import STARTED  # noqa: E402 - registers the test job kinds
from sqlalchemy import text

from antt import jobs
from antt.db import make_engine


def test_job_result_equals_the_direct_call_and_progress_reaches_one(haiphong_engine):
    job_id = jobs.submit(haiphong_engine, "test.count_communes", {"level": "commune"}, owner="a")
    state = jobs.wait(haiphong_engine, job_id, timeout_s=30)
    assert state.status == "done" and state.progress == 1.0
    assert state.message == "bước 4/4 / step 4/4"
    direct = jobs.run_direct(haiphong_engine, "test.count_communes", {"level": "commune"})
    assert jobs.result(haiphong_engine, job_id) == direct == {"level": "commune", "count": 114}


def test_another_worker_sees_the_same_state(haiphong_engine, haiphong_url):
    """A second engine (another process's pool) reads the job the first one ran."""
    job_id = jobs.submit(haiphong_engine, "test.count_communes", {"level": "commune"}, owner="a")
    jobs.wait(haiphong_engine, job_id, timeout_s=30)
    other = make_engine(haiphong_url)
    try:
        state = jobs.get(other, job_id)
        assert state.status == "done"
        assert jobs.result(other, job_id)["count"] == 114
    finally:
        other.dispose()


def test_a_failing_job_writes_nothing_and_keeps_its_bilingual_error(engine):
    job_id = jobs.submit(engine, "test.write_then_fail", {}, owner="a")
    state = jobs.wait(engine, job_id, timeout_s=30)
    assert state.status == "failed"
    assert state.error == {"vi": "Thiếu dữ liệu dân số", "en": "Population data is missing",
                           "field": "population"}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM demo_manifest WHERE key = 'half'")
                            ).scalar_one() == 0


def test_cancel_stops_a_running_job(engine):
    STARTED.clear()
    job_id = jobs.submit(engine, "test.until_cancelled", {}, owner="a")
    assert STARTED.wait(30)
    assert jobs.cancel(engine, job_id)
    state = jobs.wait(engine, job_id, timeout_s=30)
    assert state.status == "cancelled"
    assert not jobs.cancel(engine, job_id)  # finished: nothing to cancel


def test_a_dead_workers_job_reads_as_lost_not_running(engine, monkeypatch):
    """A row left 'running' by a killed process is failed with reason 'lost' once stale."""
    with engine.begin() as conn:
        job_id = jobs.create(conn, "test.count_communes", {"level": "commune"}, owner="a")
        conn.execute(text("UPDATE job SET status = 'running', heartbeat_at = now() - interval '2 minutes' "
                          "WHERE id = :id"), {"id": job_id})
        fresh = jobs.create(conn, "test.count_communes", {"level": "commune"}, owner="a")
        conn.execute(text("UPDATE job SET status = 'running' WHERE id = :id"), {"id": fresh})
    state = jobs.get(engine, job_id)
    assert state.status == "failed" and state.error["reason"] == "lost"
    assert jobs.get(engine, fresh).status == "running"  # its heartbeat is fresh


def test_unknown_kind_and_bad_id(engine):
    with pytest.raises(ValueError, match="unknown job kind"), engine.begin() as conn:
        jobs.create(conn, "no.such.kind", {})
    assert jobs.get(engine, "not-a-uuid") is None
    assert jobs.get(engine, "00000000-0000-0000-0000-000000000000") is None


def test_finished_jobs_older_than_the_retention_are_pruned(engine):
    with engine.begin() as conn:
        old = jobs.create(conn, "test.count_communes", {"level": "commune"})
        conn.execute(text("UPDATE job SET status = 'done', finished_at = now() - interval '30 days' "
                          "WHERE id = :id"), {"id": old})
        new = jobs.create(conn, "test.count_communes", {"level": "commune"})
        assert jobs.prune(conn) == 1
    assert jobs.get(engine, old) is None and jobs.get(engine, new) is not None
