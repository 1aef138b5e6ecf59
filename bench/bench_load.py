"""Load (issue 12): 200 concurrent clients for 60 s, a mix of tiles, items, aggregates and
edits, against 1 worker and against 2 workers + a streaming replica; the ratio is printed.

Data: ANTT_BENCH_DATABASE_URL when set (meant: the national demo, 34 provinces, 3,321
communes, ~1M incidents), else bench_tiles.bench_database() (Hải Phòng + demo in a throwaway
cluster). What the figures were measured on (provinces, communes, villages, incidents) is
printed first, and flagged when it is not the national data.

Replica: ANTT_BENCH_READ_DATABASE_URL when set; else a streaming replica of the benched
database made with the project's own antt.cluster.EmbeddedReplica (pg_basebackup, its own
replication slot) when that database is a PostgreSQL cluster on this machine we can drive
(loopback, superuser, data directory ``<home>/pgdata`` as the embedded clusters have);
removed afterwards, slot included. Otherwise the second configuration is skipped and the
reason printed.

Servers: uvicorn (bench_tiles.our_server) with `--workers 1`, then `--workers 2` and
READ_DATABASE_URL, on loopback, shared tile cache on (ANTT_BENCH_TILE_CACHE_MB, default 256)
and the result cache as the server defaults it (ANTT_BENCH_RESULT_CACHE_MB, default 256)
and emptied before each configuration so neither starts warm.

Load generator: ANTT_BENCH_LOAD_PROCESSES separate processes (default 2; spawned, never the
bench's own process) each running its share of the clients on asyncio + httpx, every client
with its own connection and cookie jar (a writer's read-your-writes cookie stays its own).
Why not wrk: it would add a system package and a Lua script for POST bodies and per-request
accounts, and it cannot read the X-Antt-Database header per request; a Python generator on a
2-core machine, however, takes CPU from the server it measures, so its CPU time (and the
server's) is printed next to the throughput, with the core count and load average before and
after. On 2 cores the server workers, PostgreSQL (primary and replica) and the generator share
the same cores: a second worker cannot show a scale-out gain there, and the output says so.

Mix per request: 45 % vector tiles (incident_hexagons and communes, z8-14, at a random
commune), 30 % feature pages with a bbox (incidents as police: exact points, audited; models,
villages, communes as a viewer), 20 % aggregates (incident counts per commune and village,
hexagons), 5 % edits (POST an incident as police, to the primary). Every incident the bench
inserted is deleted at the end (by the ids answered and by a marker in its description), and
the incident count is checked against the one before. Audit rows of the edits and the
bench-viewer / bench-police accounts stay, as with the other benches.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import math
import multiprocessing
import os
import queue
import random
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench.bench_features import Call, LoadResult, load_test
from bench.bench_tiles import (
    _engine,
    bench_database,
    child_pids,
    free_port,
    load_average,
    our_server,
    pct,
    peak_rss_mb,
    proc_status_mb,
    server_log,
    token_for,
)

CLIENTS = 200
SECONDS = 60.0
PROCESSES = 2
RESULT_CACHE_MB = 256.0  # the server's default (antt/settings.py): aggregate pages are cached
TILE_CACHE_MB = 256.0
EDIT_SHARE = 0.05
SHARES = (("edit", EDIT_SHARE), ("tile", 0.45), ("items", 0.30), ("aggregate", 0.20))
MARKER_PREFIX = "antt-bench-load"


# --- the request mix -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Mix:
    """Everything a generator process needs to build requests (picklable)."""

    points: tuple[tuple[float, float], ...]  # a point inside each sampled commune
    viewer: dict[str, str]
    police: dict[str, str]
    marker: str  # description of every incident the bench inserts
    occurred_at: str
    shares: tuple[tuple[str, float], ...] = SHARES


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    return (int((lon + 180) / 360 * n),
            int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n))


def _bbox(lon: float, lat: float, half: float) -> str:
    return f"{lon - half:.4f},{lat - half:.4f},{lon + half:.4f},{lat + half:.4f}"


def next_call(mix: Mix, rng: random.Random) -> Call:
    """One request of the mix, at a random commune of the data."""
    lon, lat = rng.choice(mix.points)
    r, kind = rng.random(), mix.shares[-1][0]
    for name, share in mix.shares:
        if r < share:
            kind = name
            break
        r -= share
    if kind == "edit":
        body = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {"category_code": "crime/theft", "occurred_at": mix.occurred_at,
                               "description": mix.marker}}
        return Call("/collections/incidents/items", "edit", "POST", body, mix.police)
    small, mid = _bbox(lon, lat, 0.025), _bbox(lon, lat, 0.15)
    if kind == "tile":
        z = rng.randint(8, 14)
        x, y = tile_of(lon, lat, z)
        layer = rng.choice(("incident_hexagons", "communes"))
        return Call(f"/collections/{layer}/tiles/WebMercatorQuad/{z}/{x}/{y}", "tile", headers=mix.viewer)
    if kind == "items":
        path, headers = rng.choice((
            (f"/collections/incidents/items?limit=100&bbox={small}", mix.police),
            (f"/collections/models/items?limit=100&bbox={small}", mix.viewer),
            (f"/collections/villages/items?limit=50&bbox={small}&simplify=20", mix.viewer),
            (f"/collections/communes/items?limit=10&bbox={mid}&simplify=50", mix.viewer),
        ))
        return Call(path, "items", headers=headers)
    path = rng.choice((
        f"/collections/incident_counts_commune/items?limit=50&bbox={mid}&simplify=50",
        f"/collections/incident_counts_village/items?limit=100&bbox={small}&simplify=20",
        f"/collections/incident_hexagons/items?limit=200&bbox={small}",
    ))
    return Call(path, "aggregate", headers=mix.viewer)


def _next_call(mix: Mix):
    """next_call bound to a mix, picklable for the spawned generator processes."""
    return functools.partial(next_call, mix)


# --- the data ------------------------------------------------------------------------------------

def data_summary(url: str) -> dict[str, object]:
    with _engine(url).connect() as conn:
        row = conn.execute(text("""
            SELECT (SELECT count(*) FROM admin_unit WHERE level = 'province' AND valid_to IS NULL),
                   (SELECT count(*) FROM admin_unit WHERE level = 'commune' AND valid_to IS NULL),
                   (SELECT count(*) FROM admin_unit WHERE level = 'village' AND valid_to IS NULL),
                   (SELECT count(*) FROM incident),
                   (SELECT min(occurred_at)::date::text || '..' || max(occurred_at)::date::text
                    FROM incident)""")).one()
    keys = ("provinces", "communes", "villages", "incidents", "dates")
    return dict(zip(keys, row, strict=True))


def describe(summary: dict[str, object]) -> str:
    national = summary["communes"] >= 3000
    return (f"{summary['provinces']} provinces, {summary['communes']:,} communes, "
            f"{summary['villages']:,} villages, {summary['incidents']:,} incidents ({summary['dates']}) — "
            + ("national data" if national else
               "NOT the national data (set ANTT_BENCH_DATABASE_URL to the national demo; "
               "figures on this smaller set are lighter than the issue's)"))


def commune_points(url: str, limit: int = 4000) -> tuple[tuple[float, float], ...]:
    """A point inside each commune valid today (where tiles, pages and edits are aimed)."""
    with _engine(url).connect() as conn:
        rows = conn.execute(text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM admin_unit "
            "WHERE level = 'commune' AND valid_to IS NULL AND geom IS NOT NULL "
            "ORDER BY code LIMIT :n) x"), {"n": limit}).all()
    if not rows:
        raise SystemExit("Không có xã nào / no commune in the bench database")
    return tuple((float(x), float(y)) for x, y in rows)


def make_mix(url: str) -> Mix:
    marker = f"{MARKER_PREFIX} {uuid.uuid4().hex[:12]}"
    occurred = (dt.date.today() - dt.timedelta(days=7)).isoformat() + "T10:00:00"
    return Mix(commune_points(url), {"Authorization": f"Bearer {token_for(url, 'viewer')}"},
               {"Authorization": f"Bearer {token_for(url, 'police')}"}, marker, occurred)


def incident_count(url: str) -> int:
    with _engine(url).connect() as conn:
        return conn.execute(text("SELECT count(*) FROM incident")).scalar_one()


def remove_edits(url: str, mix: Mix, ids: list[int]) -> int:
    """Delete every incident the bench inserted: the ids answered, and any carrying the marker
    (a POST whose answer was lost still committed)."""
    with _engine(url).begin() as conn:
        return conn.execute(text("DELETE FROM incident WHERE id = ANY(:ids) OR description = :m"),
                            {"ids": ids, "m": mix.marker}).rowcount


# --- the replica ---------------------------------------------------------------------------------

@dataclass
class ReadSide:
    url: str | None  # READ_DATABASE_URL for the second configuration; None: skipped
    how: str  # where it came from, or why there is none
    home: Path | None = None  # the replica's directory when the bench made it


@contextmanager
def replica_of(url: str) -> Iterator[ReadSide]:
    """ANTT_BENCH_READ_DATABASE_URL, else a streaming replica made here (removed afterwards)."""
    given = os.environ.get("ANTT_BENCH_READ_DATABASE_URL")
    if given:
        yield ReadSide(given, "ANTT_BENCH_READ_DATABASE_URL")
        return
    from antt.cluster import EmbeddedCluster, EmbeddedReplica

    u = make_url(url)
    if u.host not in ("127.0.0.1", "localhost", "::1"):
        yield ReadSide(None, f"the database is on {u.host}, not on this machine: set "
                             "ANTT_BENCH_READ_DATABASE_URL to a replica made with its own tools")
        return
    with _engine(url).connect() as conn:
        superuser, recovery, datadir, port = conn.execute(text(
            "SELECT current_setting('is_superuser') = 'on', pg_is_in_recovery(), "
            "current_setting('data_directory', true), current_setting('port')::int")).one()
    datadir = Path(datadir) if datadir else None
    if not superuser or recovery or datadir is None or datadir.name != "pgdata" \
            or not (datadir / "PG_VERSION").exists():
        yield ReadSide(None, f"cannot replicate {u.render_as_string(hide_password=True)} here "
                             f"(superuser {superuser}, standby {recovery}, data directory {datadir}): "
                             "set ANTT_BENCH_READ_DATABASE_URL")
        return
    primary = EmbeddedCluster(home=datadir.parent, port=port, dbname=u.database)
    replica = EmbeddedReplica(home=Path(tempfile.mkdtemp(prefix="antt-bench-replica-")), fast=True,
                              primary=primary, dbname=u.database,
                              slot=f"antt_bench_{os.getpid()}")
    started = time.perf_counter()
    try:
        read_url = replica.up()
        print(f"replica: pg_basebackup of {datadir} + start in {time.perf_counter() - started:.1f} s "
              f"(port {replica.port}, slot {replica.slot}; removed at the end)")
        yield ReadSide(read_url, f"streaming replica made by the bench (EmbeddedReplica, {replica.home})",
                       replica.home)
    finally:
        replica.remove()


# --- processes and memory ------------------------------------------------------------------------

def _cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process so far (its own, not its children's)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postmaster_of(url: str) -> int | None:
    """The postmaster of the server behind URL when it runs on this machine (parent of our
    own backend), else None."""
    try:
        with _engine(url).connect() as conn:
            backend = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        ppid = int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
        return ppid if "postgres" in Path(f"/proc/{ppid}/comm").read_text() else None
    except (OSError, ValueError):
        return None


def _role(pid: int, parent: int) -> str:
    """parent (uvicorn's supervisor, or the only process), worker, or helper (multiprocessing's
    resource tracker, which serves nothing)."""
    if pid == parent:
        return "parent"
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return "?"
    return "helper" if b"resource_tracker" in cmdline else "worker"


@dataclass
class Memory:
    """Peaks seen while the load runs: each API process's VmHWM, and per PostgreSQL cluster the
    largest sum of private memory (RssAnon) over its processes and their largest count."""

    server: dict[int, float] = field(default_factory=dict)
    server_cpu: dict[int, float] = field(default_factory=dict)
    server_role: dict[int, str] = field(default_factory=dict)  # parent, worker, helper
    postgres: dict[str, dict[str, float]] = field(default_factory=dict)

    def sample(self, server_pid: int, postmasters: dict[str, int | None]) -> None:
        for pid in [server_pid, *child_pids(server_pid)]:
            hwm, cpu = peak_rss_mb(pid), _cpu_seconds(pid)
            if not math.isnan(hwm):
                self.server[pid] = max(self.server.get(pid, 0.0), hwm)
                self.server_cpu[pid] = cpu
                self.server_role.setdefault(pid, _role(pid, server_pid))
        for name, postmaster in postmasters.items():
            if postmaster is None:
                continue
            pids = [postmaster, *child_pids(postmaster)]
            private = sum(v for v in (proc_status_mb(p, "RssAnon") for p in pids) if not math.isnan(v))
            peak = max((v for v in (peak_rss_mb(p) for p in pids) if not math.isnan(v)), default=0.0)
            seen = self.postgres.setdefault(name, {"private_mb": 0.0, "processes": 0, "largest_mb": 0.0})
            seen["private_mb"] = max(seen["private_mb"], private)
            seen["processes"] = max(seen["processes"], len(pids))
            seen["largest_mb"] = max(seen["largest_mb"], peak)


# --- the load generator --------------------------------------------------------------------------

def _generator(base: str, clients: int, seconds: float, mix: Mix, seed: int,
               barrier, out) -> None:
    """One generator process: wait for the others, run its clients, send back what it saw."""
    barrier.wait(timeout=120)
    cpu = time.process_time()
    result = asyncio.run(load_test(base, {}, clients, seconds, _next_call(mix), seed))
    out.put((result, time.process_time() - cpu))


def run_load(base: str, mix: Mix, clients: int, seconds: float, processes: int,
             server_pid: int, postmasters: dict[str, int | None]) -> tuple[LoadResult, float, float, Memory]:
    """The clients split over `processes` spawned generators; memory sampled every second
    meanwhile. Returns (result, elapsed s, generators' CPU s, memory)."""
    ctx = multiprocessing.get_context("spawn")
    processes = max(1, min(processes, clients))
    barrier, out = ctx.Barrier(processes + 1), ctx.Queue()
    shares = [clients // processes + (i < clients % processes) for i in range(processes)]
    procs = [ctx.Process(target=_generator, args=(base, n, seconds, mix, i, barrier, out), daemon=True)
             for i, n in enumerate(shares)]
    for p in procs:
        p.start()
    memory = Memory()
    barrier.wait(timeout=120)
    started = time.monotonic()
    total, cpu, got = LoadResult(), 0.0, 0
    while got < processes:
        memory.sample(server_pid, postmasters)
        try:
            result, spent = out.get(timeout=1.0)
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in procs):
                raise RuntimeError("a load generator process failed") from None
            if time.monotonic() - started > seconds + 300:
                raise RuntimeError("load generators did not finish") from None
            continue
        elapsed = time.monotonic() - started
        total.merge(result)
        cpu += spent
        got += 1
    for p in procs:
        p.join(timeout=30)
    return total, elapsed, cpu, memory


# --- one configuration ---------------------------------------------------------------------------

@dataclass
class Figures:
    label: str
    requests: int
    throughput: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    statuses: Counter
    error_lines: list[str]
    databases: Counter
    by_kind: dict[str, tuple[int, float, float]]  # kind: (requests, p50 ms, p95 ms)
    created: list[int]
    elapsed: float
    generator_cpu: float
    memory: Memory
    server_log: list[str]  # what the API wrote to stderr during the run (warnings, errors)
    retried: int = 0
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average as the load started and ended

    @property
    def replica_share(self) -> float:
        return self.databases.get("replica", 0) / max(1, sum(self.databases.values()))


def _wait_for_replica_reads(base: str, tries: int = 150) -> None:
    """Every worker sees the replica fit before the load starts (each measures it itself)."""
    fit = 0
    with httpx.Client(base_url=base, timeout=10) as client:
        for _ in range(tries):
            fit = fit + 1 if client.get("/readyz").json().get("reads_from") == "replica" else 0
            if fit >= 10:
                return
            time.sleep(0.2)
    raise RuntimeError("the replica is not read from (/readyz reads_from never 'replica')")


def run_configuration(label: str, url: str, mix: Mix, *, workers: int, read_url: str | None,
                      clients: int, seconds: float, processes: int,
                      cache_mb: float = TILE_CACHE_MB, result_mb: float = RESULT_CACHE_MB) -> Figures:
    with _engine(url).begin() as conn:
        conn.execute(text("TRUNCATE tile_cache, result_cache"))  # neither configuration starts warm
    postmasters = {"primary": postmaster_of(url)}
    if read_url:
        postmasters["replica"] = postmaster_of(read_url)
    port = free_port()
    with our_server(url, port, cache_mb=cache_mb, workers=workers, read_url=read_url,
                    result_cache_mb=result_mb) as proc:
        base = f"http://127.0.0.1:{port}"
        if read_url:
            _wait_for_replica_reads(base)
        load_before = os.getloadavg()[0]
        result, elapsed, gen_cpu, memory = run_load(base, mix, clients, seconds, processes,
                                                    proc.pid, postmasters)
        memory.sample(proc.pid, postmasters)
        log = [line for line in server_log(proc).splitlines() if line.strip()]
    latencies = result.all_latencies()
    by_kind = {k: (len(v), statistics.median(v) * 1e3, pct(v, .95) * 1e3)
               for k, v in sorted(result.latencies.items())}
    return Figures(label, len(latencies), len(latencies) / elapsed, statistics.median(latencies) * 1e3,
                   pct(latencies, .95) * 1e3, pct(latencies, .99) * 1e3, result.error_count,
                   result.statuses, result.errors, result.databases, by_kind, result.created,
                   elapsed, gen_cpu, memory, log, result.retried, (load_before, os.getloadavg()[0]))


def report(f: Figures, processes: int) -> None:
    print(f"-- {f.label} (1-minute load average {f.load[0]:.1f} at the start, {f.load[1]:.1f} at the end)")
    print(f"requests {f.requests:,} in {f.elapsed:.1f} s = {f.throughput:.1f} req/s; "
          f"p50 {f.p50_ms:.0f} ms, p95 {f.p95_ms:.0f} ms, p99 {f.p99_ms:.0f} ms")
    for kind, (n, p50, p95) in f.by_kind.items():
        print(f"   {kind:9s} {n:7,} requests, p50 {p50:.0f} ms, p95 {p95:.0f} ms")
    codes = Counter()
    for (_kind, status), n in f.statuses.items():
        codes[status] += n
    print("status: " + ", ".join(f"{s} x{n:,}" for s, n in sorted(codes.items(), key=str))
          + f"; errors {f.errors} (0 expected); GETs sent again on a new connection after the "
          f"server closed a kept-alive one: {f.retried}")
    for line in f.error_lines:
        print(f"   ! {line}")
    print("answered by: " + ", ".join(f"{k} {n:,}" for k, n in sorted(f.databases.items()))
          + f" (replica {f.replica_share:.0%})")
    print(f"edits inserted {len(f.created):,}")
    if f.server_log:
        print(f"server log: {len(f.server_log)} lines (warnings and errors); the last ones:")
        for line in f.server_log[-8:]:
            print(f"   | {line[:300]}")
    mem = f.memory
    server = ", ".join(f"{mem.server_role[pid]} {pid} {mb:.0f} MB / {mem.server_cpu[pid]:.0f} s CPU"
                       for pid, mb in mem.server.items())
    print(f"API processes, peak RSS (VmHWM) / CPU: {server}")
    for name, seen in mem.postgres.items():
        print(f"PostgreSQL {name}: up to {seen['processes']:.0f} processes, peak private memory "
              f"(sum of RssAnon) {seen['private_mb']:.0f} MB, largest process VmHWM "
              f"{seen['largest_mb']:.0f} MB (shared_buffers counted in each)")
    cores = os.cpu_count() or 1
    print(f"load generator: {processes} processes, {f.generator_cpu:.0f} s CPU = "
          f"{f.generator_cpu / (f.elapsed * cores):.0%} of the machine's {cores} cores during the run")


def main() -> None:
    clients = int(os.environ.get("ANTT_BENCH_CLIENTS", CLIENTS))
    seconds = float(os.environ.get("ANTT_BENCH_SECONDS", SECONDS))
    processes = int(os.environ.get("ANTT_BENCH_LOAD_PROCESSES", PROCESSES))
    cache_mb = float(os.environ.get("ANTT_BENCH_TILE_CACHE_MB", TILE_CACHE_MB))
    result_mb = float(os.environ.get("ANTT_BENCH_RESULT_CACHE_MB", RESULT_CACHE_MB))
    cores = os.cpu_count() or 1
    with bench_database() as url:
        summary = data_summary(url)
        print(f"data: {describe(summary)}")
        print(f"machine: {cores} cores; before: {load_average()}")
        if cores <= 2:
            print(f"NOTE: {cores} cores are shared by the API workers, PostgreSQL (primary and "
                  "replica) and the load generator: a second worker and a replica cannot show a "
                  "scale-out gain here; the ratio below is what this machine gives, not what more "
                  "cores would.")
        mix = make_mix(url)
        before = incident_count(url)
        shares = ", ".join(f"{k} {v:.0%}" for k, v in SHARES)
        print(f"== {clients} concurrent clients for {seconds:.0f} s each ({shares}); "
              f"tile cache {cache_mb:g} MB and result cache {result_mb:g} MB (aggregate pages), both emptied "
              "before each configuration")
        figures: list[Figures] = []
        try:
            figures.append(run_configuration("1 worker", url, mix, workers=1, read_url=None,
                                             clients=clients, seconds=seconds, processes=processes,
                                             cache_mb=cache_mb, result_mb=result_mb))
            report(figures[-1], processes)
            with replica_of(url) as read:
                if read.url is None:
                    print(f"-- 2 workers + replica: SKIPPED, {read.how}")
                else:
                    print(f"replica: {read.how}")
                    figures.append(run_configuration(
                        "2 workers + replica", url, mix, workers=2, read_url=read.url,
                        clients=clients, seconds=seconds, processes=processes, cache_mb=cache_mb,
                        result_mb=result_mb))
                    report(figures[-1], processes)
        finally:
            removed = remove_edits(url, mix, [i for f in figures for i in f.created])
            after = incident_count(url)
            print(f"clean-up: {removed:,} bench incidents deleted; incidents {before:,} before, "
                  f"{after:,} after ({'unchanged' if after == before else 'CHANGED'})")
        if len(figures) == 2:
            one, two = figures
            print(f"== ratio (2 workers + replica / 1 worker): throughput "
                  f"{two.throughput / one.throughput:.2f}x, p95 {two.p95_ms / one.p95_ms:.2f}x, "
                  f"p99 {two.p99_ms / one.p99_ms:.2f}x (under 1 is better for latencies)")
        print(f"after: {load_average()}")


if __name__ == "__main__":
    main()
