"""Vector tiles (MVT, WebMercatorQuad) and TileJSON for every layer of the catalogue.

Role rules are the features' rules (incident points only for police/admin).

Caching by the book (layers/versions.py, layers/tilecache.py):
- The ETag is the tile's key: a hash of its statement (layer, z/x/y, filters, the caller's
  role class and scope as they enter the SQL) under the data version of the tables it reads,
  which grows with every committed write to them. It is known before the tile is built, so a
  matching If-None-Match gets 304 at the cost of one version lookup.
- Tiles that hold no exact points, asked by an account scoped to the whole country, without
  the unsuppressed counts only police see, are the same for every such account:
  `Cache-Control: public, no-cache` — a shared cache may keep one copy for all, but must
  revalidate each use with us, so every request is still authenticated and a caller with
  another role or scope gets another ETag, hence its own tile. All others are
  `private, no-cache` (and `Vary: Authorization, Cookie`). Exact incident points are built or
  taken from the server cache and audited on every request, 304 or not.
- The server-side cache is shared by all workers (table tile_cache on the primary); a
  repeated tile costs the version lookup and one indexed read (`X-Tile-Cache: hit`).
- In front of it, each worker keeps a memo of the tiles it served (ANTT_TILE_MEMO_MB,
  layers/versionwatch.py): a repeated tile is answered on the event loop, no connection, no
  threadpool (`X-Tile-Cache: memo`), when all of these hold: the caller is in the principal
  cache (`api.deps.cached_principal`); the layer is not `incidents` (exact points are audited
  on every request, so they take the normal path); the tables the tile reads are known tracked
  tables without asking the database; the process's LISTEN connection for `antt_data`
  (migration 0015) is up with a recent heartbeat; no write to those tables has been notified
  since the entry's database lookup began; and the caller's own last write position (the
  `antt_lsn` cookie or `X-Antt-Min-LSN`) is not past the position up to which notifications
  have all been received. Consistency: a writer never reads its own write stale; another
  client may get the previous tile for the notification delay after a commit (milliseconds),
  the bound the replica path already accepts for clients without a position. Entries are
  filled by the normal path, only when the tile was read on the primary (a replica may be
  behind the notifications). A memo answer says `X-Antt-Database: memo`.

The tile endpoint is the hot path (a map view asks for 10-20 tiles at once), so its fixed
cost per request is kept small (figures: `antt bench run tiles`):
- It is served by a plain Starlette route placed in front of the documented FastAPI route
  (same path, same function `serve_tile`): FastAPI's per-request parameter and dependency
  machinery cost ~0.3 ms, a third of a small tile's query. Path segments that are not plain
  integers fall through to the FastAPI route, which answers as it always did (422/404).
- No sync dependencies: each one cost a trip to the threadpool (and releasing the connection
  one more, after the response). The caller is resolved (`api.deps.authenticate`, usually
  from its few-seconds cache), the tile built and the audit row written on ONE pooled
  connection in ONE threadpool call (plus a primary connection for the cache when the tile is
  read from a replica).
- The connection is in autocommit: each statement is a single read (or the audit insert), so
  BEGIN and COMMIT/ROLLBACK would only add round trips (JIT is off for every session:
  antt.db.SESSION_OPTIONS).
- The tile statement runs on the DBAPI cursor, its SQL compiled once (`layers.tiles`).
"""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from antt.db import get_engine, is_replica
from antt.settings import get_settings
from api.audit import record
from api.deps import Principal, authenticate, cached_principal, get_conn, get_principal, oauth2
from api.features import PRIVATE, PUBLIC, VN_BBOX, build_query, resolve
from api.problems import Problem
from api.readroute import (
    PRIMARY_ONLY,
    READ_FROM,
    autocommit,
    autocommit_connection,
    cache_lookup,
    get_router,
    is_replica_failure,
    min_lsn_of,
    open_read_connection,
    release,
)
from layers import tilecache, versionwatch
from layers.sql import extent_query
from layers.tiles import (
    MAX_TILE_BYTES,
    MAX_ZOOM,
    Tile,
    TileTooLarge,
    build_tile,
    tile_statements,
    valid_tile,
)
from layers.versions import (
    etag_matches,
    etag_of,
    known_version_tables,
    statement_digest,
    version_tables,
    versioned_key,
)

MVT = "application/vnd.mapbox-vector-tile"
MEMO_OVERHEAD = 256  # bytes counted per memo entry besides the tile (key, token, objects)
TILE_PATH = "/collections/{collection_id}/tiles/WebMercatorQuad/{z}/{x}/{y}"
_TYPES = {"string": "String", "integer": "Number", "number": "Number", "boolean": "Boolean",
          "date": "String", "datetime": "String"}


def serve_tile(request: Request, token: str | None, collection_id: str, z: int, x: int,
               y: int) -> Response:
    """The whole tile request, run in one threadpool call (auth, tile, audit; one connection).
    Read from a replica when one is fit (api/readroute.py); if it dies under the tile, the
    tile is built again on the primary."""
    for attempt in (1, 2):
        conn = open_read_connection(request.scope, min_lsn_of(request))
        try:
            with autocommit(conn):
                return _tile(conn, collection_id, z, x, y, request,
                             authenticate(request, token, conn))
        except DBAPIError as exc:
            if attempt == 2 or not is_replica(conn.engine) or not is_replica_failure(exc):
                raise
            get_router().lost(conn.engine, exc)
            request.scope.setdefault("state", {})[PRIMARY_ONLY] = True
        finally:
            release(conn)
    raise AssertionError("unreachable")


async def _tile_fast_path(request: Request) -> Response:
    if request.method != "GET":  # Starlette adds HEAD to a GET route; the FastAPI route has none
        raise HTTPException(405, headers={"Allow": "GET"})
    p = request.path_params
    token = await oauth2(request)  # exactly what Depends(oauth2) does
    memo = _from_memo(request, token, p["collection_id"], p["z"], p["x"], p["y"])
    if memo is not None:
        return memo
    return await run_in_threadpool(serve_tile, request, token, p["collection_id"], p["z"], p["x"],
                                   p["y"])


def _memo_bytes() -> int:
    return int(get_settings().tile_memo_mb * 1024 * 1024)


def _from_memo(request: Request, token: str | None, collection_id: str, z: int, x: int,
               y: int) -> Response | None:
    """The tile from this worker's memo, or None when any condition of the module docstring
    fails (then the normal path answers, unchanged). Pure Python: no I/O, run on the loop."""
    if collection_id == "incidents" or _memo_bytes() <= 0:
        return None
    engine = get_engine()
    watch = versionwatch.running(engine)
    if watch is None or not watch.healthy() or not watch.covers(min_lsn_of(request)):
        return None
    principal = cached_principal(request, token)
    if principal is None:
        return None
    try:
        layer = resolve(collection_id, principal)
        if layer.id == "incidents" or not valid_tile(z, x, y):
            return None
        q = build_query(layer, principal, dict(request.query_params))
        first = next(tile_statements(q, z, x, y))
    except Exception:  # noqa: BLE001 - whatever is wrong, the normal path says it properly
        return None
    tables = known_version_tables(engine, first.sql)
    if tables is None:
        return None
    digest = statement_digest("tile", first.sql, first.params, MAX_TILE_BYTES)
    entry = watch.memo.get(digest, watch.token(tables))
    if entry is None:
        return None
    version, tile = entry
    request.scope.setdefault("state", {})[READ_FROM] = "memo"  # X-Antt-Database: no database
    headers = _cache_headers(principal, layer, q, tables, points=False)
    etag = headers["ETag"] = etag_of(versioned_key(digest, version))
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    headers |= {"X-Tile-Cache": "memo", "X-Tile-Features": str(tile.features),
                "X-Tile-Generalisation": tile.generalisation}
    if not tile.data:
        return Response(status_code=204, headers=headers)
    return Response(tile.data, media_type=MVT, headers=headers)


def _cache_headers(principal: Principal, layer, q, tables: tuple[str, ...] | None,
                   points: bool) -> dict[str, str]:
    """Cache-Control (and Vary): public only for tiles every whole-country caller of the same
    role class gets alike (see the module docstring)."""
    public = (tables is not None and not points and principal.scope_level == "all"
              and not (layer.counts_incidents and q.suppress_below == 0))
    headers = {"Cache-Control": PUBLIC if public else PRIVATE}
    if not public:
        headers["Vary"] = "Authorization, Cookie"
    return headers


def _lookup(conn: Connection, digest: str, tables: tuple[str, ...],
            use_cache: bool) -> tuple[int, Tile | None]:
    """The data version and the cached tile under it (api.readroute.cache_lookup)."""
    version, payload = cache_lookup(conn, tables, digest, use_cache, tilecache.TABLE)
    return version, tilecache.tile_of(payload)


def _store(conn: Connection, key: str, group: str, version: int, tile: Tile, max_bytes: int) -> None:
    if not is_replica(conn.engine):
        tilecache.put(conn, key, group, version, tile, max_bytes)
        return
    try:
        with autocommit_connection() as primary:
            tilecache.put(primary, key, group, version, tile, max_bytes)
    except DBAPIError:
        pass


def _tile(conn: Connection, collection_id: str, z: int, x: int, y: int, request: Request,
          principal: Principal) -> Response:
    layer = resolve(collection_id, principal)
    if not valid_tile(z, x, y):
        raise Problem(404, f"Không có ô {z}/{x}/{y} (z 0–{MAX_ZOOM}, x và y từ 0 đến 2^z − 1)",
                      f"No tile {z}/{x}/{y} (z 0–{MAX_ZOOM}, x and y from 0 to 2^z − 1)")
    q = build_query(layer, principal, dict(request.query_params))  # datetime, filters...
    first = next(tile_statements(q, z, x, y))  # the statement decides the rest of the ladder
    tables = version_tables(conn, first.sql)  # None: it reads a table without a data version
    points = layer.id == "incidents"  # exact points: audited on every request (api/audit.py)
    max_bytes = int(get_settings().tile_cache_mb * 1024 * 1024) if tables is not None else 0
    asked = request.headers.get("if-none-match")
    headers = _cache_headers(principal, layer, q, tables, points)
    tile, etag, watch, token = None, None, None, None
    if tables is not None:
        digest = statement_digest("tile", first.sql, first.params, MAX_TILE_BYTES)
        memo_bytes = _memo_bytes()
        if memo_bytes > 0 and not points and not is_replica(conn.engine):
            watch = versionwatch.watch(conn.engine, memo_bytes)
            token = watch.token(tables)  # read BEFORE the lookup (layers/versionwatch.py)
        version, tile = _lookup(conn, digest, tables, max_bytes > 0)
        key = versioned_key(digest, version)
        etag = headers["ETag"] = etag_of(key)
        if not points and etag_matches(asked, etag):
            return Response(status_code=304, headers=headers)
        headers["X-Tile-Cache"] = "hit" if tile is not None else "miss"
    if tile is None:
        try:
            tile = build_tile(conn, q, z, x, y)
        except TileTooLarge as exc:
            raise Problem(413, f"Ô {z}/{x}/{y} vượt quá {MAX_TILE_BYTES} byte kể cả khi tổng hợp; "
                          "hãy phóng to hoặc lọc thêm",
                          f"Tile {z}/{x}/{y} is over {MAX_TILE_BYTES} bytes even when aggregated; "
                          "zoom in or filter") from exc
        if max_bytes > 0:
            _store(conn, key, f"{layer.id}:{','.join(tables)}", version, tile, max_bytes)
    if watch is not None:  # from the shared cache or built: this worker keeps it too
        watch.memo.put(digest, token, (version, tile), len(tile.data) + MEMO_OVERHEAD)
    if etag is None:  # not versioned: an ETag of the bytes (revalidation saves the transfer)
        etag = headers["ETag"] = etag_of(hashlib.md5(tile.data, usedforsecurity=False).hexdigest())
    headers |= {"X-Tile-Features": str(tile.features), "X-Tile-Generalisation": tile.generalisation}
    if points and tile.features:
        record(conn, principal, "read_points", "incidents",
               detail={"tile": f"{z}/{x}/{y}", "count": tile.features})
        conn.commit()  # a no-op in autocommit (the insert is committed already); kept explicit
    if not tile.data:
        return Response(status_code=204, headers=headers)
    if etag_matches(asked, etag):
        return Response(status_code=304, headers=headers)
    return Response(tile.data, media_type=MVT, headers=headers)


def make_router() -> APIRouter:
    router = APIRouter(tags=["tiles"])

    router.add_route(TILE_PATH.replace("{z}/{x}/{y}", "{z:int}/{x:int}/{y:int}"), _tile_fast_path,
                     methods=["GET"], include_in_schema=False)  # first: see the module docstring

    @router.get(TILE_PATH, summary="Ô bản đồ vector / vector tile (MVT)",
                responses={200: {"content": {MVT: {}}}, 204: {"description": "Ô trống / empty tile"}})
    def tile(collection_id: str, z: int, x: int, y: int, request: Request,
             token: str | None = Depends(oauth2)) -> Response:
        return serve_tile(request, token, collection_id, z, x, y)

    @router.get("/collections/{collection_id}/tilejson.json", summary="TileJSON 3.0.0")
    def tilejson(collection_id: str, request: Request, principal: Principal = Depends(get_principal),
                 conn: Connection = Depends(get_conn)) -> dict:
        layer = resolve(collection_id, principal)
        base = str(request.base_url).rstrip("/")
        if layer.id == "incident_hexagons":
            bounds = VN_BBOX  # computing every hexagon just for the extent is not worth it
        else:
            sql, p = extent_query(build_query(layer, principal, {}))
            row = conn.execute(text(sql), p).one()
            bounds = [round(v, 6) for v in row] if row[0] is not None else VN_BBOX
        center_zoom = max(layer.min_zoom, 8)
        return {
            "tilejson": "3.0.0",
            "name": layer.id,
            "description": f"{layer.vi} / {layer.en}",
            "scheme": "xyz",
            "tiles": [f"{base}/collections/{layer.id}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}"],
            "minzoom": layer.min_zoom,
            "maxzoom": layer.max_zoom,
            "bounds": bounds,
            "center": [round((bounds[0] + bounds[2]) / 2, 6), round((bounds[1] + bounds[3]) / 2, 6),
                       center_zoom],
            "vector_layers": [{
                "id": layer.id,
                "description": f"{layer.vi} / {layer.en}",
                "minzoom": layer.min_zoom,
                "maxzoom": layer.max_zoom,
                "fields": {p.name: _TYPES[p.type] for p in layer.tile_properties},
            }],
        }

    return router
