"""Primary + streaming replica + two workers on loopback, and what happens when either database
goes away. Everything real: a throwaway cluster of this module's own (not the session's: it is
stopped and restarted here), a replica made by `pg_basebackup` (antt.cluster.EmbeddedReplica),
two `antt serve` processes on free ports. Every wait is bounded.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from antt.cluster import EmbeddedCluster, EmbeddedReplica
from antt.db import make_engine

from .conftest import incident_feature as _incident
from .conftest import login, seed

LIMIT = 4
TILE = "/collections/incident_hexagons/tiles/WebMercatorQuad/10/815/451"  # holds the commune


@pytest.fixture(scope="module")
def topology(tmp_path_factory) -> Iterator[dict]:
    """A primary (migrated, seeded) and its streaming replica."""
    from antt.migrate import upgrade

    root: Path = tmp_path_factory.mktemp("replicated")
    primary = EmbeddedCluster(home=root / "primary", fast=True)
    url = primary.up()
    replica = EmbeddedReplica(home=root / "replica", fast=True, primary=primary)
    try:
        upgrade(url)
        seed(url, {"canh_sat": "police", "xem": "viewer", "doan": "viewer"})
        read_url = replica.up()
        yield {"primary": primary, "replica": replica, "url": url, "read_url": read_url, "root": root}
    finally:
        replica.destroy()
        primary.destroy()


@pytest.fixture(autouse=True)
def _no_failed_logins(topology) -> None:
    """Each test starts with no failed login on record (they all log in from 127.0.0.1)."""
    eng = make_engine(topology["url"])
    with eng.begin() as conn:
        conn.execute(text("DELETE FROM login_failure"))
    eng.dispose()


def _env(topology: dict, **extra: str) -> dict[str, str]:
    return {"DATABASE_URL": topology["url"], "READ_DATABASE_URL": topology["read_url"],
            "ANTT_REPLICA_CHECK_S": "0.2", "ANTT_REPLICA_DOWN_S": "1", "ANTT_REPLICA_MAX_LAG_S": "5",
            "ANTT_LOGIN_RATE_LIMIT": str(LIMIT), **extra}


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")


def test_write_on_one_worker_read_on_the_other(topology, servers):
    a, b = servers(_env(topology)), servers(_env(topology))
    a.wait_ready(), b.wait_ready()
    with a.client() as ca, b.client() as cb, b.client() as other:
        # readiness: both pools reached, the replica streaming with a small lag
        for c in (ca, cb):
            ready = c.get("/readyz")
            assert ready.status_code == 200, ready.text
            body = ready.json()
            assert body["primary"]["reachable"] and not body["primary"]["in_recovery"]
            assert body["primary"]["schema"] == body["primary"]["schema_head"]
            [rep] = body["replicas"]
            assert rep["fit"] and rep["lag_s"] is not None and rep["lag_s"] < 5
            assert body["reads_from"] == "replica"
        # the police account writes through A; its session (token and antt_lsn cookie) reads
        # through B at once, every time: never older than its own write
        token = login(ca, "canh_sat").json()["access_token"]
        cb.headers["Authorization"] = ca.headers["Authorization"] = f"Bearer {token}"
        sources = Counter()
        for i in range(15):
            r = ca.post("/collections/incidents/items", json=_incident(i))
            assert r.status_code == 201, r.text
            assert r.headers["x-antt-lsn"] and "antt_lsn" in r.headers["set-cookie"]
            cb.cookies.set("antt_lsn", ca.cookies["antt_lsn"])
            page = cb.get("/collections/incidents/items?limit=1")
            assert page.status_code == 200
            assert page.json()["numberMatched"] == i + 1, (i, page.headers.get("x-antt-database"))
            sources[page.headers["x-antt-database"]] += 1
        # another client, with no write of its own, reads B's replica and sees them after the lag
        viewer = {"Authorization": f"Bearer {login(cb, 'xem').json()['access_token']}"}
        items = "/collections/incident_counts_commune/items"

        def count_on_replica():
            r = other.get(items, headers=viewer)
            return (r.headers["x-antt-database"] == "replica"
                    and r.json()["features"][0]["properties"]["count"] == 15)

        _wait(count_on_replica, 10, "the replica shows the 15 incidents")
        tile = other.get(TILE, headers=viewer)
        assert tile.status_code == 200 and tile.headers["x-antt-database"] == "replica"
        # the login limit is one across both workers
        for i in range(LIMIT):
            assert login([ca, cb][i % 2], "doan", "sai").status_code == 401
        for c in (ca, cb):
            assert login(c, "doan").status_code == 429
    # (which database answered the writer's reads is not fixed: the replica when it had replayed
    # the write already, else the primary)
    assert sum(sources.values()) == 15 and set(sources) <= {"primary", "replica"}


def test_replica_stopped_mid_load_then_back(topology, servers):
    """Reads fall back to the primary without a single error, and return to the replica."""
    replica: EmbeddedReplica = topology["replica"]
    # which database answers each tile is the point here: no in-process memo in between
    a = servers(_env(topology, ANTT_TILE_MEMO_MB="0")).wait_ready()
    with a.client() as c:
        c.headers["Authorization"] = f"Bearer {login(c, 'xem').json()['access_token']}"
        _wait(lambda: c.get(TILE).headers.get("x-antt-database") == "replica", 10, "reads on the replica")
        statuses: Counter = Counter()
        sources: Counter = Counter()
        failures: list[str] = []  # what any answer >= 400 said, for the assertion message
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(base_url=a.base, timeout=30, headers=c.headers) as mine:
                while not stop.is_set():
                    for url in (TILE, "/collections/communes/items?limit=1",
                                "/collections/incident_counts_commune/items"):
                        r = mine.get(url)
                        statuses[r.status_code] += 1
                        sources[r.headers.get("x-antt-database")] += 1
                        if r.status_code >= 400:
                            failures.append(f"{url} -> {r.status_code} {r.text[:300]}")

        threads = [threading.Thread(target=load) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            time.sleep(1.0)
            replica._run([replica._bin("pg_ctl"), "-D", str(replica.datadir), "-m", "immediate",
                          "-w", "stop"])
            time.sleep(2.0)
            down = c.get("/readyz").json()
            assert not down["replicas"][0]["fit"] and down["reads_from"] == "primary"
            assert c.get(TILE).headers["x-antt-database"] == "primary"
            replica.up()
            _wait(lambda: c.get(TILE).headers.get("x-antt-database") == "replica", 20,
                  "reads back on the replica")
        finally:
            stop.set()
            for t in threads:
                t.join(30)
    # not one error while the replica went away (else: the answers, and the server's log)
    if failures:
        print("\n".join(failures), "\n-- server log --\n", a.log.read_text()[-6000:])
    assert set(statuses) <= {200, 204}, (statuses, failures)
    assert sources["primary"] > 0 and sources["replica"] > 0


def test_primary_stopped_then_restarted(topology, servers):
    """While the primary is down: writes get 503 problem+json, reads go on from the replica;
    after it is back, the same workers (no restart) write again."""
    primary: EmbeddedCluster = topology["primary"]
    a = servers(_env(topology)).wait_ready()
    with a.client() as c:
        c.headers["Authorization"] = f"Bearer {login(c, 'canh_sat').json()['access_token']}"
        assert c.post("/collections/incidents/items", json=_incident(100)).status_code == 201
        primary.down()
        try:
            r = c.post("/collections/incidents/items", json=_incident(101))
            assert r.status_code == 503, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.headers["retry-after"] and r.json()["detail_vi"] and r.json()["detail_en"]
            ready = c.get("/readyz")
            assert ready.status_code == 503
            assert ready.headers["content-type"].startswith("application/problem+json")
            assert ready.json()["primary"]["reachable"] is False
            c.cookies.clear()  # no write position to wait for: the replica may answer
            read = c.get("/collections/communes/items?limit=1")
            assert read.status_code == 200 and read.headers["x-antt-database"] == "replica"
        finally:
            primary.up()
        _wait(lambda: c.post("/collections/incidents/items", json=_incident(102)).status_code == 201,
              15, "writes work again")
        assert c.get("/readyz").status_code == 200
