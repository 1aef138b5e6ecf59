"""Vector tiles (MVT, WebMercatorQuad) and TileJSON for every layer of the catalogue.

Role rules are the features' rules (incident points only for police/admin). Tiles are
private to the caller (they depend on role and scope), so `Cache-Control: private`; the ETag
is a hash of the bytes, and a matching If-None-Match gets 304 without a body.

The tile endpoint is the hot path (a map view asks for 10-20 tiles at once), so its fixed
cost per request is kept small (figures: `antt bench run tiles`):
- It is served by a plain Starlette route placed in front of the documented FastAPI route
  (same path, same function `serve_tile`): FastAPI's per-request parameter and dependency
  machinery cost ~0.3 ms, a third of a small tile's query. Path segments that are not plain
  integers fall through to the FastAPI route, which answers as it always did (422/404).
- No sync dependencies: each one cost a trip to the threadpool (and releasing the connection
  one more, after the response). The caller is resolved (`api.deps.authenticate`, usually
  from its few-seconds cache), the tile built and the audit row written on ONE pooled
  connection in ONE threadpool call.
- The connection is in autocommit: each statement is a single read (or the audit insert), so
  BEGIN and COMMIT/ROLLBACK would only add round trips. `SET LOCAL jit = off` still holds: the
  tile SQL is one multi-statement string, which PostgreSQL runs as one implicit transaction.
- The tile statement runs on the DBAPI cursor, its SQL compiled once (`layers.tiles`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import Connection, text
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from antt.db import get_engine
from api.audit import record
from api.deps import Principal, authenticate, get_conn, get_principal, oauth2
from api.features import VN_BBOX, build_query, resolve
from api.problems import Problem
from layers.sql import extent_query, no_jit
from layers.tiles import MAX_TILE_BYTES, MAX_ZOOM, TileTooLarge, build_tile, valid_tile

MVT = "application/vnd.mapbox-vector-tile"
TILE_PATH = "/collections/{collection_id}/tiles/WebMercatorQuad/{z}/{x}/{y}"
CACHE_CONTROL = "private, max-age=300"
_TYPES = {"string": "String", "integer": "Number", "number": "Number", "boolean": "Boolean",
          "date": "String", "datetime": "String"}


def _etag(data: bytes) -> str:
    return '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


@contextmanager
def autocommit_connection() -> Iterator[Connection]:
    """A pooled connection whose statements commit one by one, back in transaction mode before
    it returns to the pool. psycopg2's own flag, not SQLAlchemy's isolation_level option: that
    one costs a `SET default_transaction_isolation` round trip on the way in and on the way out."""
    with get_engine().connect() as conn:
        dbapi = conn.connection.driver_connection
        dbapi.autocommit = True
        try:
            yield conn
        finally:
            if not dbapi.closed:
                dbapi.autocommit = False


def serve_tile(request: Request, token: str | None, collection_id: str, z: int, x: int,
               y: int) -> Response:
    """The whole tile request, run in one threadpool call (auth, tile, audit; one connection)."""
    with autocommit_connection() as conn:
        return _tile(conn, collection_id, z, x, y, request, authenticate(request, token, conn))


async def _tile_fast_path(request: Request) -> Response:
    if request.method != "GET":  # Starlette adds HEAD to a GET route; the FastAPI route has none
        raise HTTPException(405, headers={"Allow": "GET"})
    p = request.path_params
    token = await oauth2(request)  # exactly what Depends(oauth2) does
    return await run_in_threadpool(serve_tile, request, token, p["collection_id"], p["z"], p["x"],
                                   p["y"])


def _tile(conn: Connection, collection_id: str, z: int, x: int, y: int, request: Request,
          principal: Principal) -> Response:
    layer = resolve(collection_id, principal)
    if not valid_tile(z, x, y):
        raise Problem(404, f"Không có ô {z}/{x}/{y} (z 0–{MAX_ZOOM}, x và y từ 0 đến 2^z − 1)",
                      f"No tile {z}/{x}/{y} (z 0–{MAX_ZOOM}, x and y from 0 to 2^z − 1)")
    q = build_query(layer, principal, dict(request.query_params))  # datetime, filters...
    try:
        built = build_tile(conn, q, z, x, y)
    except TileTooLarge as exc:
        raise Problem(413, f"Ô {z}/{x}/{y} vượt quá {MAX_TILE_BYTES} byte kể cả khi tổng hợp; "
                      "hãy phóng to hoặc lọc thêm",
                      f"Tile {z}/{x}/{y} is over {MAX_TILE_BYTES} bytes even when aggregated; "
                      "zoom in or filter") from exc
    headers = {"Cache-Control": CACHE_CONTROL, "X-Tile-Features": str(built.features),
               "X-Tile-Generalisation": built.generalisation, "Vary": "Authorization, Cookie"}
    if layer.id == "incidents" and built.features:  # exact points: audited (api/audit.py)
        record(conn, principal, "read_points", "incidents",
               detail={"tile": f"{z}/{x}/{y}", "count": built.features})
        conn.commit()  # a no-op in autocommit (the insert is committed already); kept explicit
    if not built.data:
        return Response(status_code=204, headers=headers)
    etag = _etag(built.data)
    headers["ETag"] = etag
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(built.data, media_type=MVT, headers=headers)


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
            no_jit(conn)
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
