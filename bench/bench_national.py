"""National scale (issue 12): what a map user waits for on all 3,321 communes and ~1M incidents
a year, over HTTP, with the query plans of the heaviest statements.

Data: ANTT_BENCH_DATABASE_URL (meant: the national demo). Without it the bench falls back to
bench_tiles.bench_database() (Hải Phòng + demo in a throwaway cluster) and says loudly that
the figures are NOT national. The data's size is printed first.

Server: one uvicorn worker (bench_tiles.our_server) on loopback with the tile cache off, so
every request is computed; a second one with the shared tile cache on, for cached tiles only.
The analyses run with the shared result cache on (api/resultcache.py): each prints its first
request (cold: computed and stored) and its repeats (cached), and the heatmap PNG the page
loads after heatmap.json (stored by it).
Every figure is a warm-up request, then ANTT_BENCH_REPEATS (default 5) timed requests, p50 /
p95 / response size, with the requests the web page (web/static/app.js) makes: GeoJSON layers
with limit=10000, zoom= and hexagon cell= by zoom; analyses with province=; the planner with
run=direct (no job row).

Where: Hà Nội (else the province with the most incidents), and in it the commune with the
densest incidents (the city area for the bbox and the tiles).

Query plans: the statements the API runs, built by the API's own builders
(api.features.build_query, layers.sql count/items/counted_items_query, layers.tiles
tile_statements), under EXPLAIN (ANALYZE, BUFFERS); a compact summary is printed with a
warning when a Seq Scan reads the incident table where a filter could use an index.

Writes: the bench accounts (as the other benches), the audit rows of police reads (exact
points are audited by the API on every request), and memo/cache rows (reach_cache,
tile_cache), which are deleted again at the end (rows made since the bench started).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import text

from bench.bench_load import data_summary, describe, tile_of
from bench.bench_tiles import (
    _engine,
    bench_database,
    free_port,
    load_average,
    our_server,
    pct,
    tile_path,
    token_for,
)

REPEATS = int(os.environ.get("ANTT_BENCH_REPEATS", 5))
TILE_ZOOMS = (8, 11, 14)
TILE_CACHE_MB = 256.0
RESULT_CACHE_MB = 256.0
PROVINCE_NAME = "Hà Nội"


def hex_cell(z: int) -> int:
    """The hexagon side web/static/app.js asks for at zoom z (hexCell)."""
    return 2000 if z <= 10 else 1000 if z == 11 else 500 if z == 12 else 250


# --- where ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Place:
    """The province and the dense city spot the figures are measured at."""

    province: str
    province_name: str
    province_incidents: int
    commune: str
    commune_name: str
    commune_incidents: int
    lon: float
    lat: float
    first: dt.date
    last: dt.date

    def bbox(self, half: float = 0.01) -> str:
        """A ~2 km box around the spot (a city street map at z14-15)."""
        return f"{self.lon - half:.5f},{self.lat - half:.5f},{self.lon + half:.5f},{self.lat + half:.5f}"


def find_place(url: str) -> Place:
    with _engine(url).connect() as conn:
        first, last = conn.execute(text(
            "SELECT min(occurred_at)::date, max(occurred_at)::date FROM incident")).one()
        prov = conn.execute(text(
            "SELECT code, name FROM admin_unit WHERE level = 'province' AND valid_to IS NULL "
            "AND name = :name"), {"name": PROVINCE_NAME}).first()
        counts = conn.execute(text("""
            SELECT c.id, c.code, c.name, c.province_code, count(*) AS n,
                   count(*) / greatest(ST_Area(c.geom::geography), 1) AS density
            FROM incident i JOIN admin_unit c ON c.id = i.commune_now_id
            WHERE c.level = 'commune' AND c.valid_to IS NULL
            GROUP BY c.id""")).all()
        by_province = Counter()
        for r in counts:
            by_province[r.province_code] += r.n
        code = prov.code if prov else by_province.most_common(1)[0][0]
        name = prov.name if prov else conn.execute(text(
            "SELECT name FROM admin_unit WHERE level = 'province' AND code = :c AND valid_to IS NULL"),
            {"c": code}).scalar_one()
        dense = max((r for r in counts if r.province_code == code and r.n >= 50), key=lambda r: r.density)
        lon, lat = conn.execute(text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM admin_unit "
            "WHERE id = :i) x"), {"i": dense.id}).one()
    return Place(code, name, by_province[code], dense.code, dense.name, dense.n, float(lon), float(lat),
                 first, last)


def print_data(url: str, national: bool, place: Place) -> None:
    summary = data_summary(url)
    with _engine(url).connect() as conn:
        models, institutions = conn.execute(text(
            "SELECT (SELECT count(*) FROM security_model), (SELECT count(*) FROM institution)")).one()
    print(f"data: {describe(summary)}; {models:,} models, {institutions:,} institutions")
    if not national:
        print("!!! ANTT_BENCH_DATABASE_URL is not set: these figures are NOT on the national data "
              "(Hải Phòng + demo in a throwaway cluster). / KHÔNG phải dữ liệu toàn quốc !!!")
    print(f"place: province {place.province} {place.province_name} ({place.province_incidents:,} incidents); "
          f"densest commune {place.commune} {place.commune_name} ({place.commune_incidents:,} incidents), "
          f"spot {place.lon:.4f},{place.lat:.4f}")


# --- timing over HTTP ---------------------------------------------------------------------------

@dataclass
class Figure:
    """One timed request kind: what a user waits for and how much comes back."""

    group: str
    label: str
    times: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    note: str = ""

    @property
    def p50(self) -> float:
        return statistics.median(self.times)

    @property
    def p95(self) -> float:
        return pct(self.times, 0.95)

    def line(self) -> str:
        size = statistics.median(self.sizes) if self.sizes else 0
        st = ", ".join(f"{k}×{v}" for k, v in sorted(self.statuses.items(), key=str))
        note = f"  {self.note}" if self.note else ""
        return (f"{self.label:58s} p50 {self.p50 * 1e3:8.0f} ms  p95 {self.p95 * 1e3:8.0f} ms  "
                f"n={len(self.times):<3d} {size / 1024:8.1f} KB  [{st}]{note}")


FIGURES: list[Figure] = []


def _note_of(r: httpx.Response) -> str:
    """numberMatched / features of a GeoJSON answer, the solver line of a plan."""
    if "json" not in r.headers.get("content-type", "") or r.status_code >= 300:
        return r.text[:200] if r.status_code >= 400 else ""
    body = r.json()
    parts = []
    if isinstance(body, dict):
        if "numberMatched" in body:
            parts.append(f"matched {body['numberMatched']:,}")
        if isinstance(body.get("features"), list):
            parts.append(f"{len(body['features']):,} features")
        if "n_points" in body:
            parts.append(f"{body['n_points']:,} points, bandwidth {body.get('bandwidth_m', 0):.0f} m")
        if isinstance(body.get("solver"), dict):
            s = body["solver"]
            parts.append(f"solver {s.get('solver')} {s.get('status')} gap {s.get('gap', 0):.2%}")
    return ", ".join(parts)


def measure(client: httpx.Client, group: str, label: str, path: str, headers: dict[str, str],
            body: dict | None = None, repeats: int = REPEATS) -> Figure:
    """One warm-up request, then `repeats` timed ones (the whole response read)."""
    fig = Figure(group, label)
    method = "POST" if body is not None else "GET"
    for i in range(repeats + 1):
        t = time.perf_counter()
        r = client.request(method, path, json=body, headers=headers)
        took = time.perf_counter() - t
        if i == 0:
            fig.note = _note_of(r)
            continue
        fig.times.append(took)
        fig.sizes.append(len(r.content))
        fig.statuses[r.status_code] += 1
    FIGURES.append(fig)
    print(fig.line(), flush=True)
    return fig


def tile_block(place: Place, z: int) -> list[tuple[int, int, int]]:
    """The 3x3 tiles around the spot at zoom z (a screen's worth at that zoom)."""
    x, y = tile_of(place.lon, place.lat, z)
    return [(z, x + dx, y + dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]


def measure_tiles(client: httpx.Client, group: str, label: str, layer_id: str,
                  tiles: list[tuple[int, int, int]], headers: dict[str, str], rounds: int,
                  warm: bool = True) -> Figure:
    """Every tile once to warm up (or to fill the cache), then `rounds` passes timed."""
    fig = Figure(group, label)
    path = tile_path(layer_id)
    if warm:
        for t in tiles:
            client.get(path(*t), headers=headers)
    states: Counter = Counter()
    for _ in range(rounds):
        for t in tiles:
            started = time.perf_counter()
            r = client.get(path(*t), headers=headers)
            fig.times.append(time.perf_counter() - started)
            fig.sizes.append(len(r.content))
            fig.statuses[r.status_code] += 1
            states[r.headers.get("x-tile-cache", "-")] += 1
    fig.note = f"{len(tiles)} tiles x {rounds}; largest {max(fig.sizes) / 1024:.0f} KB; cache " + \
        ", ".join(f"{k} {v}" for k, v in states.items())
    FIGURES.append(fig)
    print(fig.line(), flush=True)
    return fig


# --- the figures --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Auth:
    police: dict[str, str]
    viewer: dict[str, str]
    province_viewer: dict[str, str]
    planner: dict[str, str]


def accounts(url: str, place: Place) -> Auth:
    def bearer(role: str, **scope: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {token_for(url, role, **scope)}"}

    return Auth(bearer("police"), bearer("viewer"),
                bearer("viewer", scope_level="province", scope_code=place.province), bearer("planner"))


def items_figures(client: httpx.Client, auth: Auth, place: Place, repeats: int) -> None:
    recent = f"{place.last - dt.timedelta(days=90)}/{place.last}"
    print("== items (GeoJSON pages; aggregates over all incidents unless a datetime is shown): "
          "aggregate pages cold = computed (and stored with the pages after them), cached = repeats")
    measure(client, "items", "incidents, police, ~2 km bbox, 90 days, limit 1000",
            f"/collections/incidents/items?limit=1000&bbox={place.bbox()}&datetime={recent}", auth.police)
    aggregates = [(f"incident_hexagons, province {place.province} (scoped viewer), cell {hex_cell(z)}",
                   f"/collections/incident_hexagons/items?limit=10000&zoom={z}&cell={hex_cell(z)}",
                   auth.province_viewer) for z in (9, 12)]
    aggregates += [
        ("incident_hexagons, whole country (viewer), cell 2000, first page",
         "/collections/incident_hexagons/items?limit=10000&zoom=6&cell=2000", auth.viewer),
        (f"incident_counts_village, province {place.province} (viewer)",
         f"/collections/incident_counts_village/items?limit=10000&zoom=10&province_code={place.province}",
         auth.viewer),
        ("incident_counts_commune, whole country (viewer, choropleth)",
         "/collections/incident_counts_commune/items?limit=10000&zoom=6", auth.viewer),
        ("incident_counts_commune, whole country, 90 days",
         f"/collections/incident_counts_commune/items?limit=10000&zoom=6&datetime={recent}", auth.viewer)]
    for label, path, headers in aggregates:
        first = measure_cached(client, label, path, headers, repeats, group="items",
                               warm_path=path.replace("limit=10000", "limit=9999"))
        nxt = [link["href"] for link in first.json().get("links", []) if link["rel"] == "next"]
        if nxt:  # the page the map asks next: stored when the first was computed
            measure_cached(client, label.replace("first page", "second page (its next link)"), nxt[0],
                           headers, repeats, warm=False, group="items")


def measure_cached(client: httpx.Client, label: str, path: str, headers: dict[str, str],
                   repeats: int, warm: bool = True, group: str = "analysis",
                   warm_path: str | None = None) -> httpx.Response:
    """The first request (cold: computed and stored in the result cache), then `repeats`
    timed ones (cached: one lookup); two figures, each with the X-Result-Cache states seen.
    `warm`: first the same analysis under another key (an extra query item the API ignores),
    so the cold figure is the computation on a warm server (imports, pools, buffers), as the
    figures before the cache were, not the server's first-request costs; `warm_path` another
    request of the same work where the API refuses unknown items (layer pages: another limit)."""
    if warm:
        client.get(warm_path or f"{path}{'&' if '?' in path else '?'}bench_warmup=1", headers=headers)
    started = time.perf_counter()
    first = client.get(path, headers=headers)
    cold = Figure(group, f"{label}, cold", [time.perf_counter() - started], [len(first.content)],
                  Counter([first.status_code]))
    cold.note = f"cache {first.headers.get('x-result-cache', '-')}; {_note_of(first)}".rstrip("; ")
    FIGURES.append(cold)
    print(cold.line(), flush=True)
    hot = Figure(group, f"{label}, cached")
    states: Counter = Counter()
    for _ in range(repeats):
        started = time.perf_counter()
        r = client.get(path, headers=headers)
        hot.times.append(time.perf_counter() - started)
        hot.sizes.append(len(r.content))
        hot.statuses[r.status_code] += 1
        states[r.headers.get("x-result-cache", "-")] += 1
    hot.note = "cache " + ", ".join(f"{k} {v}" for k, v in states.items())
    FIGURES.append(hot)
    print(hot.line(), flush=True)
    return first


def page_simplify(zoom: int) -> float:
    """The simplification web/static/app.js asks coverage for at a zoom: half a screen pixel in
    metres (api/features.py's rule for `zoom`), at most the API's 5,000 m."""
    return min(5000.0, round(156_543.03 * 0.96 / 2 ** zoom / 2, 1))


def touch_a_model(url: str) -> None:
    """A write that changes nothing but the models' data version (a no-op rename): what any edit
    of a model does to the caches, without moving anything."""
    with _engine(url).begin() as conn:
        conn.execute(text("UPDATE security_model SET name = name "
                          "WHERE id = (SELECT min(id) FROM security_model)"))


def analysis_figures(client: httpx.Client, auth: Auth, place: Place, repeats: int, url: str) -> None:
    print(f"== analyses (province {place.province}; police; the web page's parameters): cold = the "
          "first request (computed, stored in the shared result cache), cached = the repeats")
    year = f"start={place.last - dt.timedelta(days=364)}&end={place.last}"
    p, on = place.province, f"date={place.last}"
    for label, path in (
        ("Gi* hot spots, 500 m hexagons, province",
         f"/analytics/hotspots?province={p}&unit=hex&cell=500&{year}"),
        ("Gi* hot spots, villages, province", f"/analytics/hotspots?province={p}&unit=village&{year}"),
        ("KDE heatmap PNG alone, province", f"/analytics/heatmap?format=png&size=512&province={p}&{year}"),
        ("DBSCAN clusters (200 m, 5 points), province", f"/analytics/clusters?province={p}&{year}"),
    ):
        measure_cached(client, label, path, auth.police, repeats)
    first = measure_cached(client, "KDE heatmap.json, province",
                           f"/analytics/heatmap.json?province={p}&{year}", auth.police, repeats)
    if first.status_code == 200:
        # the image the page loads next: stored by heatmap.json under its png_url's key
        png_url = first.json()["png_url"]
        measure_cached(client, "KDE heatmap PNG after heatmap.json (its png_url)", png_url, auth.police,
                       repeats, warm=False)
    for label, path in (
        ("coverage per commune, province", f"/analytics/coverage/communes?{on}&province={p}"),
        ("coverage per commune, whole country (API default simplify 20 m)",
         f"/analytics/coverage/communes?{on}"),
        (f"coverage per commune, whole country (the page at zoom 6: simplify {page_simplify(6):g} m)",
         f"/analytics/coverage/communes?{on}&simplify={page_simplify(6):g}"),
        ("coverage per village, province", f"/analytics/coverage/villages?{on}&province={p}"),
        ("uncovered villages, province", f"/analytics/coverage/uncovered?level=village&{on}&province={p}"),
    ):
        measure_cached(client, label, path, auth.police, repeats)
    # The cold figures above follow a warm-up under another key, which also left the worker its
    # reach lookup (geo.reach keeps it per data version of units and models). After an edit of a
    # model the page's coverage works its reach keys out again (the overlays stay stored: the
    # model did not move).
    touch_a_model(url)
    measure_cached(client, "coverage per commune, whole country (page zoom 6), after an edit of a model",
                   f"/analytics/coverage/communes?{on}&simplify={page_simplify(6):g}", auth.police, repeats,
                   warm=False)


def planner_figures(client: httpx.Client, auth: Auth, place: Place, repeats: int) -> None:
    from bench.bench_planner import _round_trip

    print(f"== planner (province {place.province}, planner account, run=direct)")
    client = httpx.Client(base_url=client.base_url, headers=auth.planner, timeout=600)  # _round_trip's auth
    body = {"scope": {"province": place.province}, "date": str(place.last), "radius_m": 500, "p": 10,
            "weights": {"population": 1, "incidents": 20, "no_model": 2000},
            "candidates": {"kinds": ["villages", "institutions", "launch_points"]}}
    took, out = _round_trip(client, {**body, "run": "direct"})  # also the warm-up
    sites = [{"lon": f["geometry"]["coordinates"][0], "lat": f["geometry"]["coordinates"][1]}
             for f in out["features"] if f.get("geometry", {}).get("type") == "Point"][:10]
    print(f"  first suggestion (cold inputs) {took:.2f} s, {len(sites)} sites")
    measure(client, "planner", "planner suggest, province, p=10", "/planner/suggest", auth.planner,
            body={**body, "run": "direct"}, repeats=repeats)
    if sites:
        measure(client, "planner", "planner evaluate, province, 10 sites", "/planner/evaluate", auth.planner,
                body={**body, "sites": sites}, repeats=repeats)
    client.close()


def tile_figures(url: str, auth: Auth, place: Place, rounds: int) -> None:
    layers = (("incidents", auth.police, "police"), ("incident_hexagons", auth.viewer, "viewer"))
    print(f"== tiles over {place.province_name}: 3x3 tiles around the spot, cold = tile cache off "
          "(every tile built), cached = shared tile cache on and filled")
    for cached in (False, True):
        port = free_port()
        with our_server(url, port, cache_mb=TILE_CACHE_MB if cached else 0), \
                httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
            for layer_id, headers, role in layers:
                for z in TILE_ZOOMS:
                    stage = "cached" if cached else "cold"
                    measure_tiles(client, "tiles", f"{layer_id} z{z} ({role}), {stage}", layer_id,
                                  tile_block(place, z), headers, rounds)


# --- query plans --------------------------------------------------------------------------------

NODE = re.compile(r"^(?P<indent>\s*)(?:->\s+)?(?P<node>.+?)\s+\(cost=[^)]*\)\s+"
                  r"(?:\(actual time=[\d.]+\.\.(?P<ms>[\d.]+) rows=(?P<rows>\d+) loops=(?P<loops>\d+)\)"
                  r"|\(never executed\))")


def plan_summary(lines: list[str], expect_index: bool) -> list[str]:
    """Execution time, the first Buffers line and every scan node (relation, rows, time)."""
    out = []
    exec_ms = next((ln.split(":")[1].strip() for ln in lines if ln.startswith("Execution Time")), "?")
    plan_ms = next((ln.split(":")[1].strip() for ln in lines if ln.startswith("Planning Time")), "?")
    buffers = next((ln.strip() for ln in lines if ln.strip().startswith("Buffers:")), "")
    out.append(f"execution {exec_ms} (planning {plan_ms}); top {buffers}")
    for ln in lines:
        m = NODE.match(ln)
        if not m:
            continue
        node = m.group("node")
        if not any(k in node for k in ("Scan", "Aggregate", "Sort", "Join", "Nested Loop", "CTE")):
            continue
        depth = len(m.group("indent")) // 3
        if m.group("rows") is None:
            out.append(f"{'  ' * depth}{node}: never executed")
            continue
        rows, loops = int(m.group("rows")), int(m.group("loops"))
        out.append(f"{'  ' * depth}{node}: rows {rows:,}{f' x {loops:,} loops' if loops > 1 else ''}, "
                   f"{float(m.group('ms')):.0f} ms")
        if re.match(r"(Parallel )?Seq Scan on incident\b", node):
            out.append(f"{'  ' * depth}!! Seq Scan over incident ({rows * loops:,} rows) "
                       + ("where an index should serve (the query has a bbox or time filter)" if expect_index
                          else "(expected: nothing narrows the incidents here)"))
    return out


@dataclass(frozen=True)
class Statement:
    label: str
    sql: str
    params: dict[str, Any]
    expect_index: bool


def _principal(role: str, scope_code: str | None = None):
    from api.deps import Principal

    return Principal(f"bench-{role}", role, "province" if scope_code else "all", scope_code)


def statements(place: Place) -> list[Statement]:
    """The API's own statements (api.features.build_query + layers builders) for the heaviest asks."""
    from api.features import build_query, resolve
    from layers.sql import count_query, counted_items_query, items_query
    from layers.tiles import tile_statements

    police, viewer = _principal("police"), _principal("viewer")
    province_viewer = _principal("viewer", place.province)
    recent = f"{place.last - dt.timedelta(days=90)}/{place.last}"

    def query(layer_id: str, principal, params: dict[str, str]):
        return build_query(resolve(layer_id, principal), principal, params)

    out = []
    q = query("incidents", police, {"bbox": place.bbox(), "datetime": recent})
    out.append(Statement("incident items, bbox + 90 days: count", *count_query(q), True))
    out.append(Statement("incident items, bbox + 90 days: page of 1000", *items_query(q, 1000, 0), True))
    q = query("incident_hexagons", province_viewer, {"zoom": "9", "cell": "2000"})
    out.append(Statement(f"incident_hexagons items, province {place.province}, cell 2000",
                         *counted_items_query(q, 10000, 0), True))
    q = query("incident_counts_village", viewer, {"zoom": "10", "province_code": place.province})
    out.append(Statement(f"incident_counts_village items, province {place.province}",
                         *counted_items_query(q, 10000, 0), True))
    q = query("incident_counts_commune", viewer, {"zoom": "6"})
    out.append(Statement("incident_counts_commune items, whole country (choropleth)",
                         *counted_items_query(q, 10000, 0), False))
    for layer_id, principal in (("incidents", police), ("incident_hexagons", viewer)):
        z, x, y = tile_block(place, 11)[4]
        st = next(tile_statements(query(layer_id, principal, {}), z, x, y))
        sql = st.sql.strip()
        out.append(Statement(f"{layer_id} tile z{z}/{x}/{y}", sql, st.params, True))
    return out


def explain_all(url: str, place: Place) -> None:
    print("== query plans: EXPLAIN (ANALYZE, BUFFERS) of the API's own statements (JIT off as the API)")
    engine = _engine(url)
    try:
        for st in statements(place):
            with engine.connect() as conn:
                with conn.begin() as tx:
                    started = time.perf_counter()
                    lines = list(conn.execute(text("EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) " + st.sql),
                                              st.params).scalars())
                    took = time.perf_counter() - started
                    tx.rollback()
            print(f"-- {st.label} (wall {took * 1e3:.0f} ms)")
            for ln in plan_summary(lines, st.expect_index):
                print(f"   {ln}")
    finally:
        engine.dispose()


# --- main ---------------------------------------------------------------------------------------

@contextmanager
def database() -> Iterator[tuple[str, bool]]:
    """(url, national?): ANTT_BENCH_DATABASE_URL, else the small throwaway database."""
    external = os.environ.get("ANTT_BENCH_DATABASE_URL")
    if not external:
        print("!!! ANTT_BENCH_DATABASE_URL not set: falling back to Hải Phòng + demo, NOT the national "
              "data / chưa đặt ANTT_BENCH_DATABASE_URL: KHÔNG phải dữ liệu toàn quốc !!!", flush=True)
    with bench_database() as url:
        yield url, bool(external)


def clean_up(url: str, since: dt.datetime) -> None:
    """Memo and cache rows made while the bench ran (never data): reach_cache, tile_cache
    entries of the two layers it tiled and result_cache entries (a cache: an entry another
    server stored meanwhile is only built again)."""
    with _engine(url).begin() as conn:
        reach = conn.execute(text("DELETE FROM reach_cache WHERE computed_at >= :t"), {"t": since}).rowcount
        tiles = conn.execute(text(
            "DELETE FROM tile_cache WHERE created_at >= :t AND split_part(layer, ':', 1) = ANY(:layers)"),
            {"t": since, "layers": ["incidents", "incident_hexagons"]}).rowcount
        results = conn.execute(text("DELETE FROM result_cache WHERE created_at >= :t"), {"t": since}).rowcount
    print(f"cleaned up: {reach:,} reach_cache, {tiles:,} tile_cache and {results:,} result_cache rows "
          "made during the bench")


def markdown_table() -> None:
    print("\n| request | p50 | p95 | n | size |\n|---|---|---|---|---|")
    for f in FIGURES:
        size = statistics.median(f.sizes) / 1024 if f.sizes else 0
        print(f"| {f.label} | {f.p50 * 1e3:,.0f} ms | {f.p95 * 1e3:,.0f} ms | {len(f.times)} "
              f"| {size:,.0f} KB |")


def main() -> None:
    heavy = int(os.environ.get("ANTT_BENCH_HEAVY_REPEATS", 3))
    skip = set(os.environ.get("ANTT_BENCH_NATIONAL_SKIP", "").split(","))
    print(f"before: {load_average()}", flush=True)
    with database() as (url, national):
        with _engine(url).connect() as conn:
            since = conn.execute(text("SELECT now()")).scalar_one()
        place = find_place(url)
        print_data(url, national, place)
        auth = accounts(url, place)
        try:
            if "explain" not in skip:
                explain_all(url, place)
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            with our_server(url, port, result_cache_mb=RESULT_CACHE_MB), \
                    httpx.Client(base_url=base, timeout=600) as client:
                if "items" not in skip:
                    items_figures(client, auth, place, heavy)
                if "analysis" not in skip:
                    analysis_figures(client, auth, place, heavy, url)
                if "planner" not in skip:
                    planner_figures(client, auth, place, heavy)
            if "tiles" not in skip:
                tile_figures(url, auth, place, int(os.environ.get("ANTT_BENCH_TILE_ROUNDS", 2)))
        finally:
            clean_up(url, since)
        markdown_table()
        print(f"data: {'national' if national else 'NOT national (fallback)'}; after: {load_average()}")


if __name__ == "__main__":
    main()
