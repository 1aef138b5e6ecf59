"""Vector tile speed: our endpoint against the same ST_AsMVT SQL run directly, and against tipg.

Data: the real Hải Phòng 2025 communes plus the demo (`data.demo.build_haiphong_demo`,
~1,000 villages and ANTT_BENCH_INCIDENTS incidents, default 50,000) in a throwaway embedded
cluster, or the database named by ANTT_BENCH_DATABASE_URL. Both servers run under uvicorn
(one worker each) on loopback; only loopback is ever contacted.

Printed: p50/p95 tile latency of the endpoint (HTTP, auth and role rules included) and of the
direct SQL, their ratio (goal <= 1.2), and tiles/s of ours and tipg's on the same incident
table with 8 concurrent clients, as a ratio.
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
        with _engine(url).connect() as conn:
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
    """Run a uvicorn app on loopback until the block ends (its own process group)."""
    proc = subprocess.Popen(argv, env=os.environ | env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=2).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.3)
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a live process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def our_server(url: str, port: int):
    env = {"DATABASE_URL": url, "ANTT_SECRET_KEY": SECRET}
    argv = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning", "--no-access-log"]
    return server(argv, env, port, "/conformance")


def token_for(url: str, role: str) -> str:
    """An account of ROLE in the bench database and a bearer token signed like the server's."""
    os.environ["ANTT_SECRET_KEY"] = SECRET
    from antt.accounts import create_user
    from antt.settings import get_settings
    from api.deps import issue_token

    get_settings.cache_clear()
    with _engine(url).begin() as conn:
        account = create_user(conn, f"bench-{role}", "bench-password", role, replace=True)
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


def direct_sql_latencies(url: str, layer_id: str, tiles, rounds: int) -> list[float]:
    from api.deps import Principal
    from layers.catalogue import CATALOGUE
    from layers.sql import LayerQuery
    from layers.tiles import BUFFER, EXTENT, tile_sql, tile_width_m

    q = LayerQuery(CATALOGUE[layer_id], Principal("bench", "admin"))
    step = None if q.layer.geometry_type == "Point" else 1.0
    sql, params = tile_sql(q, step)
    out = []
    with _engine(url).connect() as conn:
        for _ in range(rounds):
            for z, x, y in tiles:
                unit = tile_width_m(z) / EXTENT
                p = params | {"z": z, "x": x, "y": y, "layer_name": layer_id, "margin": unit * BUFFER,
                              "tol": (step or 0) * unit}
                t = time.perf_counter()
                with conn.begin():
                    conn.execute(text(sql), p).one()  # the endpoint's statement, JIT-off prefix included
                out.append(time.perf_counter() - t)
    return out


def builder_latencies(url: str, layer_id: str, tiles, rounds: int) -> list[float]:
    """In-process layers.tiles.build_tile (query building, role rules, size ladder, no HTTP)."""
    from api.deps import Principal
    from layers.catalogue import CATALOGUE
    from layers.sql import LayerQuery
    from layers.tiles import build_tile

    out = []
    with _engine(url).connect() as conn:
        for _ in range(rounds):
            for z, x, y in tiles:
                t = time.perf_counter()
                with conn.begin():
                    build_tile(conn, LayerQuery(CATALOGUE[layer_id], Principal("bench", "admin")), z, x, y)
                out.append(time.perf_counter() - t)
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


def latency_vs_sql(url: str, base: str, auth: dict[str, str]) -> None:
    print("== tile latency: endpoint (HTTP + auth + roles) vs the same ST_AsMVT SQL run directly "
          "(goal: p50 <= 1.2x)")
    with httpx.Client(base_url=base, timeout=60) as client:
        floor = []
        for _ in range(60):
            t = time.perf_counter()
            client.get("/conformance")
            floor.append(time.perf_counter() - t)
    print(f"HTTP floor: GET /conformance (no auth, no database) p50 {ms(statistics.median(floor))}")
    for layer_id, z in (("communes", 10), ("communes", 12), ("incidents", 12), ("incident_hexagons", 12)):
        tiles = tiles_over(url, z, 60)
        path = tile_path(layer_id)
        http_latencies(base, path, tiles[:10], auth, 1)  # warm up
        api, errors, biggest = http_latencies(base, path, tiles, auth, 3)
        line = (f"{layer_id:18s} z{z} x{len(tiles)} tiles: endpoint p50 {ms(statistics.median(api))} "
                f"p95 {ms(pct(api, .95))}; errors {errors}; largest {biggest / 1024:.0f} KB")
        if layer_id == "incident_hexagons":
            print(line + " (aggregate built per request; no direct twin)")
            continue
        direct = direct_sql_latencies(url, layer_id, tiles, 3)
        builder = builder_latencies(url, layer_id, tiles, 3)
        ratio = statistics.median(api) / statistics.median(direct)
        overhead = statistics.median(api) - statistics.median(direct)
        print(line + f" | direct SQL p50 {ms(statistics.median(direct))} p95 {ms(pct(direct, .95))}"
              f" | ratio p50 {ratio:.2f}x ({'OK' if ratio <= 1.2 else 'over 1.2x'}), fixed HTTP+auth cost "
              f"{ms(overhead)} per tile | in-process builder p50 {ms(statistics.median(builder))} = "
              f"{statistics.median(builder) / statistics.median(direct):.2f}x the direct SQL")


def main() -> None:
    with bench_database() as url:
        auth = {"Authorization": f"Bearer {token_for(url, 'admin')}"}
        port = free_port()
        tiles = tiles_over(url, 13, 120)
        with our_server(url, port) as proc:
            base = f"http://127.0.0.1:{port}"
            latency_vs_sql(url, base, auth)
            ours_rps, ours_err = throughput(base, tile_path("incidents"), tiles, auth, 15, 8)
            ours_mem = peak_rss_mb(proc.pid)
        tport = free_port()
        tipg_env = {"DATABASE_URL": url.replace("postgresql+psycopg2://", "postgresql://"),
                    "TIPG_DB_SCHEMAS": '["public"]', "TIPG_DB_TABLES": '["public.incident"]',
                    "TIPG_DB_EXCLUDE_FUNCTION_SCHEMAS": '["public", "pg_temp"]'}
        argv = [sys.executable, "-m", "uvicorn", "tipg.main:app", "--host", "127.0.0.1",
                "--port", str(tport), "--log-level", "warning", "--no-access-log"]
        with server(argv, tipg_env, tport, "/collections") as tproc:
            tbase = f"http://127.0.0.1:{tport}"
            tipg_path = tile_path("public.incident")
            http_latencies(tbase, tipg_path, tiles[:10], {}, 1)  # warm up
            tipg_rps, tipg_err = throughput(tbase, tipg_path, tiles, {}, 15, 8)
            tipg_mem = peak_rss_mb(tproc.pid)
        print(f"== throughput on the incident table ({len(tiles)} z13 tiles, 8 clients x 15 s, one worker)")
        print(f"ours {ours_rps:.0f} tiles/s (errors {ours_err}, peak RSS {ours_mem:.0f} MB) | tipg "
              f"{tipg_rps:.0f} tiles/s (errors {tipg_err}, peak RSS {tipg_mem:.0f} MB) | ours/tipg "
              f"{ours_rps / tipg_rps:.2f}x")
        print("note: ours joins category and commune/village codes and checks the bearer token and "
              "the account on every tile; tipg serves the bare table without auth.")


if __name__ == "__main__":
    main()
