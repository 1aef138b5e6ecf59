"""OGC API - Features (Part 1, Core + GeoJSON) over the layer catalogue.

Endpoints only parse, check and run; the SQL lives in `layers.sql` and the layer definitions
in `layers.catalogue`. Paging is never silent: `limit` over the maximum is a 400 naming the
maximum (OGC allows clamping, but a clamped page is easily mistaken for the whole answer),
and every page carries numberMatched/numberReturned and next/prev links.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, text

from antt.settings import get_settings
from api import resultcache
from api.deps import Principal, get_conn, get_principal
from api.problems import Problem, field_error
from layers.access import LayerError, layer_for, visible_layers
from layers.catalogue import Layer
from layers.filters import (
    CRS84,
    FilterError,
    parse_bbox,
    parse_bool,
    parse_datetime,
    parse_limit,
    parse_offset,
)
from layers.resultcache import Entry
from layers.sql import (
    LayerQuery,
    count_query,
    counted_items_query,
    item_query,
    items_query,
    paged_items_query,
    rows_query,
    typed_value,
)
from layers.versions import (
    data_version,
    etag_matches,
    etag_of,
    statement_digest,
    version_tables,
    versioned_key,
)

GEOJSON = "application/geo+json"
PUBLIC = "public, no-cache"  # the same for every account allowed it; revalidated on each use
PRIVATE = "private, no-cache"
MB = 1024 * 1024
# Pages stored after the one asked of an aggregate layer (the whole country's 2,000 m
# hexagons are 3 pages of 10,000): at most this many more computed with it.
PAGES_AHEAD = 9
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
]
VN_BBOX = [102.0, 6.0, 118.0, 23.5]
# Query parameters with a meaning of their own; anything else must be a filterable property.
RESERVED = {"bbox", "bbox-crs", "datetime", "limit", "offset", "f", "simplify", "zoom"}
INCIDENT_PARAMS = {"category", "youth"}
HEX_PARAMS = {"cell"}
MAX_SIMPLIFY_M = 10_000.0


def problem_of(err: LayerError) -> Problem:
    """A layer-level error as bilingual problem+json naming the parameter."""
    errors = [field_error(err.field, err.vi, err.en)] if err.field else None
    return Problem(err.status, err.vi, err.en, errors)


def resolve(layer_id: str, principal: Principal) -> Layer:
    try:
        return layer_for(layer_id, principal)
    except LayerError as err:
        raise problem_of(err) from err


def _float(raw: str, name: str, lo: float, hi: float) -> float:
    try:
        value = float(raw)
    except ValueError as exc:
        raise FilterError(f"{name} phải là số", f"{name} must be a number", name) from exc
    if not (math.isfinite(value) and lo <= value <= hi):
        raise FilterError(f"{name} phải từ {lo:g} đến {hi:g}", f"{name} must be between {lo:g} and {hi:g}",
                          name)
    return value


def build_query(layer: Layer, principal: Principal, params: dict[str, str]) -> LayerQuery:
    """A LayerQuery from request parameters; raises Problem 400 naming a bad parameter."""
    try:
        allowed = RESERVED | (INCIDENT_PARAMS if layer.counts_incidents else set())
        allowed |= HEX_PARAMS if layer.id == "incident_hexagons" else set()
        props = {k: v for k, v in params.items() if k not in allowed}
        if params.get("datetime") and layer.time_field is None:
            raise FilterError(f"Lớp '{layer.id}' không có trường thời gian để lọc theo datetime",
                              f"Collection '{layer.id}' has no time field to filter by datetime", "datetime")
        q = LayerQuery(layer, principal,
                       bbox=parse_bbox(params.get("bbox"), params.get("bbox-crs")),
                       time=parse_datetime(params.get("datetime")), props=props)
        for name in props:
            prop = layer.prop(name)
            if prop is None or not prop.filterable:
                names = ", ".join(sorted([p.name for p in layer.properties if p.filterable] + list(allowed)))
                raise FilterError(f"Tham số '{name}' không dùng được với lớp '{layer.id}' (dùng: {names})",
                                  f"Parameter '{name}' is not supported by '{layer.id}' (use: {names})",
                                  name)
            typed_value(prop, props[name])  # a bad value is a 400 here, not an error at query time
        if "simplify" in params:
            q.simplify_m = _float(params["simplify"], "simplify", 0, MAX_SIMPLIFY_M) or None
        elif "zoom" in params:
            zoom = _float(params["zoom"], "zoom", 0, 24)
            # Half a screen pixel at that zoom, on the ground at Vietnam's latitudes (cos 16°).
            q.simplify_m = 156_543.03 * 0.96 / 2 ** zoom / 2
        if "category" in params:
            if not params["category"].strip() or params["category"].endswith("/"):
                raise FilterError("category phải là một đường dẫn như 'crime' hoặc 'crime/theft'",
                                  "category must be a path such as 'crime' or 'crime/theft'",
                                  "category")
            q.category = params["category"]
        if "youth" in params:
            q.youth = parse_bool(params["youth"], "youth")
        if "cell" in params:
            floor = 100 if principal.sees_points else get_settings().min_public_hex_m
            q.cell_m = int(_float(params["cell"], "cell", floor, 50_000))
        return q
    except LayerError as err:
        raise problem_of(err) from err


def _page_url(request: Request, offset: int, limit: int, **extra: str) -> str:
    query = dict(request.query_params) | {"offset": str(offset), "limit": str(limit)} | extra
    return f"{str(request.base_url).rstrip('/')}{request.url.path}?{urlencode(query)}"


def collection_doc(layer: Layer, base: str, extent: list[float]) -> dict[str, Any]:
    url = f"{base}/collections/{layer.id}"
    doc: dict[str, Any] = {
        "id": layer.id,
        "title": f"{layer.vi} / {layer.en}",
        "description": f"{layer.vi} / {layer.en}",
        "itemType": "feature",
        "crs": [CRS84],
        "extent": {"spatial": {"bbox": [extent], "crs": CRS84},
                   "temporal": {"interval": [[None, None]],
                                "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}},
        "links": [
            {"href": url, "rel": "self", "type": "application/json", "title": layer.en},
            {"href": f"{url}/items", "rel": "items", "type": GEOJSON, "title": "GeoJSON"},
            {"href": f"{url}/items?f=csv", "rel": "items", "type": "text/csv", "title": "CSV"},
            {"href": f"{url}/tilejson.json", "rel": "describedby", "type": "application/json",
             "title": "TileJSON"},
            {"href": f"{url}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}", "rel": "item",
             "type": "application/vnd.mapbox-vector-tile", "templated": True, "title": "MVT"},
        ],
    }
    return doc | {"layer": layer.describe(base)}


def scope_extent(conn: Connection, principal: Principal) -> list[float]:
    """The caller's area (communes valid today in scope), else all of Vietnam."""
    where, params = "TRUE", {}
    if principal.scope_level == "province":
        where, params = "province_code = :sc", {"sc": principal.scope_code}
    elif principal.scope_level == "commune":
        where, params = "code = :sc", {"sc": principal.scope_code}
    row = conn.execute(text(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e "
        f"FROM admin_unit WHERE level = 'commune' AND valid_to IS NULL AND {where}) x"), params).one()
    return [round(v, 6) for v in row] if row[0] is not None else VN_BBOX


def _csv_response(rows, columns: list[str], headers: dict[str, str], layer_id: str) -> Response:
    buf = io.StringIO()
    buf.write("\ufeff")  # Excel opens UTF-8 Vietnamese correctly only with a BOM
    writer = csv.writer(buf)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    headers = headers | {"Content-Disposition": f'attachment; filename="{layer_id}.csv"'}
    return Response(buf.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


def make_router() -> APIRouter:
    router = APIRouter(tags=["features"])

    @router.get("/", summary="Trang gốc OGC API / landing page", include_in_schema=True)
    def landing(request: Request, f: str | None = None):
        accept = request.headers.get("accept", "")
        wants_json = f == "json" or ("application/json" in accept and "text/html" not in accept)
        if not wants_json:
            try:  # the map page (api/web.py) shares the root path with the landing page
                from api.web import index
            except ImportError:
                index = None
            if index is not None:
                return index()
        base = str(request.base_url).rstrip("/")
        return {
            "title": "antt-map",
            "description": "Bản đồ phong trào toàn dân bảo vệ ANTQ / ANTQ movement map (OGC API)",
            "links": [
                {"href": f"{base}/?f=json", "rel": "self", "type": "application/json"},
                {"href": f"{base}/openapi.json", "rel": "service-desc",
                 "type": "application/vnd.oai.openapi+json;version=3.0"},
                {"href": f"{base}/docs", "rel": "service-doc", "type": "text/html"},
                {"href": f"{base}/conformance", "rel": "conformance", "type": "application/json"},
                {"href": f"{base}/collections", "rel": "data", "type": "application/json"},
                {"href": f"{base}/layers", "rel": "data", "type": "application/json",
                 "title": "Layer catalogue with styles and legends"},
            ],
        }

    @router.get("/conformance", summary="Lớp tuân thủ / conformance classes")
    def conformance() -> dict[str, list[str]]:
        return {"conformsTo": CONFORMANCE}

    @router.get("/layers", summary="Danh mục lớp bản đồ / layer catalogue for the caller",
                responses={401: {"description": "Chưa đăng nhập / not authenticated",
                                 "content": {"application/problem+json": {}}}})
    def layers(request: Request, principal: Principal = Depends(get_principal)) -> list[dict[str, Any]]:
        base = str(request.base_url).rstrip("/")
        return [layer.describe(base) for layer in visible_layers(principal)]

    @router.get("/collections", summary="Các lớp dữ liệu / collections",
                responses={401: {"description": "Chưa đăng nhập / not authenticated",
                                 "content": {"application/problem+json": {}}}})
    def collections(request: Request, principal: Principal = Depends(get_principal),
                    conn: Connection = Depends(get_conn)) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/")
        extent = scope_extent(conn, principal)
        return {
            "links": [{"href": f"{base}/collections", "rel": "self", "type": "application/json"}],
            "collections": [collection_doc(layer, base, extent) for layer in visible_layers(principal)],
        }

    @router.get("/collections/{collection_id}", summary="Một lớp dữ liệu / one collection")
    def collection(collection_id: str, request: Request, principal: Principal = Depends(get_principal),
                   conn: Connection = Depends(get_conn)) -> dict[str, Any]:
        layer = resolve(collection_id, principal)
        return collection_doc(layer, str(request.base_url).rstrip("/"), scope_extent(conn, principal))

    @router.get("/collections/{collection_id}/items", summary="Đối tượng / features",
                response_class=JSONResponse)
    def items(collection_id: str, request: Request, principal: Principal = Depends(get_principal),
              conn: Connection = Depends(get_conn)) -> Response:
        layer = resolve(collection_id, principal)
        params = dict(request.query_params)
        s = get_settings()
        try:
            fmt = params.get("f", "json")
            if fmt not in ("json", "geojson", "csv"):
                raise FilterError("f phải là json hoặc csv", "f must be json or csv", "f")
            limit = parse_limit(params.get("limit"), s.items_default_limit, s.items_max_limit)
            offset = parse_offset(params.get("offset"))
        except LayerError as err:
            raise problem_of(err) from err
        q = build_query(layer, principal, params)
        if fmt != "csv" and layer.kind == "aggregate":
            statements = [counted_items_query(q, limit, offset)]
        elif fmt != "csv":
            statements = [count_query(q), items_query(q, limit, offset)]
        else:
            statements = [count_query(q), rows_query(q, limit, offset)]
        # The ETag: the page's statements under the data version of the tables they read
        # (layers/versions.py), known before they run, so a revalidation costs one lookup.
        # A page that reads a table without a version gets an ETag of its bytes instead.
        tables = version_tables(conn, " ".join(sql for sql, _ in statements))
        points = layer.id == "incidents"  # exact points: every read audited, never shared
        public = (tables is not None and not points and fmt != "csv" and principal.scope_level == "all"
                  and not (layer.counts_incidents and q.suppress_below == 0))

        def page_digest(at: int) -> str:
            page = statements if at == offset else [counted_items_query(q, limit, at)]
            return statement_digest("items", fmt, str(request.base_url), *(x for st in page for x in st))

        digest = page_digest(offset)
        asked = request.headers.get("if-none-match", "")
        cache = {"Cache-Control": PUBLIC if public else PRIVATE}
        if not public:
            cache["Vary"] = "Authorization, Cookie"
        etag = None
        # Aggregate pages are kept in the shared result cache (api/resultcache.py) under the
        # page's versioned key: a repeated page costs a lookup, and computing one page stores
        # the pages after it (their source is the same GROUP BY), for the `next` links.
        max_bytes = int(s.result_cache_mb * MB)
        kept = (fmt != "csv" and layer.kind == "aggregate" and tables is not None and not points
                and max_bytes > 0)
        hit, later_pages = None, []
        # Count and page from one snapshot, so numberMatched agrees with the pages. (The
        # request's own connection: a second one per request could exhaust the pool.)
        conn.commit()  # end the principal lookup's transaction, to choose the isolation level
        conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            if tables is not None:
                version = data_version(conn, tables)  # first: the snapshot the page is read in
                etag = cache["ETag"] = etag_of(versioned_key(digest, version))
                if not points and etag_matches(asked, etag):
                    return Response(status_code=304, headers=cache)
                if kept:
                    hit = resultcache.fetch(conn, versioned_key(digest, version))
            if hit is not None:
                matched, features = int(hit.headers["matched"]), hit.body.decode()
            elif kept:
                sql, p = paged_items_query(q, limit, offset, PAGES_AHEAD + 1)
                rows = conn.execute(text(sql), p).all()
                matched, features = rows[0][0], rows[0][2]
                later_pages = [(offset + k * limit, body) for _, k, body in rows[1:]
                               if offset + k * limit < matched]
            elif fmt != "csv" and layer.kind == "aggregate":
                sql, p = statements[0]
                matched, features = conn.execute(text(sql), p).one()
            else:
                sql, p = statements[0]
                matched = conn.execute(text(sql), p).scalar_one()
            returned = max(0, min(limit, matched - offset))
            if fmt == "csv":
                sql, p = statements[1]
                result = conn.execute(text(sql), p)
                columns, rows = list(result.keys()), result.fetchall()
            elif layer.kind != "aggregate":
                sql, p = statements[1]
                features = conn.execute(text(sql), p).scalar_one()
        links = [{"href": _page_url(request, offset, limit), "rel": "self",
                  "type": "text/csv" if fmt == "csv" else GEOJSON},
                 {"href": f"{str(request.base_url).rstrip('/')}/collections/{layer.id}",
                  "rel": "collection", "type": "application/json"}]
        if offset + returned < matched:
            links.append({"href": _page_url(request, offset + limit, limit), "rel": "next", "type": GEOJSON})
        if offset > 0:
            links.append({"href": _page_url(request, max(0, offset - limit), limit), "rel": "prev",
                          "type": GEOJSON})
        headers = {"OGC-NumberMatched": str(matched), "OGC-NumberReturned": str(returned),
                   "Link": ", ".join(f'<{x["href"]}>; rel="{x["rel"]}"' for x in links
                                     if x["rel"] in ("next", "prev"))}
        if not headers["Link"]:
            del headers["Link"]
        if kept:
            cache[resultcache.CACHE_HEADER] = "hit" if hit is not None else "miss"
        if kept and hit is None:
            group = "items:" + ",".join(sorted(tables))
            pages = [(offset, features), *later_pages]
            resultcache.store(conn, version, [
                (versioned_key(page_digest(at), version), group,
                 Entry(body.encode(), GEOJSON, {"matched": str(matched)})) for at, body in pages], max_bytes)
        if points:  # exact points: every read is audited (api/audit.py)
            from api.audit import record

            with conn.begin():
                record(conn, principal, "read_points", "incidents",
                       detail={"params": params, "count": returned})
        if fmt == "csv":
            return _csv_response(rows, columns, headers, layer.id)
        if etag is None:  # not versioned: the page's own bytes (the timeStamp is not part of it)
            cache["ETag"] = etag = etag_of(hashlib.md5(f"{matched}|{features}".encode(),
                                                       usedforsecurity=False).hexdigest())
        headers |= cache
        if etag_matches(asked, etag):  # exact points: audited above, then 304 as any other
            return Response(status_code=304, headers=headers)
        head: dict[str, Any] = {"type": "FeatureCollection", "numberMatched": matched,
                                "numberReturned": returned,
                                "timeStamp": datetime.now(UTC).isoformat(timespec="seconds"),
                                "links": links}
        if layer.kind == "aggregate":
            head["suppressedBelow"] = max(q.suppress_below, 1)
            if layer.id == "incident_hexagons":
                head["cell_m"] = q.cell_m
        body = json.dumps(head, ensure_ascii=False)[:-1] + ', "features": ' + features + "}"
        return Response(body, media_type=GEOJSON, headers=headers)

    @router.get("/collections/{collection_id}/items/{feature_id}", summary="Một đối tượng / one feature",
                response_class=JSONResponse)
    def item(collection_id: str, feature_id: str, request: Request,
             principal: Principal = Depends(get_principal),
             conn: Connection = Depends(get_conn)) -> Response:
        layer = resolve(collection_id, principal)
        q = build_query(layer, principal, {k: v for k, v in request.query_params.items()
                                           if k in RESERVED | INCIDENT_PARAMS | HEX_PARAMS
                                           and k not in ("bbox", "limit", "offset")})
        fid: int | str = feature_id
        if layer.id != "incident_hexagons":
            if not feature_id.isdigit():
                raise Problem(404, f"Không có đối tượng '{feature_id}' trong '{layer.id}'",
                              f"No feature '{feature_id}' in '{layer.id}'")
            fid = int(feature_id)
        sql, p = item_query(q, fid)
        row = conn.execute(text(sql), p).first()
        if row is None:
            raise Problem(404, f"Không có đối tượng '{feature_id}' trong '{layer.id}'",
                          f"No feature '{feature_id}' in '{layer.id}'")
        feature = json.loads(row[0])
        if layer.id == "incidents":  # exact point: audited in the request's transaction
            from api.audit import record

            record(conn, principal, "read_points", "incidents", feature_id)
            conn.commit()
        base = str(request.base_url).rstrip("/")
        feature["links"] = [
            {"href": f"{base}/collections/{layer.id}/items/{feature_id}", "rel": "self", "type": GEOJSON},
            {"href": f"{base}/collections/{layer.id}", "rel": "collection", "type": "application/json"},
        ]
        headers = {}
        if row[1] is not None:
            headers["ETag"] = f'W/"{row[1]}"'
        return Response(json.dumps(feature, ensure_ascii=False), media_type=GEOJSON, headers=headers)

    return router
