"""SQL builders for layer queries (items, one item, counts, extents, vector tiles).

Kept apart from the endpoints (the tipg shape): a builder takes a `LayerQuery` and returns
(sql, params); the API only runs it. Feature JSON is built by PostgreSQL (ST_AsGeoJSON and
text concatenation), never by looping over geometries in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time, timedelta
from typing import Any

from antt.accounts import POINT_ROLES
from antt.crs import METRIC_SRID
from antt.settings import get_settings
from geo import kpi
from geo.filters import VN_TZ
from geo.grid import STORED_HEX_CELL_M, STORED_HEX_COLUMN, hex_index_sql, hex_key_cell_sql
from layers.access import Caller, scope_filter
from layers.catalogue import Layer, Prop
from layers.filters import BBox, FilterError, TimeRange, parse_bool

GEOJSON_DECIMALS = 7  # ~1 cm at Vietnam's latitudes; the data is no finer than that
LOCAL_TS = "AT TIME ZONE 'Asia/Ho_Chi_Minh'"


@dataclass
class LayerQuery:
    """Everything a request says about which features it wants."""

    layer: Layer
    caller: Caller
    bbox: BBox | None = None
    time: TimeRange | None = None
    props: dict[str, str] = field(default_factory=dict)
    category: str | None = None
    youth: bool | None = None
    cell_m: int = 500
    simplify_m: float | None = None
    today: date = field(default_factory=date.today)

    @property
    def suppress_below(self) -> int:
        """Counts 1..N-1 are hidden for roles that may not see points."""
        return 0 if self.caller.role in POINT_ROLES else get_settings().suppress_below


def typed_value(prop: Prop, raw: str) -> Any:
    """A filter value in the property's type; FilterError naming the property otherwise."""
    try:
        if prop.type == "integer":
            return int(raw)
        if prop.type == "number":
            return float(raw)
        if prop.type == "boolean":
            return parse_bool(raw, prop.name)
        if prop.type == "date":
            return date.fromisoformat(raw)
    except ValueError as exc:
        raise FilterError(f"Giá trị '{raw}' của {prop.name} phải có kiểu {prop.type}",
                          f"Value '{raw}' of {prop.name} must be of type {prop.type}",
                          prop.name) from exc
    return raw


def _incident_filter(q: LayerQuery, alias: str = "i") -> tuple[list[str], dict[str, Any]]:
    """Time, category path prefix and youth on incidents (the meaning geo/ uses too)."""
    parts: list[str] = []
    params: dict[str, Any] = {}
    if q.time is not None:
        if q.time.start is not None:
            parts.append(f"{alias}.occurred_at >= :t_start")
            params["t_start"] = q.time.start
        if q.time.end is not None:
            parts.append(f"{alias}.occurred_at {'<=' if q.time.end_inclusive else '<'} :t_end")
            params["t_end"] = q.time.end
    if q.category:
        like = q.category.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        parts.append(f"({alias}.category_code = :cat OR {alias}.category_code LIKE :cat_like)")
        params |= {"cat": q.category, "cat_like": like + "/%"}
    if q.youth is not None:
        parts.append(f"{alias}.youth_involved = :youth")
        params["youth"] = q.youth
    return parts, params


def _envelope(bbox: BBox) -> tuple[str, dict[str, Any]]:
    return ("ST_MakeEnvelope(:bx0, :by0, :bx1, :by1, 4326)",
            {"bx0": bbox.minx, "by0": bbox.miny, "bx1": bbox.maxx, "by1": bbox.maxy})


def hexagon_source(q: LayerQuery) -> tuple[str, dict[str, Any]]:
    """Incidents counted on a hexagon grid of `cell_m` metres (EPSG:3405); counts of 1-2 are
    hidden (`count` NULL, `suppressed` true) for roles without points, as in geo.aggregates.

    Each point's cell comes from geo.grid.hex_index_sql (the nearest centre of PostGIS's own
    grid, so a point on an edge is counted once), with no grid to generate: the cost is linear
    in incidents, and only cells holding incidents are drawn (ST_Hexagon). The grid is anchored
    at the CRS origin, so cells are the same in every request and tile. The web map's 2 km cell
    is stored on each incident (migration 0016): that size only groups by the stored key.
    """
    parts, params = _incident_filter(q)
    scope_sql, scope_params = scope_filter(q.layer, q.caller)
    parts.append(scope_sql)
    params |= scope_params
    if q.bbox is not None:
        env, env_params = _envelope(q.bbox)
        # Points up to two cells outside the box still fill the cells that overlap it.
        parts.append(f"i.geom && ST_Transform(ST_Expand(ST_Transform({env}, {METRIC_SRID}), "
                     ":cell_m * 2), 4326)")
        params |= env_params
    params |= {"cell_m": q.cell_m, "hex_size": float(q.cell_m), "suppress_min": max(q.suppress_below, 1)}
    where = " AND ".join(parts) or "TRUE"
    if q.cell_m == STORED_HEX_CELL_M:  # the cell is stored on each incident: group by it
        hex_i, hex_j = hex_key_cell_sql("p.k")
        counted = f"""SELECT :cell_m AS cell_m, {hex_i} AS i, {hex_j} AS j, p.n
              FROM (SELECT i.{STORED_HEX_COLUMN} AS k, count(*) AS n FROM incident i
                    WHERE {where} GROUP BY 1) p"""
    else:
        hex_i, hex_j = hex_index_sql("p.x", "p.y")
        counted = f"""SELECT :cell_m AS cell_m, {hex_i} AS i, {hex_j} AS j, count(*) AS n
              FROM (SELECT ST_X(i.geom_m) AS x, ST_Y(i.geom_m) AS y FROM incident i
                    WHERE {where}) p
              GROUP BY 2, 3"""
    sql = f"""(SELECT h.cell_m || ':' || h.i || ':' || h.j AS fid,
        ST_Transform(ST_Hexagon(:cell_m, h.i, h.j, ST_SetSRID(ST_MakePoint(0, 0), {METRIC_SRID})), 4326)
            AS geom,
        h.cell_m, CASE WHEN h.n < :suppress_min THEN NULL ELSE h.n END AS count,
        h.n < :suppress_min AS suppressed
        FROM ({counted}
              OFFSET 0) h)"""
    return sql, params


def kpi_date(q: LayerQuery) -> date:
    """The local date a KPI layer is computed on: the end of the time asked, else today."""
    if q.time is None or (q.time.end is None and q.time.start is None):
        return q.today
    end = q.time.end if q.time.end is not None else q.time.start
    local = end.astimezone(VN_TZ)
    day = local.date()
    exclusive_midnight = not q.time.end_inclusive and q.time.end is not None and local.time() == time(0)
    return day - timedelta(days=1) if exclusive_midnight and q.time.start != q.time.end else day


def kpi_source(q: LayerQuery) -> tuple[str, dict[str, Any]]:
    """Communes with how many of the year's targets they meet (geo.kpi), as of the end of the
    ``datetime`` asked (its local date; an instant is that day), else today; the plan year is
    that date's year.

    The caller's scope and the box are applied to the communes inside the KPI query itself, so
    a tile or a province computes only its own communes."""
    inner: list[str] = []
    params: dict[str, Any] = {"kpi_on": kpi_date(q)}
    if q.caller.scope_level == "province" and q.caller.scope_code:
        inner.append("u.province_code = :scope_code")
    elif q.caller.scope_level == "commune" and q.caller.scope_code:
        inner.append("u.code = :scope_code")
    if q.caller.scope_level != "all" and q.caller.scope_code:
        params["scope_code"] = q.caller.scope_code
    if q.bbox is not None:
        env, env_params = _envelope(q.bbox)
        inner.append(f"u.geom && {env}")
        params |= env_params
    where = "".join(f" AND {c}" for c in inner)
    dates = kpi.Dates(on_param=":kpi_on", year_param="extract(year FROM CAST(:kpi_on AS date))")
    sql = f"""(SELECT u.id AS fid, u.geom, u.code, u.name, u.province_code, u.valid_from, u.valid_to,
        k.met, k.on_track, k.at_risk, k.missed, k.no_data, k.targets,
        extract(year FROM CAST(:kpi_on AS date))::int AS year
        FROM admin_unit u JOIN (
            SELECT unit_id, count(*) FILTER (WHERE status = 'met') AS met,
                   count(*) FILTER (WHERE status = 'on_track') AS on_track,
                   count(*) FILTER (WHERE status = 'at_risk') AS at_risk,
                   count(*) FILTER (WHERE status = 'missed') AS missed,
                   count(*) FILTER (WHERE status = 'no_data') AS no_data, count(*) AS targets
            FROM ({kpi.kpi_sql('commune', where, dates)}) kk GROUP BY unit_id) k ON k.unit_id = u.id)"""
    return sql, params


def _units_asked(q: LayerQuery) -> tuple[list[str], dict[str, Any]]:
    """Conditions on admin_unit `b` met by every unit a count layer's answer can hold: the
    caller's scope and the code filters asked. Loose on purpose (a parent's code is not tied
    to a level): they only narrow the incidents to a superset of those that count."""
    conds: list[str] = []
    params: dict[str, Any] = {}
    child_of = "b.parent_id IN (SELECT id FROM admin_unit WHERE code = :{})"
    if q.caller.scope_level != "all" and q.caller.scope_code is not None:
        if q.caller.scope_level == "province":
            conds.append("b.province_code = :u_scope")
        elif q.layer.id.endswith("commune"):
            conds.append("b.code = :u_scope")
        else:  # a commune account sees the villages of its commune
            conds.append(child_of.format("u_scope"))
        params["u_scope"] = q.caller.scope_code
    for name, param, sql in (("province_code", "u_province", "b.province_code = :u_province"),
                             ("code", "u_code", "b.code = :u_code"),
                             ("parent_code", "u_parent", child_of.format("u_parent"))):
        if name in q.props:
            conds.append(sql)
            params[param] = q.props[name]
    return conds, params


def source_and_where(q: LayerQuery, *, with_bbox: bool = True) -> tuple[str, list[str], dict[str, Any]]:
    """The FROM source (alias t), the WHERE parts and the parameters, for any layer."""
    layer = q.layer
    params: dict[str, Any] = {"suppress_below": max(q.suppress_below, 1)}
    where: list[str] = []
    if layer.id == "incident_hexagons":
        source, hex_params = hexagon_source(q)
        params |= hex_params
    elif layer.id == "kpi_communes":
        source, kpi_params = kpi_source(q)
        params |= kpi_params
    elif layer.counts_incidents and layer.kind == "aggregate":
        inc_parts, inc_params = _incident_filter(q)
        units, unit_params = _units_asked(q)
        if q.bbox is not None:
            env, env_params = _envelope(q.bbox)
            units.append(f"b.geom && {env}")
            unit_params |= env_params
        if units:
            # Only incidents inside the units the answer can hold can count for them: the
            # extent of those units (a superset, one GiST probe) spares grouping the country.
            level = "commune" if layer.id.endswith("commune") else "village"
            inc_parts.append(f"i.geom && (SELECT ST_SetSRID(ST_Extent(b.geom), 4326) FROM admin_unit b "
                             f"WHERE b.level = '{level}' AND {' AND '.join(units)})")
            inc_params |= unit_params
        source = layer.source.replace("{inc_filter}", " AND ".join(inc_parts) or "TRUE")
        params |= inc_params
    else:
        source = layer.source
    if layer.id != "incident_hexagons":
        scope_sql, scope_params = scope_filter(layer, q.caller)
        where.append(scope_sql)
        params |= scope_params
    if layer.unit_validity:
        vf, vt = f"(t.valid_from::timestamp {LOCAL_TS})", f"(t.valid_to::timestamp {LOCAL_TS})"
        if q.time is None or not layer.time_is_validity:
            where.append("t.valid_from <= :today AND (t.valid_to IS NULL OR t.valid_to > :today)")
            params["today"] = q.today
        else:  # units whose validity [valid_from, valid_to) overlaps the interval
            if q.time.end is not None:
                where.append(f"{vf} {'<=' if q.time.end_inclusive else '<'} :t_end")
                params["t_end"] = q.time.end
            if q.time.start is not None:
                where.append(f"(t.valid_to IS NULL OR {vt} > :t_start)")
                params["t_start"] = q.time.start
    elif q.time is not None and layer.time_field and layer.kind == "features":
        column = f"t.{layer.time_field}"
        prop = layer.prop(layer.time_field)
        if prop is not None and prop.type == "date":
            column = f"({column}::timestamp {LOCAL_TS})"
        if layer.counts_incidents:  # incidents: compare the raw timestamptz (index-friendly)
            column = f"t.{layer.time_field}"
        if q.time.start is not None:
            where.append(f"{column} >= :t_start")
            params["t_start"] = q.time.start
        if q.time.end is not None:
            where.append(f"{column} {'<=' if q.time.end_inclusive else '<'} :t_end")
            params["t_end"] = q.time.end
    if layer.id == "incidents":
        inc_parts, inc_params = _incident_filter(
            LayerQuery(layer, q.caller, category=q.category, youth=q.youth), alias="t")
        where += inc_parts
        params |= inc_params
    if with_bbox and q.bbox is not None:
        env, env_params = _envelope(q.bbox)
        where.append(f"t.geom && {env} AND ST_Intersects(t.geom, {env})")
        params |= env_params
    for name, raw in q.props.items():
        prop = layer.prop(name)
        if prop is None or not prop.filterable:
            raise FilterError(f"Không lọc được theo '{name}'", f"Cannot filter on '{name}'", name)
        where.append(f"t.{name} = :p_{name}")
        params[f"p_{name}"] = typed_value(prop, raw)
    return source, where or ["TRUE"], params


# Metres on the ground in one degree of latitude (and of longitude at the equator).
METRES_PER_DEGREE = 111_320.0


def simplified_sql(geom: str, tolerance_m: str, preserve_topology: bool = False) -> str:
    """SQL simplifying lon/lat `geom` by a tolerance in metres (an SQL expression), for display.

    Done in degrees (metres / METRES_PER_DEGREE): the same tolerance north-south, up to 8 %
    finer east-west across Vietnam (8.5-23.5°N), never coarser. Why not in EPSG:3405: that
    transformed every vertex there and back, 6 s for the 7 M vertices of the 3,321 national
    communes (the country's choropleth on every load) against 0.3 s in degrees."""
    tolerance = f"CAST({tolerance_m} AS float8) / {METRES_PER_DEGREE}"
    if preserve_topology:
        return f"ST_SimplifyPreserveTopology({geom}, {tolerance})"
    return f"ST_Simplify({geom}, {tolerance}, true)"


def _geometry_sql(q: LayerQuery) -> str:
    """GeoJSON text of the geometry: full unless asked to simplify (Douglas-Peucker, keeping
    tiny parts: simplified_sql; display only, ~3x faster than the topology-preserving one)."""
    geom = "t.geom"
    if q.simplify_m and q.layer.geometry_type != "Point":
        geom = simplified_sql("t.geom", ":simplify_m")
    return f"coalesce(ST_AsGeoJSON({geom}, {GEOJSON_DECIMALS}), 'null')"


def _properties_sql(layer: Layer) -> str:
    pairs = ", ".join(f"'{p.name}', t.{p.name}" for p in layer.properties)
    return f"json_build_object({pairs})"


def feature_sql(q: LayerQuery) -> str:
    """One GeoJSON Feature as text. Concatenated rather than json_build_object'ed: casting the
    geometry text to json re-parses it, which cost a third of the whole commune layer."""
    return (f"""'{{"type": "Feature", "id": ' || to_json(t.fid)::text || ', "geometry": ' || """
            f"""{_geometry_sql(q)} || ', "properties": ' || {_properties_sql(q.layer)}::text || '}}'""")


def count_query(q: LayerQuery) -> tuple[str, dict[str, Any]]:
    source, where, params = source_and_where(q)
    return f"SELECT count(*) FROM {source} t WHERE {' AND '.join(where)}", params


def items_query(q: LayerQuery, limit: int, offset: int) -> tuple[str, dict[str, Any]]:
    """One row, one text column: the JSON array of the page's features (ordered by id)."""
    source, where, params = source_and_where(q)
    params |= {"limit": limit, "offset": offset, "simplify_m": q.simplify_m}
    sql = f"""SELECT '[' || coalesce(string_agg(f.feature, ', ' ORDER BY f.fid), '') || ']'
        FROM (SELECT t.fid, {feature_sql(q)} AS feature FROM {source} t
              WHERE {' AND '.join(where)} ORDER BY t.fid LIMIT :limit OFFSET :offset) f"""
    return sql, params


def counted_items_query(q: LayerQuery, limit: int, offset: int) -> tuple[str, dict[str, Any]]:
    """numberMatched and the page from one evaluation of the source, for aggregate layers
    (their source is a GROUP BY that would otherwise be computed twice; its rows are few)."""
    source, where, params = source_and_where(q)
    params |= {"limit": limit, "offset": offset, "simplify_m": q.simplify_m}
    sql = f"""WITH m AS MATERIALIZED (SELECT t.* FROM {source} t WHERE {' AND '.join(where)})
        SELECT (SELECT count(*) FROM m),
               (SELECT '[' || coalesce(string_agg(f.feature, ', ' ORDER BY f.fid), '') || ']'
                FROM (SELECT t.fid, {feature_sql(q)} AS feature FROM m t
                      ORDER BY t.fid LIMIT :limit OFFSET :offset) f)"""
    return sql, params


def paged_items_query(q: LayerQuery, limit: int, offset: int, pages: int) -> tuple[str, dict[str, Any]]:
    """counted_items_query's answer for `pages` consecutive pages from `offset` at once, one
    row per page: (numberMatched, page number from 0, the page's features as a JSON array).
    Why: an aggregate layer's source (a GROUP BY over the incidents, seconds for the whole
    country) is the same for every page; evaluated once, the pages after it can be stored
    for the `next` links to find (api.features). Pages past the end come back as '[]'."""
    source, where, params = source_and_where(q)
    params |= {"limit": limit, "offset": offset, "pages": pages, "simplify_m": q.simplify_m}
    sql = f"""WITH m AS MATERIALIZED (SELECT t.* FROM {source} t WHERE {' AND '.join(where)}),
        f AS (SELECT t.fid, {feature_sql(q)} AS feature,
                     (row_number() OVER (ORDER BY t.fid) - 1) / :limit AS page
              FROM (SELECT * FROM m ORDER BY fid LIMIT :limit * :pages OFFSET :offset) t)
        SELECT (SELECT count(*) FROM m), g.page,
               '[' || coalesce(string_agg(f.feature, ', ' ORDER BY f.fid), '') || ']'
        FROM generate_series(0, :pages - 1) g(page) LEFT JOIN f ON f.page = g.page
        GROUP BY g.page ORDER BY g.page"""
    return sql, params


def item_query(q: LayerQuery, fid: int | str) -> tuple[str, dict[str, Any]]:
    """One feature as JSON text and its version (NULL for tables without one)."""
    source, where, params = source_and_where(q)
    version = "t._version" if q.layer.editable else "NULL::integer"
    params |= {"fid": fid, "simplify_m": q.simplify_m}
    sql = (f"SELECT {feature_sql(q)}, {version} FROM {source} t "
           f"WHERE t.fid = :fid AND {' AND '.join(where)}")
    return sql, params


def rows_query(q: LayerQuery, limit: int, offset: int) -> tuple[str, dict[str, Any]]:
    """Plain rows for CSV: id, properties, then lon/lat (points) or WKT (polygons)."""
    source, where, params = source_and_where(q)
    params |= {"limit": limit, "offset": offset}
    cols = ", ".join(f"t.{p.name}" for p in q.layer.properties)
    geo = ("round(ST_X(t.geom)::numeric, 7) AS lon, round(ST_Y(t.geom)::numeric, 7) AS lat"
           if q.layer.geometry_type == "Point" else f"ST_AsText(t.geom, {GEOJSON_DECIMALS}) AS wkt")
    sql = (f"SELECT t.fid AS id, {cols}, {geo} FROM {source} t WHERE {' AND '.join(where)} "
           "ORDER BY t.fid LIMIT :limit OFFSET :offset")
    return sql, params


def extent_query(q: LayerQuery) -> tuple[str, dict[str, Any]]:
    """The layer's extent for this caller (minx, miny, maxx, maxy), NULLs when empty."""
    source, where, params = source_and_where(q)
    sql = (f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
           f"(SELECT ST_Extent(t.geom) AS e FROM {source} t WHERE {' AND '.join(where)}) x")
    return sql, params
