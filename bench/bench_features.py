"""Feature speed: the whole Hải Phòng commune layer as GeoJSON (goal < 150 ms), and 100
concurrent clients for 60 s on loopback (p95, errors, the server's peak memory).

Data and servers as in bench_tiles (throwaway cluster with Hải Phòng + demo, or
ANTT_BENCH_DATABASE_URL; uvicorn, one worker, loopback only). ANTT_BENCH_SECONDS shortens the
load test for a quick look.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import ssl
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from sqlalchemy import text

from bench.bench_tiles import _engine, bench_database, free_port, our_server, pct, peak_rss_mb, token_for

CLIENTS = 100
SECONDS = 60.0


def commune_layer(base: str, headers: dict[str, str], query: str,
                  rounds: int = 20) -> tuple[list[float], int]:
    times, size = [], 0
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        client.get(f"/collections/communes/items?limit=200{query}")  # warm up
        for _ in range(rounds):
            t = time.perf_counter()
            r = client.get(f"/collections/communes/items?limit=200{query}")
            times.append(time.perf_counter() - t)
            r.raise_for_status()
            size = len(r.content)
            assert r.json()["numberReturned"] == r.json()["numberMatched"]
    return times, size


def request_mix(extent: tuple[float, float, float, float], rng: random.Random) -> str:
    """What a map client asks while panning: points in view, aggregates, a page of units."""
    minx, miny, maxx, maxy = extent
    x, y = rng.uniform(minx, maxx - 0.05), rng.uniform(miny, maxy - 0.05)
    bbox = f"{x:.4f},{y:.4f},{x + 0.05:.4f},{y + 0.05:.4f}"
    return rng.choice([
        f"/collections/models/items?limit=100&bbox={bbox}",
        f"/collections/fire_groups/items?limit=100&bbox={bbox}",
        f"/collections/incident_hexagons/items?limit=200&bbox={bbox}&datetime=2026-01-01/..",
        f"/collections/communes/items?limit=10&offset={rng.randrange(0, 110)}&simplify=50",
        f"/collections/villages/items?limit=50&bbox={bbox}&simplify=20",
    ])


@dataclass
class Call:
    """One request of a load mix; `kind` groups the figures (tile, items, aggregate, edit)."""

    path: str
    kind: str = "read"
    method: str = "GET"
    json: dict | None = None
    headers: dict[str, str] | None = None


@dataclass
class LoadResult:
    """What the simulated clients saw; plain lists and counters so it crosses processes."""

    latencies: dict[str, list[float]] = field(default_factory=dict)  # seconds, by kind
    statuses: Counter = field(default_factory=Counter)  # (kind, status or exception name)
    databases: Counter = field(default_factory=Counter)  # X-Antt-Database of each answer
    errors: list[str] = field(default_factory=list)  # the first MAX_ERROR_LINES, with titles
    error_count: int = 0
    retried: int = 0  # GETs sent again after the server closed a kept-alive connection
    created: list[int] = field(default_factory=list)  # ids answered to POSTs (201)

    def merge(self, other: LoadResult) -> LoadResult:
        for kind, values in other.latencies.items():
            self.latencies.setdefault(kind, []).extend(values)
        self.statuses += other.statuses
        self.databases += other.databases
        self.errors += other.errors[:max(0, MAX_ERROR_LINES - len(self.errors))]
        self.error_count += other.error_count
        self.retried += other.retried
        self.created += other.created
        return self

    def all_latencies(self) -> list[float]:
        return [v for values in self.latencies.values() for v in values]


MAX_ERROR_LINES = 20
OK_STATUSES = frozenset({200, 201, 204, 304})


def _problem_title(r: httpx.Response) -> str:
    """The title and detail of a problem+json answer (what the API says went wrong)."""
    try:
        body = r.json()
        return f"{body.get('title')}: {body.get('detail')}"
    except ValueError:
        return r.text[:200]


async def load_test(base: str, headers: dict[str, str], clients: int, seconds: float,
                    next_call: Callable[[random.Random], Call | str], seed: int = 0) -> LoadResult:
    """`clients` sequential clients, each with its own connection and cookie jar (a writer's
    antt_lsn cookie stays its own, as in browsers), asking `next_call(rng)` until the deadline.

    The clients are built before the clock starts and share one SSL context: httpx loads the
    CA bundle for each client otherwise (~50 ms CPU each, seconds for 100 clients), which
    would be timed and would starve the server of CPU on a small machine."""
    result = LoadResult()
    tls = ssl.create_default_context()  # loopback http: never used, but built once, not per client
    pool = [httpx.AsyncClient(base_url=base, headers=headers, timeout=120, verify=tls,
                              limits=httpx.Limits(max_connections=1)) for _ in range(clients)]
    deadline = time.monotonic() + seconds

    async def client_loop(i: int, client: httpx.AsyncClient) -> None:
        rng = random.Random(seed * 100_003 + i)
        while time.monotonic() < deadline:
            call = next_call(rng)
            call = Call(call) if isinstance(call, str) else call
            t = time.perf_counter()
            try:
                try:
                    r = await client.request(call.method, call.path, json=call.json, headers=call.headers)
                except httpx.RemoteProtocolError:
                    if call.method != "GET":
                        raise
                    # The server closed this kept-alive connection as the request went out
                    # (its keep-alive timeout): browsers send a GET again on a new one, so
                    # do we, once; counted, and timed in the request's latency.
                    result.retried += 1
                    r = await client.request(call.method, call.path, json=call.json, headers=call.headers)
                outcome: int | str = r.status_code
            except httpx.HTTPError as exc:
                r, outcome = None, type(exc).__name__
            took = time.perf_counter() - t
            result.latencies.setdefault(call.kind, []).append(took)
            result.statuses[(call.kind, outcome)] += 1
            if r is not None:
                result.databases[r.headers.get("x-antt-database", "?")] += 1
                if r.status_code == 201 and call.method == "POST":
                    result.created.append(int(r.json()["id"]))
            if outcome not in OK_STATUSES:
                result.error_count += 1
                if len(result.errors) < MAX_ERROR_LINES:
                    why = _problem_title(r) if r is not None else ""
                    result.errors.append(f"{outcome} {call.method} {call.path} after {took * 1e3:.0f} ms "
                                         f"{why}".strip())

    try:
        await asyncio.gather(*(client_loop(i, c) for i, c in enumerate(pool)))
    finally:
        await asyncio.gather(*(c.aclose() for c in pool))
    return result


def main() -> None:
    seconds = float(os.environ.get("ANTT_BENCH_SECONDS", SECONDS))
    with bench_database() as url:
        viewer = {"Authorization": f"Bearer {token_for(url, 'viewer')}"}
        with _engine(url).connect() as conn:
            extent = tuple(conn.execute(text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e "
                "FROM admin_unit WHERE level = 'commune') x")).one())
            vertices = conn.execute(text(
                "SELECT sum(ST_NPoints(geom)) FROM admin_unit WHERE level = 'commune'")).scalar_one()
        port = free_port()
        with our_server(url, port) as proc:
            base = f"http://127.0.0.1:{port}"
            print(f"== the whole Hải Phòng commune layer (114 communes, {vertices:,} vertices) as GeoJSON")
            plain = viewer | {"Accept-Encoding": "identity"}
            for label, query, headers in (("full geometry", "", viewer), ("full, no gzip", "", plain),
                                          ("simplify=50 m", "&simplify=50", viewer),
                                          ("zoom=10", "&zoom=10", viewer)):
                times, size = commune_layer(base, headers, query)
                p50 = statistics.median(times) * 1e3
                print(f"{label:14s}: p50 {p50:.0f} ms, p95 {pct(times, .95) * 1e3:.0f} ms, "
                      f"{size / 1e6:.2f} MB ({'OK' if p50 < 150 else 'over'} the 150 ms goal)")
            print(f"== {CLIENTS} concurrent clients for {seconds:.0f} s (viewer; points, hexagons, units)")
            started = time.monotonic()
            result = asyncio.run(load_test(base, viewer, CLIENTS, seconds,
                                           functools.partial(request_mix, extent)))
            elapsed = time.monotonic() - started
            latencies, errors = result.all_latencies(), result.errors
            print(f"requests {len(latencies):,} ({len(latencies) / elapsed:.0f}/s), "
                  f"p50 {statistics.median(latencies) * 1e3:.0f} ms, p95 {pct(latencies, .95) * 1e3:.0f} ms, "
                  f"p99 {pct(latencies, .99) * 1e3:.0f} ms, errors {result.error_count} (0 expected)")
            if errors:
                print("first errors:", errors[:5])
            print(f"server peak RSS (VmHWM): {peak_rss_mb(proc.pid):.0f} MB")


if __name__ == "__main__":
    main()
