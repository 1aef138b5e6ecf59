"""Vector tiles (MVT, WebMercatorQuad) and TileJSON for every layer of the catalogue.

Role rules are the features' rules (incident points only for police/admin). Tiles are
private to the caller (they depend on role and scope), so `Cache-Control: private`; the ETag
is a hash of the bytes, and a matching If-None-Match gets 304 without a body.
"""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import Connection, text

from api.deps import Principal, get_conn, get_principal
from api.features import VN_BBOX, build_query, resolve
from api.problems import Problem
from layers.sql import extent_query, no_jit
from layers.tiles import MAX_TILE_BYTES, MAX_ZOOM, TileTooLarge, build_tile, valid_tile

MVT = "application/vnd.mapbox-vector-tile"
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


def make_router() -> APIRouter:
    router = APIRouter(tags=["tiles"])

    @router.get("/collections/{collection_id}/tiles/WebMercatorQuad/{z}/{x}/{y}",
                summary="Ô bản đồ vector / vector tile (MVT)",
                responses={200: {"content": {MVT: {}}}, 204: {"description": "Ô trống / empty tile"}})
    def tile(collection_id: str, z: int, x: int, y: int, request: Request,
             principal: Principal = Depends(get_principal),
             conn: Connection = Depends(get_conn)) -> Response:
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
            from api.audit import record

            record(conn, principal, "read_points", "incidents",
                   detail={"tile": f"{z}/{x}/{y}", "count": built.features})
            conn.commit()
        if not built.data:
            return Response(status_code=204, headers=headers)
        etag = _etag(built.data)
        headers["ETag"] = etag
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        return Response(built.data, media_type=MVT, headers=headers)

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
