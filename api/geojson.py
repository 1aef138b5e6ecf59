"""GeoJSON answers of units with their outlines, the geometry spliced as PostGIS wrote it.

Why: the whole country's coverage at the API's default 20 m is 21 MB, nearly all of it
coordinates. Parsing each commune's ``ST_AsGeoJSON`` text into Python floats only to write them
out again took 1.1-1.3 s of a cold answer (3,321 communes, about two million numbers); the text
PostgreSQL wrote is already the JSON the client gets, so it goes into the body as it is. The
properties are written as FastAPI's JSONResponse writes them (UTF-8, compact, no NaN).

Functions
---------
- ``unit_geometries(conn, ids, simplify_m)``: id -> GeoJSON text (or None)
- ``feature_collection_entry(features, **members)``: the FeatureCollection as a result-cache Entry
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, text

from layers.resultcache import Entry
from layers.sql import simplified_sql


def unit_geometries(conn: Connection, ids: list[int], simplify_m: float) -> dict[int, str | None]:
    """Unit outlines as GeoJSON text (6 decimals), simplified by ``simplify_m`` metres for display
    (layers.sql.simplified_sql: in degrees, not through a metric CRS; Douglas-Peucker keeping
    tiny parts, as the layers draw them: preserving topology took 3.9 s for the 3,321 national
    communes at 1,174 m, 6.2 s at 20 m, against 0.2 s and 0.5 s)."""
    if not ids:
        return {}
    rows = conn.execute(text(
        f"SELECT id, ST_AsGeoJSON(CASE WHEN :s > 0 THEN {simplified_sql('geom', ':s')} "
        "ELSE geom END, 6) AS g FROM admin_unit WHERE id = ANY(:ids)"), {"ids": ids, "s": simplify_m}).all()
    return {r.id: r.g for r in rows}


def _dumps(value: Any) -> str:
    """As Starlette's JSONResponse renders: compact, non-ASCII as is, NaN refused."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def feature_collection_entry(features: Iterable[tuple[Any, str | None, dict[str, Any]]],
                             media_type: str = "application/json", **members: Any) -> Entry:
    """A FeatureCollection of (id, geometry as GeoJSON text or None, properties) features,
    followed by ``members`` (``numberReturned``, ``parameters``...), as a result-cache Entry."""
    parts = ['{"type":"FeatureCollection","features":[']
    for i, (fid, geometry, properties) in enumerate(features):
        parts.append(f'{"," if i else ""}{{"type":"Feature","id":{_dumps(fid)},"geometry":'
                     f'{geometry if geometry is not None else "null"},"properties":{_dumps(properties)}}}')
    parts.append("]")
    for name, value in members.items():
        parts.append(f",{_dumps(name)}:{_dumps(value)}")
    parts.append("}")
    return Entry("".join(parts).encode(), media_type, {})
