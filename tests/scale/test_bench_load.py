"""bench/bench_load.py's machinery, for ~3 s with a handful of clients: the figures it prints
are counted honestly (every request counted once, no error, ordered percentiles, the replica's
share), its edits are removed afterwards, and the replica it makes is gone at the end."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from sqlalchemy import text

from antt.db import make_engine
from bench import bench_load
from bench.bench_tiles import SECRET

SECONDS = 3.0
CLIENTS = 6
# More edits than the bench's 5 %, so a 3 s run surely makes some to clean up.
SHARES = (("edit", 0.2), ("tile", 0.3), ("items", 0.3), ("aggregate", 0.2))


@pytest.fixture
def demo_url(haiphong_url: str, tmp_path: Path, monkeypatch) -> str:
    """Hải Phòng with a small demo (villages, models, incidents); the bench's signing key and a
    home of the test's own for the servers it starts (restored afterwards)."""
    from antt.settings import get_settings
    from data.demo import build_haiphong_demo

    monkeypatch.setenv("ANTT_SECRET_KEY", SECRET)
    monkeypatch.setenv("ANTT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ANTT_BENCH_READ_DATABASE_URL", raising=False)
    build_haiphong_demo(haiphong_url, incidents=300, villages_per_commune=2)
    yield haiphong_url
    get_settings.cache_clear()


def _mix(url: str) -> bench_load.Mix:
    return dataclasses.replace(bench_load.make_mix(url), shares=SHARES)


def _check(f: bench_load.Figures) -> None:
    assert f.requests > 0 and f.requests == sum(f.statuses.values()) == sum(f.databases.values())
    assert f.requests == sum(n for n, _p50, _p95 in f.by_kind.values())
    assert f.errors == 0, f.error_lines
    assert 0 < f.p50_ms <= f.p95_ms <= f.p99_ms
    assert f.throughput == pytest.approx(f.requests / f.elapsed)
    assert SECONDS <= f.elapsed < SECONDS + 60
    assert set(f.by_kind) == {"edit", "tile", "items", "aggregate"}
    assert f.created and len(f.created) == sum(n for (kind, _s), n in f.statuses.items() if kind == "edit")
    assert f.generator_cpu > 0
    assert f.memory.server and all(mb > 0 for mb in f.memory.server.values())
    assert f.memory.postgres["primary"]["processes"] > 1


def test_one_worker_figures_and_clean_up(demo_url):
    mix = _mix(demo_url)
    before = bench_load.incident_count(demo_url)
    f = bench_load.run_configuration("1 worker", demo_url, mix, workers=1, read_url=None,
                                     clients=CLIENTS, seconds=SECONDS, processes=2)
    _check(f)
    assert list(f.memory.server_role.values()) == ["parent"]  # --workers 1: one process serves
    assert set(f.databases) == {"primary"}
    assert bench_load.incident_count(demo_url) == before + len(f.created)
    assert bench_load.remove_edits(demo_url, mix, f.created) == len(f.created)
    assert bench_load.incident_count(demo_url) == before


def test_two_workers_and_replica_made_and_removed(demo_url):
    mix = _mix(demo_url)
    before = bench_load.incident_count(demo_url)
    with bench_load.replica_of(demo_url) as read:
        # the suite's own cluster (loopback, superuser, <home>/pgdata) can always be replicated:
        # no replica here is a failure of the bench, not a reason to skip
        assert read.url is not None, read.how
        replica_home = read.home
        assert replica_home is not None and replica_home.exists()
        f = bench_load.run_configuration("2 workers + replica", demo_url, mix, workers=2,
                                         read_url=read.url, clients=CLIENTS, seconds=SECONDS, processes=1)
    _check(f)
    roles = sorted(f.memory.server_role.values())
    assert roles.count("parent") == 1 and roles.count("worker") == 2, roles
    assert f.databases["replica"] > 0 and 0 < f.replica_share < 1  # edits always on the primary
    assert "replica" in f.memory.postgres
    assert bench_load.remove_edits(demo_url, mix, f.created) == len(f.created)
    assert bench_load.incident_count(demo_url) == before
    # the replica and its slot are gone
    assert not replica_home.exists()
    eng = make_engine(demo_url)
    with eng.connect() as conn:
        slots = conn.execute(text("SELECT slot_name FROM pg_replication_slots "
                                  "WHERE slot_name LIKE 'antt_bench_%'")).scalars().all()
    eng.dispose()
    assert slots == []
