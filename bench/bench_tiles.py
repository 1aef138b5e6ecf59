"""Vector tile speed: our endpoint against the same ST_AsMVT SQL run directly, and against tipg.

Data: the real Hải Phòng 2025 communes plus the demo (`data.demo.build_haiphong_demo`,
~1,000 villages and ANTT_BENCH_INCIDENTS incidents, default 50,000) in a throwaway embedded
cluster, or the database named by ANTT_BENCH_DATABASE_URL. Both servers run under uvicorn
(one worker each) on loopback; only loopback is ever contacted.

"Direct SQL" is the endpoint's own statements (`layers.tiles.tile_statements`, the size
ladder included: a tile over 500 KB runs its next step too, as the endpoint does) on a
psycopg2 connection from the same engine settings, in autocommit as the endpoint's is, timed
from the first execute to the last fetch; nothing else (no HTTP, auth, role rules or audit).

Printed:
- caching (issue 12), for the same z13 tiles of the incident table (admin: exact points,
  audited on every request) and of the communes (a viewer: a public tile): the raw ST_AsMVT
  SQL, the HTTP floor (GET /conformance), a cold tile (server cache emptied), a cached tile
  (served from the shared tile cache, the in-process memo off), a memo tile (a server with
  ANTT_TILE_MEMO_MB on: no database at all; never for exact points, audited on every request),
  a 304 revalidation (If-None-Match), and tipg on the same table (incident, admin_unit);
- the HTTP floor (GET /conformance: no auth, no database) and the load average;
- single tiles: p50/p95 of the endpoint (HTTP, auth, role rules, audit of incident points;
  server without its tile cache, so every tile is built) and of the direct SQL for 60 tiles
  of one zoom, their p50 ratio (issue goal <= 1.2);
- the workload: every tile at z8..z14 that covers a Hải Phòng commune, for the communes and
  the incidents layers, each tile over HTTP and directly (alternating, 2 rounds, after one
  warm-up pass): p50/p95 of both and their ratios, and the p50 ratio by zoom;
- tiles/s of ours and tipg's on the same incident table with 8 concurrent clients, as a ratio.
The bench account is an admin, so incident tiles carry exact points and each one with points
writes its audit row, as for any police or admin user.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import text

from antt.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent
SECRET = "antt-bench-signing-key-for-loopback-only-0123456789"
DEFAULT_INCIDENTS = 50_000


# --- shared with bench_features ----------------------------------------------------------------

@contextmanager
def bench_database(incidents: int | None = None) -> Iterator[str]:
    """A database with Hải Phòng + demo data: ANTT_BENCH_DATABASE_URL, else a throwaway cluster."""
    external = os.environ.get("ANTT_BENCH_DATABASE_URL")
    if external:
        yield external
        return
    from antt.cluster import EmbeddedCluster
    from antt.migrate import upgrade
    from data.demo.generate import build_haiphong_demo

    incidents = incidents or int(os.environ.get("ANTT_BENCH_INCIDENTS", DEFAULT_INCIDENTS))
    cluster = EmbeddedCluster(home=Path(tempfile.mkdtemp(prefix="antt-bench-")), fast=True, dbname="bench")
    url = cluster.up()
    try:
        started = time.perf_counter()
        upgrade(url)
        build_haiphong_demo(url, incidents=incidents)
        with _engine(url).begin() as conn:  # committed: an ANALYZE rolled back leaves no statistics
            conn.execute(text("ANALYZE"))
        print(f"setup: Hải Phòng + demo ({incidents:,} incidents) in {time.perf_counter() - started:.1f} s")
        yield url
    finally:
        cluster.destroy()


def _engine(url: str):
    from antt.db import make_engine

    return make_engine(url)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(argv: list[str], env: dict[str, str], port: int, probe: str) -> Iterator[subprocess.Popen]:
    """Run a uvicorn app on loopback until the block ends (its own process group). Its stderr
    goes to a file (`proc.log`, read by `server_log`), never to an unread pipe: a full pipe
    would block the server mid-bench on its next warning."""
    log = tempfile.NamedTemporaryFile(prefix="antt-bench-server-", suffix=".log", delete=False)
    proc = subprocess.Popen(argv, env=os.environ | env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=log, start_new_session=True)
    proc.log = Path(log.name)
    log.close()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=2).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {server_log(proc)[-2000:]}")
            time.sleep(0.3)
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.log.unlink(missing_ok=True)


def server_log(proc: subprocess.Popen) -> str:
    """What the server wrote to stderr so far (warnings and errors: --log-level warning)."""
    try:
        return proc.log.read_text(errors="replace")
    except OSError:
        return ""


def proc_status_mb(pid: int, field: str = "VmHWM") -> float:
    """A memory field of /proc/PID/status (VmHWM = peak resident, VmRSS, RssAnon...) in MB;
    NaN when the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return float("nan")
    for line in lines:
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a live process, in MB."""
    return proc_status_mb(pid, "VmHWM")


def child_pids(pid: int) -> list[int]:
    """Every descendant of a process (e.g. uvicorn's worker processes), from /proc."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            continue
        for kid in kids:
            out += [kid, *child_pids(kid)]
    return out


def our_server(url: str, port: int, cache_mb: float = 0, workers: int = 1,
               read_url: str | None = None, result_cache_mb: float = 0, memo_mb: float = 0):
    """Our API on loopback; `cache_mb` 0 turns the shared tile cache off (every tile built),
    `result_cache_mb` 0 the analysis result cache (every analysis computed), `memo_mb` 0 the
    in-process tile memo (every tile asks the database).
    `workers` > 1: uvicorn's worker processes behind one port; `read_url`: READ_DATABASE_URL
    (none: every request on the primary, even if the caller's environment names a replica)."""
    env = {"DATABASE_URL": url, "ANTT_SECRET_KEY": SECRET, "ANTT_TILE_CACHE_MB": str(cache_mb),
           "ANTT_RESULT_CACHE_MB": str(result_cache_mb), "READ_DATABASE_URL": read_url or "",
           "ANTT_TILE_MEMO_MB": str(memo_mb)}
    argv = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning", "--no-access-log", "--workers", str(workers),
            "--timeout-keep-alive", str(get_settings().keep_alive_s)]  # as `antt serve` runs it
    return server(argv, env, port, "/conformance")


def token_for(url: str, role: str, scope_level: str = "all", scope_code: str | None = None) -> str:
    """An account of ROLE (scoped to a province or commune when asked; its own username then)
    in the bench database and a bearer token signed like the server's."""
    os.environ["ANTT_SECRET_KEY"] = SECRET
    from antt.accounts import create_user
    from api.deps import issue_token

    get_settings.cache_clear()
    name = f"bench-{role}" if scope_code is None else f"bench-{role}-{scope_level}-{scope_code}"
    with _engine(url).begin() as conn:
        account = create_user(conn, name, "bench-password", role, scope_level=scope_level,
                              scope_code=scope_code, replace=True)
    return issue_token(account)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(math.ceil(q * len(values))) - 1)]


# --- this benchmark -------------------------------------------------------------------------------

def tiles_over(url: str, z: int, limit: int) -> list[tuple[int, int, int]]:
    """Tiles at zoom z over the incidents' extent (up to `limit`, row by row)."""
    with _engine(url).connect() as conn:
        minx, miny, maxx, maxy = conn.execute(text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            "(SELECT ST_Extent(geom) e FROM incident) x")).one()

    def tile(lon: float, lat: float) -> tuple[int, int]:
        n = 1 << z
        return (int((lon + 180) / 360 * n),
                int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n))

    x0, y1 = tile(minx, miny)
    x1, y0 = tile(maxx, maxy)
    out = [(z, x, y) for y in range(y0, y1 + 1) for x in range(x0, x1 + 1)]
    return out[:limit]


def _bench_query(layer_id: str):
    """The LayerQuery of the bench account (admin, whole country) for a layer."""
    from api.deps import Principal
    from layers.catalogue import CATALOGUE
    from layers.sql import LayerQuery

    return LayerQuery(CATALOGUE[layer_id], Principal("bench-admin", "admin"))


@contextmanager
def direct_cursor(url: str):
    """A psycopg2 cursor on a connection made by the same engine factory as the server's,
    in autocommit like the endpoint's; yields (cursor, dialect)."""
    engine = _engine(url)
    raw = engine.raw_connection()
    dbapi = raw.driver_connection
    dbapi.autocommit = True
    cursor = dbapi.cursor()
    try:
        yield cursor, engine.dialect
    finally:
        cursor.close()
        dbapi.autocommit = False
        raw.close()
        engine.dispose()


def direct_tile_seconds(cursor, dialect, q, z: int, x: int, y: int) -> float:
    """The endpoint's statements for one tile, run directly; seconds from first execute to
    last fetch (the statements are built before the clock starts)."""
    from layers.tiles import MAX_TILE_BYTES, driver_sql, tile_statements

    statements = [(driver_sql(st.sql, dialect), st.params) for st in tile_statements(q, z, x, y)]
    t = time.perf_counter()
    for sql, params in statements:
        cursor.execute(sql, params)
        data, _n = cursor.fetchone()
        if len(data or b"") <= MAX_TILE_BYTES:
            break
    return time.perf_counter() - t


def direct_sql_latencies(url: str, layer_id: str, tiles, rounds: int) -> list[float]:
    q = _bench_query(layer_id)
    out = []
    with direct_cursor(url) as (cursor, dialect):
        for _ in range(rounds):
            for z, x, y in tiles:
                out.append(direct_tile_seconds(cursor, dialect, q, z, x, y))
    return out


def builder_latencies(url: str, layer_id: str, tiles, rounds: int) -> list[float]:
    """In-process layers.tiles.build_tile (query building, role rules, size ladder, no HTTP),
    on a connection in autocommit as the endpoint's."""
    from layers.tiles import build_tile

    out = []
    engine = _engine(url)
    with engine.connect() as conn:
        dbapi = conn.connection.driver_connection
        dbapi.autocommit = True
        try:
            for _ in range(rounds):
                for z, x, y in tiles:
                    t = time.perf_counter()
                    build_tile(conn, _bench_query(layer_id), z, x, y)
                    out.append(time.perf_counter() - t)
        finally:
            dbapi.autocommit = False
    engine.dispose()
    return out


def http_latencies(base: str, path_of, tiles, headers, rounds: int) -> tuple[list[float], int, int]:
    out, errors, biggest = [], 0, 0
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        for _ in range(rounds):
            for z, x, y in tiles:
                t = time.perf_counter()
                r = client.get(path_of(z, x, y))
                out.append(time.perf_counter() - t)
                errors += r.status_code not in (200, 204)
                biggest = max(biggest, len(r.content))
    return out, errors, biggest


def throughput(base: str, path_of, tiles, headers, seconds: float, clients: int) -> tuple[float, int]:
    deadline = time.monotonic() + seconds

    def worker(offset: int) -> tuple[int, int]:
        done = errors = 0
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            i = offset
            while time.monotonic() < deadline:
                z, x, y = tiles[i % len(tiles)]
                r = client.get(path_of(z, x, y))
                done += 1
                errors += r.status_code not in (200, 204)
                i += clients
        return done, errors

    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(worker, range(clients)))
    elapsed = time.monotonic() - started
    return sum(d for d, _ in results) / elapsed, sum(e for _, e in results)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def tile_path(layer_id: str):
    return lambda z, x, y: f"/collections/{layer_id}/tiles/WebMercatorQuad/{z}/{x}/{y}"


def http_floor(base: str) -> float:
    with httpx.Client(base_url=base, timeout=60) as client:
        floor = []
        for _ in range(60):
            t = time.perf_counter()
            client.get("/conformance")
            floor.append(time.perf_counter() - t)
    return statistics.median(floor)


def latency_vs_sql(url: str, base: str, auth: dict[str, str]) -> None:
    print("== single tiles: endpoint (HTTP + auth + roles + audit) vs the same ST_AsMVT SQL run "
          "directly (goal: p50 <= 1.2x)")
    print(f"HTTP floor: GET /conformance (no auth, no database) p50 {ms(http_floor(base))}")
    for layer_id, z in (("communes", 10), ("communes", 12), ("incidents", 12), ("incident_hexagons", 12)):
        tiles = tiles_over(url, z, 60)
        path = tile_path(layer_id)
        http_latencies(base, path, tiles[:10], auth, 1)  # warm up
        api, errors, biggest = http_latencies(base, path, tiles, auth, 3)
        line = (f"{layer_id:18s} z{z} x{len(tiles)} tiles: endpoint p50 {ms(statistics.median(api))} "
                f"p95 {ms(pct(api, .95))}; errors {errors}; largest {biggest / 1024:.0f} KB")
        if layer_id == "incident_hexagons":
            print(line + " (aggregate built per request; direct SQL not timed)")
            continue
        direct = direct_sql_latencies(url, layer_id, tiles, 3)
        builder = builder_latencies(url, layer_id, tiles, 3)
        ratio = statistics.median(api) / statistics.median(direct)
        overhead = statistics.median(api) - statistics.median(direct)
        print(line + f" | direct SQL p50 {ms(statistics.median(direct))} p95 {ms(pct(direct, .95))}"
              f" | ratio p50 {ratio:.2f}x ({'OK' if ratio <= 1.2 else 'over 1.2x'}), fixed cost "
              f"{ms(overhead)} per tile | in-process builder p50 {ms(statistics.median(builder))} = "
              f"{statistics.median(builder) / statistics.median(direct):.2f}x the direct SQL")


def commune_tiles(url: str, zooms: range) -> list[tuple[int, int, int]]:
    """Every tile of these zooms that intersects a Hải Phòng commune valid today."""
    with _engine(url).connect() as conn:
        rows = conn.execute(text("""
            WITH u AS (SELECT ST_Transform(ST_Union(geom), 3857) AS g, ST_Extent(geom) AS b
                       FROM admin_unit WHERE level = 'commune' AND valid_to IS NULL),
            z AS (SELECT unnest(CAST(:zooms AS int[])) AS z),
            r AS (SELECT z.z, floor((ST_XMin(b) + 180) / 360 * 2 ^ z.z)::int AS x0,
                         floor((ST_XMax(b) + 180) / 360 * 2 ^ z.z)::int AS x1,
                         floor((1 - asinh(tan(radians(ST_YMax(b)))) / pi()) / 2 * 2 ^ z.z)::int AS y0,
                         floor((1 - asinh(tan(radians(ST_YMin(b)))) / pi()) / 2 * 2 ^ z.z)::int AS y1
                  FROM u, z)
            SELECT r.z, x, y FROM r, u, generate_series(r.x0, r.x1) x, generate_series(r.y0, r.y1) y
            WHERE ST_Intersects(ST_TileEnvelope(r.z, x, y), u.g) ORDER BY 1, 2, 3"""),
            {"zooms": list(zooms)}).all()
    return [tuple(r) for r in rows]


def workload(url: str, base: str, auth: dict[str, str], rounds: int = 2) -> None:
    """Each tile over HTTP and directly, alternating (which goes first flips every round)."""
    zooms = range(8, 15)
    tiles = commune_tiles(url, zooms)
    per_zoom = {z: sum(t[0] == z for t in tiles) for z in zooms}
    print(f"== workload: every tile covering Hải Phòng's communes at z8..z14 ({len(tiles)} tiles: "
          + ", ".join(f"z{z} {n}" for z, n in per_zoom.items())
          + f"), {rounds} rounds, HTTP and direct SQL alternating per tile")
    for layer_id in ("communes", "incidents"):
        q = _bench_query(layer_id)
        path = tile_path(layer_id)
        api: dict[tuple, list[float]] = {t: [] for t in tiles}
        direct: dict[tuple, list[float]] = {t: [] for t in tiles}
        errors = 0
        with direct_cursor(url) as (cursor, dialect), \
                httpx.Client(base_url=base, headers=auth, timeout=60) as client:
            for t in tiles:  # warm-up: PostgreSQL's buffers (the HTTP side is warm from the single tiles)
                direct_tile_seconds(cursor, dialect, q, *t)
            for rnd in range(rounds):
                for t in tiles:
                    for which in ((0, 1) if rnd % 2 == 0 else (1, 0)):
                        if which == 0:
                            started = time.perf_counter()
                            r = client.get(path(*t))
                            api[t].append(time.perf_counter() - started)
                            errors += r.status_code not in (200, 204)
                        else:
                            direct[t].append(direct_tile_seconds(cursor, dialect, q, *t))
        a = [v for vs in api.values() for v in vs]
        d = [v for vs in direct.values() for v in vs]
        print(f"{layer_id:10s} endpoint p50 {ms(statistics.median(a))} p95 {ms(pct(a, .95))} | direct SQL "
              f"p50 {ms(statistics.median(d))} p95 {ms(pct(d, .95))} | ratio p50 "
              f"{statistics.median(a) / statistics.median(d):.2f}x, p95 {pct(a, .95) / pct(d, .95):.2f}x, "
              f"total time {sum(a) / sum(d):.2f}x | errors {errors}")
        by_zoom = []
        for z in zooms:
            az = [v for t, vs in api.items() if t[0] == z for v in vs]
            dz = [v for t, vs in direct.items() if t[0] == z for v in vs]
            by_zoom.append(f"z{z} {ms(statistics.median(az))}/{ms(statistics.median(dz))} "
                           f"{statistics.median(az) / statistics.median(dz):.2f}x")
        print(f"{'':10s} p50 by zoom (endpoint/direct): " + "; ".join(by_zoom))


def tipg_server(url: str, port: int, tables: list[str]):
    env = {"DATABASE_URL": url.replace("postgresql+psycopg2://", "postgresql://"),
           "TIPG_DB_SCHEMAS": '["public"]', "TIPG_DB_TABLES": str(tables).replace("'", '"'),
           "TIPG_DB_EXCLUDE_FUNCTION_SCHEMAS": '["public", "pg_temp"]'}
    argv = [sys.executable, "-m", "uvicorn", "tipg.main:app", "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning", "--no-access-log"]
    return server(argv, env, port, "/collections")


def timed_gets(client: httpx.Client, paths: list[str], headers: list[dict[str, str]] | None = None
               ) -> tuple[list[float], list[httpx.Response]]:
    times, responses = [], []
    for i, path in enumerate(paths):
        t = time.perf_counter()
        r = client.get(path, headers=headers[i] if headers else None)
        times.append(time.perf_counter() - t)
        responses.append(r)
    return times, responses


def cache_stages(url: str, auths: dict[str, dict[str, str]], tiles: list[tuple[int, int, int]]) -> None:
    """Raw SQL, HTTP floor, cold, cached, memo, 304 and tipg for the same tiles (p50 / p95)."""
    print(f"== caching: the same {len(tiles)} z13 tiles, p50 / p95 (one client; tile cache shared "
          "in PostgreSQL, ETag from the data version)")
    cases = (("incidents", "admin", "public.incident"), ("communes", "viewer", "public.admin_unit"))
    port = free_port()
    rows: dict[str, dict[str, list[float]]] = {}
    with our_server(url, port, cache_mb=256):
        base = f"http://127.0.0.1:{port}"
        floor = []
        with httpx.Client(base_url=base, timeout=60) as client:
            timed_gets(client, ["/conformance"] * 20)
            for _ in range(3):
                floor += timed_gets(client, ["/conformance"] * 60)[0]
        for layer_id, role, _table in cases:
            paths = [tile_path(layer_id)(*t) for t in tiles]
            r = rows.setdefault(layer_id, {})
            r["raw ST_AsMVT"] = direct_sql_latencies(url, layer_id, tiles, 1)  # warm
            r["raw ST_AsMVT"] = direct_sql_latencies(url, layer_id, tiles, 3)
            r["HTTP floor"] = floor
            with httpx.Client(base_url=base, headers=auths[role], timeout=60) as client:
                timed_gets(client, paths[:10])  # warm the process (auth cache, compiled SQL)
                cold, cached, revalidated, states = [], [], [], []
                for _ in range(3):
                    with _engine(url).begin() as conn:
                        conn.execute(text("TRUNCATE tile_cache"))
                    t, resp = timed_gets(client, paths)
                    cold += t
                    states += [x.headers.get("x-tile-cache") for x in resp]
                    t, resp = timed_gets(client, paths)
                    cached += t
                    states += [x.headers.get("x-tile-cache") for x in resp]
                    etags = [{"If-None-Match": x.headers.get("etag", "")} for x in resp]
                    t, resp = timed_gets(client, paths, etags)
                    revalidated += t
                    assert {x.status_code for x in resp} <= {304, 204}, {x.status_code for x in resp}
            r["cold tile"], r["cached tile"], r["304"] = cold, cached, revalidated
            n = len(paths) * 3
            print(f"{layer_id}: {states.count('miss')} misses and {states.count('hit')} hits in "
                  f"{2 * n} requests (cold pass, then cached pass)")
    memo_port = free_port()
    with our_server(url, memo_port, cache_mb=256, memo_mb=64):
        base = f"http://127.0.0.1:{memo_port}"
        for layer_id, role, _table in cases:
            paths = [tile_path(layer_id)(*t) for t in tiles]
            with httpx.Client(base_url=base, headers=auths[role], timeout=60) as client:
                timed_gets(client, paths[:1])  # starts the version watch
                time.sleep(1.0)  # listening, with a heartbeat behind it
                timed_gets(client, paths)  # fills the memo (from the shared cache)
                memo, states, memo_floor = [], [], []
                for _ in range(3):  # the floor in between, on the same server: load moves
                    memo_floor += timed_gets(client, ["/conformance"] * 60)[0]
                    t, resp = timed_gets(client, paths)
                    memo += t
                    states += [x.headers.get("x-tile-cache") for x in resp]
            print(f"{layer_id}: memo server, {len(states)} repeated requests: "
                  + ", ".join(f"{states.count(k)} {k}" for k in ("memo", "hit", "miss")))
            if states.count("memo") == len(states):
                stages = rows[layer_id]
                rows[layer_id] = {k: v for k, v in stages.items() if k != "304"} | {
                    "memo tile": memo, "HTTP floor (memo server)": memo_floor, "304": stages["304"]}
    tport = free_port()
    with tipg_server(url, tport, [c[2] for c in cases]):
        with httpx.Client(base_url=f"http://127.0.0.1:{tport}", timeout=60) as client:
            for layer_id, _role, table in cases:
                paths = [tile_path(table)(*t) for t in tiles]
                timed_gets(client, paths[:10])
                rows[layer_id][f"tipg ({table})"] = [v for _ in range(3)
                                                     for v in timed_gets(client, paths)[0]]
    for layer_id, stages in rows.items():
        print(f"{layer_id:10s} " + " | ".join(f"{k} {ms(statistics.median(v))} / {ms(pct(v, .95))}"
                                               for k, v in stages.items()))
        cached, floor_p50 = statistics.median(stages["cached tile"]), statistics.median(stages["HTTP floor"])
        memo = "no memo (exact points: audited every time); "
        if "memo tile" in stages:
            memo_floor = statistics.median(stages["HTTP floor (memo server)"])
            memo = (f"memo / floor {statistics.median(stages['memo tile']) / memo_floor:.2f}x "
                    "(that floor measured between the memo passes); ")
        print(f"{'':10s} cached / floor {cached / floor_p50:.2f}x; {memo}cold / raw SQL "
              f"{statistics.median(stages['cold tile']) / statistics.median(stages['raw ST_AsMVT']):.2f}x")


def load_average() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def main() -> None:
    with bench_database() as url:
        auth = {"Authorization": f"Bearer {token_for(url, 'admin')}"}
        port = free_port()
        tiles = tiles_over(url, 13, 120)
        print(f"before: {load_average()}")
        viewer = {"Authorization": f"Bearer {token_for(url, 'viewer')}"}
        cache_stages(url, {"admin": auth, "viewer": viewer}, tiles)
        if os.environ.get("ANTT_BENCH_TILES_CACHE_ONLY"):
            print(f"after: {load_average()}")
            return
        with our_server(url, port) as proc:
            base = f"http://127.0.0.1:{port}"
            latency_vs_sql(url, base, auth)
            workload(url, base, auth)
            ours_lat, _, _ = http_latencies(base, tile_path("incidents"), tiles, auth, 3)
            direct_lat = direct_sql_latencies(url, "incidents", tiles, 3)
            ours_rps, ours_err = throughput(base, tile_path("incidents"), tiles, auth, 15, 8)
            ours_mem = peak_rss_mb(proc.pid)
        tport = free_port()
        with tipg_server(url, tport, ["public.incident"]) as tproc:
            tbase = f"http://127.0.0.1:{tport}"
            tipg_path = tile_path("public.incident")
            http_latencies(tbase, tipg_path, tiles[:10], {}, 1)  # warm up
            tipg_lat, tipg_lat_err, _ = http_latencies(tbase, tipg_path, tiles, {}, 3)
            tipg_rps, tipg_err = throughput(tbase, tipg_path, tiles, {}, 15, 8)
            tipg_mem = peak_rss_mb(tproc.pid)
        d50 = statistics.median(direct_lat)
        print(f"== one client, the same {len(tiles)} z13 incident tiles: our SQL directly p50 {ms(d50)} | "
              f"ours over HTTP p50 {ms(statistics.median(ours_lat))} "
              f"({statistics.median(ours_lat) / d50:.2f}x our direct SQL) | tipg over HTTP p50 "
              f"{ms(statistics.median(tipg_lat))} ({statistics.median(tipg_lat) / d50:.2f}x our direct SQL, "
              f"errors {tipg_lat_err}): the peer pays the same HTTP floor")
        print(f"== throughput on the incident table ({len(tiles)} z13 tiles, 8 clients x 15 s, one worker)")
        print(f"ours {ours_rps:.0f} tiles/s (errors {ours_err}, peak RSS {ours_mem:.0f} MB) | tipg "
              f"{tipg_rps:.0f} tiles/s (errors {tipg_err}, peak RSS {tipg_mem:.0f} MB) | ours/tipg "
              f"{ours_rps / tipg_rps:.2f}x")
        print("note: ours joins category and commune/village codes, checks the bearer token (its "
              "account reloaded every ANTT_AUTH_CACHE_SECONDS) and audits every tile with points; "
              "tipg serves the bare table without auth.")
        print(f"after: {load_average()}")


if __name__ == "__main__":
    main()
