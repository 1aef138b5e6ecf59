"""kill -9 mid-import, mid-job and mid-burst of edits: after restart the database holds every
committed write and nothing half-written (row counts and checksums).

A cluster of this module's own (it is killed here), durable against a process crash
(synchronous_commit on; fsync off only saves disk flushes, which matter for an OS crash, not
for a killed process). Real processes: the importer CLI, `antt serve`, a server running a
slow job (tests/scale/fault_server.py). Every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from antt.cluster import ClusterError, EmbeddedCluster
from antt.db import make_engine

from .conftest import incident_feature, login, seed

FAULT_SERVER = str(Path(__file__).with_name("fault_server.py"))

# Everything an incident is, in id order: equal checksums mean equal tables.
CHECKSUM = """
SELECT count(*), md5(coalesce(string_agg(concat_ws('|', id, external_id, category_code,
       occurred_at, description, commune_id, version, ST_AsEWKT(geom)), ',' ORDER BY id), ''))
FROM incident"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[tuple[EmbeddedCluster, str]]:
    from antt.migrate import upgrade

    c = EmbeddedCluster(home=tmp_path_factory.mktemp("faults") / "pg", options="-c fsync=off")
    url = c.up()
    try:
        upgrade(url)
        seed(url, {"admin1": "admin", "police1": "police"})
        yield c, url
    finally:
        c.destroy()


def checksum(url: str) -> tuple[int, str]:
    eng = make_engine(url)
    try:
        with eng.connect() as conn:
            n, digest = conn.execute(text(CHECKSUM)).one()
    finally:
        eng.dispose()
    return int(n), digest


def sql(url: str, statement: str, **params):
    eng = make_engine(url)
    try:
        with eng.begin() as conn:
            result = conn.execute(text(statement), params)
            return result.all() if result.returns_rows else None
    finally:
        eng.dispose()


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (the postmaster's backends and helpers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def kill_postgres(c: EmbeddedCluster) -> None:
    """SIGKILL the postmaster and every backend at once (a crash: no backend may go on to
    finish a statement or a commit after the kill), then start again: crash recovery."""
    import psycopg2

    pid = int((c.datadir / "postmaster.pid").read_text().splitlines()[0])
    for victim in [pid, *_children(pid)]:
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_for(lambda: not c.running(), 30, "postmaster gone")
    deadline = time.monotonic() + 60
    while True:  # orphaned backends must be gone before the shared memory can be taken again
        try:
            c.up()
            return
        except (ClusterError, psycopg2.OperationalError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _csv(path: Path, n: int, tag: str) -> Path:
    lines = ["external_id,category,occurred_at,lon,lat"]
    lines += [f"{tag}-{i},crime/theft,2025-08-{1 + i % 28:02d} 10:00,{106.625 + (i % 97) * 0.0003:.5f},"
              f"{20.825 + (i // 97 % 97) * 0.0003:.5f}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _start_import(url: str, csv: Path, log: Path) -> subprocess.Popen:
    out = open(log, "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-m", "antt.cli", "import", "incidents", str(csv),
                             "--database-url", url], stdout=out, stderr=subprocess.STDOUT)


def _blocked_mid_write(url: str) -> bool:
    """The importer has written its incident rows and waits on data_change (locked by us)."""
    rows = sql(url, "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE c.relname = 'data_change' AND NOT l.granted")
    return rows[0][0] > 0


@pytest.mark.parametrize("victim", ["importer", "database"])
def test_kill_9_mid_import_leaves_nothing_half_written(cluster, tmp_path, victim):
    c, url = cluster
    before = checksum(url)
    csv = _csv(tmp_path / "incidents.csv", 5000, victim)
    # Hold the version counter's table: the import's INSERT into incident runs, then waits in
    # its statement trigger, with 5000 rows written and not committed. Then kill.
    eng = make_engine(url)
    holder = eng.connect()
    holder.execute(text("LOCK TABLE data_change IN EXCLUSIVE MODE"))
    proc = _start_import(url, csv, tmp_path / "import.log")
    try:
        wait_for(lambda: _blocked_mid_write(url) or proc.poll() is not None, 180, "import writing")
        assert proc.poll() is None, (tmp_path / "import.log").read_text()
        if victim == "importer":
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            holder.rollback()  # release: the orphaned statement ends, its transaction never commits
        else:
            # The crash comes first, while the import still waits on our lock: released
            # before it, the import would commit and (rightly) survive recovery.
            kill_postgres(c)
            holder.invalidate()
            proc.wait(60)  # the importer fails once its server is gone
    finally:
        holder.close()
        eng.dispose()
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    wait_for(lambda: sql(url, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                              "AND state <> 'idle' AND pid <> pg_backend_pid()")[0][0] == 0, 30, "quiet")
    assert checksum(url) == before  # not one of the 5000 rows
    # and the same file imports whole afterwards
    done = _start_import(url, csv, tmp_path / "again.log")
    assert done.wait(300) == 0, (tmp_path / "again.log").read_text()
    assert checksum(url)[0] == before[0] + 5000


def test_kill_9_api_server_and_database_during_a_burst_of_edits(cluster, servers):
    c, url = cluster
    env = {"DATABASE_URL": url}
    server = servers(env).wait_ready()
    with server.client() as client:
        token = login(client, "police1").json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    acknowledged: list[int] = []
    failures: list[int] = []
    stop = threading.Event()

    def burst(k: int) -> None:
        i = 0
        with httpx.Client(base_url=server.base, headers=headers, timeout=10) as client:
            while not stop.is_set():
                try:
                    r = client.post("/collections/incidents/items", json=incident_feature(k * 1000 + i))
                except httpx.HTTPError:
                    failures.append(-1)  # the server died under the request
                    time.sleep(0.05)
                    continue
                if r.status_code == 201:
                    acknowledged.append(r.json()["id"])
                else:
                    failures.append(r.status_code)
                i += 1

    def run_burst(seconds: float, kill) -> None:
        threads = [threading.Thread(target=burst, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        kill()
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(30)
        stop.clear()

    # 1. the API server killed (the whole process group) mid-burst, then started again
    run_burst(3.0, lambda: server.kill(signal.SIGKILL))
    assert acknowledged, "no write went through before the kill"
    server = servers(env).wait_ready()
    _check_edits(url, acknowledged)
    # 2. the database killed mid-burst; the SAME server answers normally once it is back
    first = len(acknowledged)
    run_burst(3.0, lambda: kill_postgres(c))
    assert len(acknowledged) > first
    with httpx.Client(base_url=server.base, headers=headers, timeout=10) as client:
        wait_for(lambda: client.post("/collections/incidents/items",
                                     json=incident_feature(99_999)).status_code == 201, 30, "writes again")
    _check_edits(url, acknowledged)
    assert set(failures) <= {-1, 503}, failures  # refused clearly, or cut by the kill


def _check_edits(url: str, acknowledged: list[int]) -> None:
    """Every acknowledged write is there; every incident written through the API has exactly
    its one 'create' audit row (same transaction), so none is half-written."""
    found = {r[0] for r in sql(url, "SELECT id FROM incident WHERE id = ANY(:ids)", ids=acknowledged)}
    assert found == set(acknowledged)
    orphans = sql(url, """
        SELECT i.id, count(a.id) FROM incident i
        LEFT JOIN audit_log a ON a.entity = 'incidents' AND a.action = 'create' AND a.entity_id = i.id::text
        WHERE i.external_id IS NULL AND i.description IS DISTINCT FROM 'slow job'
        GROUP BY i.id HAVING count(a.id) <> 1""")
    assert orphans == []
    dangling = sql(url, """
        SELECT a.entity_id FROM audit_log a WHERE a.entity = 'incidents' AND a.action = 'create'
        AND NOT EXISTS (SELECT 1 FROM incident i WHERE i.id::text = a.entity_id)""")
    assert dangling == []


def test_kill_9_during_a_long_job(cluster, servers):
    c, url = cluster
    before = checksum(url)
    env = {"DATABASE_URL": url, "ANTT_JOB_STALE_SECONDS": "2", "ANTT_JOB_HEARTBEAT_SECONDS": "0.5"}
    runner = servers(env, command=[sys.executable, FAULT_SERVER, "{port}"]).wait_ready()
    with runner.client() as client:
        client.headers["Authorization"] = f"Bearer {login(client, 'admin1').json()['access_token']}"
        started = client.post("/test/slow-job?rows=400")
        assert started.status_code == 202, started.text
        job = started.json()["id"]
        wait_for(lambda: client.get(f"/jobs/{job}").json()["progress"] >= 0.1, 60, "job half-way")
        progress = client.get(f"/jobs/{job}").json()
        assert progress["status"] == "running" and progress["progress"] < 1
    runner.kill(signal.SIGKILL)
    # another worker, after the restart: the job reads as lost, and none of its rows exist
    server = servers(env).wait_ready()
    with server.client() as client:
        client.headers["Authorization"] = f"Bearer {login(client, 'admin1').json()['access_token']}"
        state = wait_for(lambda: (s := client.get(f"/jobs/{job}").json())["status"] != "running" and s,
                         30, "job marked lost")
    assert state["status"] == "failed" and state["error"]["reason"] == "lost"
    assert checksum(url) == before
    assert sql(url, "SELECT count(*) FROM incident WHERE description = 'slow job'")[0][0] == 0
