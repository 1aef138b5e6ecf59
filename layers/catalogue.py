"""The layer catalogue: every map layer defined once.

Features, vector tiles, the web map's legend (`GET /layers`) and the folium export all read
these definitions, so a property, a colour or a role rule is changed in one place.

A layer's `source` is a SQL subquery aliased `t` by the builders in `layers.sql`. It always
yields `fid`, `geom` (EPSG:4326) and one column per property; editable tables also yield
`_version`. Scope filters are written per layer (`scope_province`, `scope_commune`) against the
same alias, with the bind parameter `:scope_code`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from antt.accounts import POINT_ROLES, ROLES
from geo.placement import incident_units_sql

ALL_ROLES: frozenset[str] = frozenset(ROLES)
PropertyType = Literal["string", "integer", "number", "boolean", "date", "datetime"]


@dataclass(frozen=True)
class Prop:
    """One property of a layer: its column in the source, its type and its labels."""

    name: str
    type: PropertyType
    vi: str
    en: str
    filterable: bool = False
    in_tiles: bool = False

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "title": {"vi": self.vi, "en": self.en},
                "filterable": self.filterable}


@dataclass(frozen=True)
class Layer:
    """A map layer: where its rows come from, who may see it and how it is drawn."""

    id: str
    vi: str
    en: str
    geometry_type: Literal["Point", "MultiPolygon", "Polygon"]
    kind: Literal["features", "aggregate"]
    source: str
    properties: tuple[Prop, ...]
    scope_province: str
    scope_commune: str
    roles: frozenset[str] = ALL_ROLES
    # How `datetime=` applies: a column of the source compared with the interval, or
    # 'validity' (units valid during the interval; valid today when no datetime is given).
    time_field: str | None = None
    time_is_validity: bool = False
    editable: bool = False
    style: dict[str, Any] = field(default_factory=dict)
    legend: tuple[dict[str, Any], ...] = ()
    # For roles that may not see this layer: the aggregate layer that stands in for it.
    aggregate_for_others: str | None = None
    min_zoom: int = 0
    max_zoom: int = 22
    # Incident aggregates count incidents; they take category/youth filters.
    counts_incidents: bool = False
    # Sources built from admin_unit: only units valid on the day asked (today by default).
    unit_validity: bool = False

    def prop(self, name: str) -> Prop | None:
        return next((p for p in self.properties if p.name == name), None)

    @property
    def tile_properties(self) -> tuple[Prop, ...]:
        return tuple(p for p in self.properties if p.in_tiles)

    def visible_to(self, role: str) -> bool:
        return role in self.roles

    def describe(self, base_url: str = "") -> dict[str, Any]:
        """The entry `GET /layers` returns (the web map builds its legend from it)."""
        return {
            "id": self.id,
            "title": {"vi": self.vi, "en": self.en},
            "geometry_type": self.geometry_type,
            "kind": self.kind,
            "time_field": self.time_field,
            "editable": self.editable,
            "properties": [p.describe() for p in self.properties],
            "style": self.style,
            "legend": list(self.legend),
            "items_url": f"{base_url}/collections/{self.id}/items",
            "tiles_url": f"{base_url}/collections/{self.id}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}",
            "tilejson_url": f"{base_url}/collections/{self.id}/tilejson.json",
            "min_zoom": self.min_zoom,
            "max_zoom": self.max_zoom,
        }


def _legend(*entries: tuple[str, str, str, str]) -> tuple[dict[str, Any], ...]:
    """(value, colour, vi, en) -> legend entries."""
    return tuple({"value": v, "color": c, "label": {"vi": vi, "en": en}} for v, c, vi, en in entries)


# --- shared pieces ------------------------------------------------------------------------

_UNIT_PROPS = (
    Prop("code", "string", "Mã", "Code", filterable=True, in_tiles=True),
    Prop("name", "string", "Tên", "Name", filterable=True, in_tiles=True),
    Prop("full_name", "string", "Tên đầy đủ", "Full name"),
    Prop("kind", "string", "Loại", "Kind", filterable=True, in_tiles=True),
    Prop("province_code", "string", "Mã tỉnh", "Province code", filterable=True),
    Prop("parent_code", "string", "Mã đơn vị cấp trên", "Parent code", filterable=True),
    Prop("population", "integer", "Dân số", "Population"),
    Prop("households", "integer", "Số hộ", "Households"),
    Prop("valid_from", "date", "Hiệu lực từ", "Valid from"),
    Prop("valid_to", "date", "Hiệu lực đến", "Valid to"),
)


def _unit_source(level: str) -> str:
    return f"""(SELECT u.id AS fid, u.geom, u.code, u.name, u.full_name, u.kind, u.province_code,
        p.code AS parent_code, u.population, u.households, u.valid_from, u.valid_to,
        u.parent_id AS _parent_id
        FROM admin_unit u LEFT JOIN admin_unit p ON p.id = u.parent_id
        WHERE u.level = '{level}' AND u.geom IS NOT NULL)"""


_COMMUNE_OF_SCOPE = "(SELECT id FROM admin_unit WHERE level = 'commune' AND code = :scope_code)"
_COMMUNES_OF_PROVINCE = ("(SELECT id FROM admin_unit WHERE level = 'commune' "
                         "AND province_code = :scope_code)")
# Point tables carry commune_id; scope is by the commune the point was assigned to (for
# incidents today's commune holding it, else the commune of its date: geo.placement).
_POINT_SCOPE_PROVINCE = f"t._commune_id IN {_COMMUNES_OF_PROVINCE}"
_POINT_SCOPE_COMMUNE = f"t._commune_id IN {_COMMUNE_OF_SCOPE}"

_POINT_UNIT_PROPS = (
    Prop("commune_code", "string", "Mã xã", "Commune code", filterable=True),
    Prop("village_code", "string", "Mã thôn", "Village code", filterable=True),
)


def _point_units_join(alias: str) -> str:
    return (f"LEFT JOIN admin_unit c ON c.id = {alias}.commune_id "
            f"LEFT JOIN admin_unit v ON v.id = {alias}.village_id")


RATING_LEGEND = _legend(
    ("tot", "#1a9850", "Tốt", "Good"),
    ("kha", "#91cf60", "Khá", "Fair"),
    ("trung_binh", "#fee08b", "Trung bình", "Average"),
    ("yeu", "#d73027", "Yếu", "Poor"),
    ("", "#9e9e9e", "Chưa đánh giá", "Not rated"),
)

COUNT_RAMP = ["#fff5eb", "#fdd0a2", "#fd8d3c", "#d94801", "#7f2704"]
_COUNT_LEGEND = (
    {"value": "suppressed", "color": "#d9d9d9",
     "label": {"vi": "1–2 vụ (ẩn số liệu)", "en": "1–2 incidents (count hidden)"}},
    {"value": "ramp", "colors": COUNT_RAMP,
     "label": {"vi": "Số vụ việc", "en": "Number of incidents"}},
)

# --- the layers ---------------------------------------------------------------------------

PROVINCES = Layer(
    id="provinces", vi="Tỉnh, thành phố", en="Provinces", geometry_type="MultiPolygon",
    kind="features", source=_unit_source("province"), properties=_UNIT_PROPS,
    scope_province="t.code = :scope_code",
    scope_commune=("t.code IN (SELECT province_code FROM admin_unit "
                   "WHERE level = 'commune' AND code = :scope_code)"),
    time_field="valid_from", time_is_validity=True, unit_validity=True,
    style={"stroke": "#4a1486", "weight": 2.5, "fill": False},
    legend=({"value": "boundary", "color": "#4a1486",
             "label": {"vi": "Ranh giới tỉnh", "en": "Province boundary"}},),
    min_zoom=0, max_zoom=14,
)

COMMUNES = Layer(
    id="communes", vi="Xã, phường, đặc khu", en="Communes", geometry_type="MultiPolygon",
    kind="features", source=_unit_source("commune"), properties=_UNIT_PROPS,
    scope_province="t.province_code = :scope_code", scope_commune="t.code = :scope_code",
    time_field="valid_from", time_is_validity=True, unit_validity=True,
    style={"stroke": "#6a51a3", "weight": 1.2, "fill": "#bcbddc", "fill_opacity": 0.15},
    legend=({"value": "boundary", "color": "#6a51a3",
             "label": {"vi": "Ranh giới xã", "en": "Commune boundary"}},),
    min_zoom=6, max_zoom=18,
)

VILLAGES = Layer(
    id="villages", vi="Thôn, tổ dân phố", en="Villages", geometry_type="MultiPolygon",
    kind="features", source=_unit_source("village"), properties=_UNIT_PROPS,
    scope_province="t.province_code = :scope_code",
    scope_commune=f"t._parent_id IN {_COMMUNE_OF_SCOPE}",
    time_field="valid_from", time_is_validity=True, unit_validity=True,
    style={"stroke": "#9e9ac8", "weight": 0.8, "dash": "3 3", "fill": False},
    legend=({"value": "boundary", "color": "#9e9ac8",
             "label": {"vi": "Ranh giới thôn", "en": "Village boundary"}},),
    min_zoom=10, max_zoom=20,
)

MODELS = Layer(
    id="models", vi="Mô hình tự quản về ANTT", en="Community security models",
    geometry_type="Point", kind="features",
    source=f"""(SELECT m.id AS fid, m.geom, m.name, m.type_code, mt.name_vi AS type_name_vi,
        mt.name_en AS type_name_en, mt.icon, m.host_kind, m.status, m.recognition,
        m.founded_on, r.rating, r.rated_on, c.code AS commune_code, v.code AS village_code,
        m.commune_id AS _commune_id, m.version AS _version
        FROM security_model m JOIN model_type mt ON mt.code = m.type_code
        LEFT JOIN LATERAL (SELECT rating, rated_on FROM model_rating mr WHERE mr.model_id = m.id
                           ORDER BY rated_on DESC, id DESC LIMIT 1) r ON true
        {_point_units_join('m')})""",
    properties=(
        Prop("name", "string", "Tên mô hình", "Name", in_tiles=True),
        Prop("type_code", "string", "Loại mô hình", "Model type", filterable=True, in_tiles=True),
        Prop("type_name_vi", "string", "Tên loại", "Type name (vi)"),
        Prop("type_name_en", "string", "Tên loại (tiếng Anh)", "Type name (en)"),
        Prop("icon", "string", "Biểu tượng", "Icon", in_tiles=True),
        Prop("host_kind", "string", "Nơi xây dựng", "Host", filterable=True),
        Prop("status", "string", "Trạng thái", "Status", filterable=True, in_tiles=True),
        Prop("recognition", "string", "Ghi nhận", "Recognition", filterable=True),
        Prop("founded_on", "date", "Ngày thành lập", "Founded on"),
        Prop("rating", "string", "Xếp loại gần nhất", "Latest rating", filterable=True,
             in_tiles=True),
        Prop("rated_on", "date", "Ngày xếp loại", "Rated on"),
        *_POINT_UNIT_PROPS,
    ),
    scope_province=_POINT_SCOPE_PROVINCE, scope_commune=_POINT_SCOPE_COMMUNE,
    time_field="founded_on", editable=True,
    style={"color_by": "rating", "icon_by": "type_code", "radius": 6,
           "colors": {e["value"]: e["color"] for e in RATING_LEGEND}},
    legend=RATING_LEGEND, min_zoom=8, max_zoom=22,
)

FIRE_GROUPS = Layer(
    id="fire_groups", vi="Tổ liên gia an toàn PCCC", en="Fire-safety household groups",
    geometry_type="Point", kind="features",
    source=f"""(SELECT f.id AS fid, f.geom, f.name, f.leader, f.households, f.founded_on,
        c.code AS commune_code, v.code AS village_code,
        f.commune_id AS _commune_id, f.version AS _version
        FROM fire_group f {_point_units_join('f')})""",
    properties=(
        Prop("name", "string", "Tên tổ", "Name", in_tiles=True),
        Prop("leader", "string", "Tổ trưởng", "Leader"),
        Prop("households", "integer", "Số hộ tham gia", "Households", in_tiles=True),
        Prop("founded_on", "date", "Ngày thành lập", "Founded on"),
        *_POINT_UNIT_PROPS,
    ),
    scope_province=_POINT_SCOPE_PROVINCE, scope_commune=_POINT_SCOPE_COMMUNE,
    time_field="founded_on", editable=True,
    style={"color": "#e6550d", "icon": "fire-extinguisher", "radius": 5},
    legend=_legend(("fire_group", "#e6550d", "Tổ liên gia PCCC", "Fire-safety group")),
    min_zoom=10, max_zoom=22,
)

INSTITUTIONS = Layer(
    id="institutions", vi="Cơ quan, doanh nghiệp, trường học", en="Institutions",
    geometry_type="Point", kind="features",
    source=f"""(SELECT s.id AS fid, s.geom, s.name, s.kind, y.year AS last_year,
        y.antt_safe, y.festival_held, c.code AS commune_code, v.code AS village_code,
        s.commune_id AS _commune_id, s.version AS _version
        FROM institution s
        LEFT JOIN LATERAL (SELECT year, antt_safe, festival_held FROM institution_year iy
                           WHERE iy.institution_id = s.id ORDER BY year DESC LIMIT 1) y ON true
        {_point_units_join('s')})""",
    properties=(
        Prop("name", "string", "Tên", "Name", in_tiles=True),
        Prop("kind", "string", "Loại", "Kind", filterable=True, in_tiles=True),
        Prop("last_year", "integer", "Năm đánh giá gần nhất", "Latest assessed year"),
        Prop("antt_safe", "boolean", "Đạt chuẩn An toàn về ANTT", "Meets the ANTT standard",
             filterable=True, in_tiles=True),
        Prop("festival_held", "boolean", "Tổ chức Ngày hội 19/8", "Held the 19/8 festival",
             filterable=True),
        *_POINT_UNIT_PROPS,
    ),
    scope_province=_POINT_SCOPE_PROVINCE, scope_commune=_POINT_SCOPE_COMMUNE,
    editable=True,
    style={"color_by": "antt_safe", "icon_by": "kind",
           "icons": {"agency": "landmark", "enterprise": "industry", "school": "school"},
           "colors": {"true": "#2171b5", "false": "#cb181d", "": "#969696"}},
    legend=_legend(("true", "#2171b5", "Đạt chuẩn An toàn về ANTT", "Meets the ANTT standard"),
                   ("false", "#cb181d", "Chưa đạt", "Does not meet it"),
                   ("", "#969696", "Chưa đánh giá", "Not assessed")),
    min_zoom=10, max_zoom=22,
)

LAUNCH_POINTS = Layer(
    id="launch_points", vi="Điểm phát động phong trào", en="Movement launch points",
    geometry_type="Point", kind="features",
    # A launch point placed on a village only is drawn at a point inside that village.
    source=f"""(SELECT l.id AS fid, coalesce(l.geom, ST_PointOnSurface(v.geom)) AS geom, l.name,
        l.theme, l.launch_date, l.status, l.notes, l.created_by,
        c.code AS commune_code, v.code AS village_code,
        l.commune_id AS _commune_id, l.version AS _version
        FROM launch_point l {_point_units_join('l')})""",
    properties=(
        Prop("name", "string", "Tên điểm", "Name", in_tiles=True),
        Prop("theme", "string", "Chủ đề", "Theme", filterable=True),
        Prop("launch_date", "date", "Ngày phát động", "Launch date", in_tiles=True),
        Prop("status", "string", "Trạng thái", "Status", filterable=True, in_tiles=True),
        Prop("notes", "string", "Ghi chú", "Notes"),
        Prop("created_by", "string", "Người tạo", "Created by"),
        *_POINT_UNIT_PROPS,
    ),
    scope_province=_POINT_SCOPE_PROVINCE, scope_commune=_POINT_SCOPE_COMMUNE,
    time_field="launch_date", editable=True,
    style={"color_by": "status", "icon": "flag",
           "colors": {"planned": "#fdae6b", "launched": "#31a354", "reviewed": "#3182bd",
                      "cancelled": "#969696"}},
    legend=_legend(("planned", "#fdae6b", "Dự kiến", "Planned"),
                   ("launched", "#31a354", "Đã phát động", "Launched"),
                   ("reviewed", "#3182bd", "Đã sơ kết", "Reviewed"),
                   ("cancelled", "#969696", "Đã hủy", "Cancelled")),
    min_zoom=8, max_zoom=22,
)

INCIDENTS = Layer(
    id="incidents", vi="Vụ việc (điểm chính xác)", en="Incidents (exact points)",
    geometry_type="Point", kind="features",
    source=f"""(SELECT i.id AS fid, i.geom, i.category_code, ic.name_vi AS category_vi,
        ic.name_en AS category_en, i.occurred_at, i.precision, i.deaths, i.injuries,
        i.youth_involved, i.status, i.source, i.description,
        c.code AS commune_code, v.code AS village_code,
        coalesce(i.commune_now_id, i.commune_id) AS _commune_id, i.version AS _version
        FROM incident i JOIN incident_category ic ON ic.code = i.category_code
        {_point_units_join('i')})""",
    properties=(
        Prop("category_code", "string", "Loại vụ việc", "Category", filterable=True,
             in_tiles=True),
        Prop("category_vi", "string", "Tên loại", "Category name (vi)"),
        Prop("category_en", "string", "Tên loại (tiếng Anh)", "Category name (en)"),
        Prop("occurred_at", "datetime", "Thời điểm", "Occurred at", in_tiles=True),
        Prop("precision", "string", "Độ chính xác vị trí", "Location precision", filterable=True),
        Prop("deaths", "integer", "Số người chết", "Deaths"),
        Prop("injuries", "integer", "Số người bị thương", "Injuries"),
        Prop("youth_involved", "boolean", "Có thanh thiếu niên", "Youth involved",
             filterable=True, in_tiles=True),
        Prop("status", "string", "Trạng thái", "Status", filterable=True),
        Prop("source", "string", "Nguồn", "Source"),
        Prop("description", "string", "Mô tả", "Description"),
        *_POINT_UNIT_PROPS,
    ),
    scope_province=_POINT_SCOPE_PROVINCE, scope_commune=_POINT_SCOPE_COMMUNE,
    roles=POINT_ROLES, time_field="occurred_at", editable=True,
    aggregate_for_others="incident_hexagons",
    style={"color_by": "category_root", "radius": 4,
           "colors": {"crime": "#e31a1c", "violation": "#ff7f00", "fire": "#fb9a99",
                      "traffic": "#1f78b4"}},
    legend=_legend(("crime", "#e31a1c", "Tội phạm", "Crime"),
                   ("violation", "#ff7f00", "Vi phạm khác", "Other violations"),
                   ("fire", "#fb9a99", "Cháy, nổ", "Fire and explosion"),
                   ("traffic", "#1f78b4", "Tai nạn giao thông", "Traffic accident")),
    min_zoom=10, max_zoom=22, counts_incidents=True,
)

_COUNT_PROPS = (
    Prop("count", "integer", "Số vụ việc (ẩn khi dưới 3)", "Incidents (hidden under 3)",
         in_tiles=True),
    Prop("suppressed", "boolean", "Số liệu bị ẩn", "Count hidden", in_tiles=True),
)

INCIDENT_HEXAGONS = Layer(
    id="incident_hexagons", vi="Mật độ vụ việc (lục giác)", en="Incident density (hexagons)",
    geometry_type="Polygon", kind="aggregate",
    source="",  # built per request by layers.sql.hexagon_source (cell size, filters)
    properties=(Prop("cell_m", "integer", "Cạnh lục giác (m)", "Hexagon size (m)", in_tiles=True),
                *_COUNT_PROPS),
    # Applied to the raw incident table (alias i) before the points are binned.
    scope_province=f"coalesce(i.commune_now_id, i.commune_id) IN {_COMMUNES_OF_PROVINCE}",
    scope_commune=f"coalesce(i.commune_now_id, i.commune_id) IN {_COMMUNE_OF_SCOPE}",
    time_field="occurred_at",
    style={"color_by": "count", "ramp": COUNT_RAMP, "fill_opacity": 0.6},
    legend=_COUNT_LEGEND, min_zoom=6, max_zoom=18, counts_incidents=True,
)


def _count_source(level: str) -> str:
    """Units valid today with the number of matching incidents inside them; 1-2 are hidden.

    Every incident counts in today's unit that holds its point, whatever its date
    (geo.placement: the stored today placement, filled by triggers; an older map is placed
    with unit_at), so the counts agree with the hexagons.

    `{inc_filter}` is spliced in by the builder (time, category, youth on alias `i`).
    """
    return f"""(SELECT u.id AS fid, u.geom, u.code, u.name, u.province_code,
        p.code AS parent_code, u.parent_id AS _parent_id, u.valid_from, u.valid_to,
        CASE WHEN n.n < :suppress_below THEN NULL ELSE coalesce(n.n, 0) END AS count,
        coalesce(n.n < :suppress_below, false) AS suppressed
        FROM admin_unit u LEFT JOIN admin_unit p ON p.id = u.parent_id
        LEFT JOIN (SELECT x.unit_id, count(*) AS n
                   FROM ({incident_units_sql(level, "{inc_filter}", "i", ":today")}) x
                   GROUP BY x.unit_id) n ON n.unit_id = u.id
        WHERE u.level = '{level}' AND u.geom IS NOT NULL)"""


_COUNT_UNIT_PROPS = (
    Prop("code", "string", "Mã", "Code", filterable=True, in_tiles=True),
    Prop("name", "string", "Tên", "Name", in_tiles=True),
    Prop("province_code", "string", "Mã tỉnh", "Province code", filterable=True),
    Prop("parent_code", "string", "Mã đơn vị cấp trên", "Parent code", filterable=True),
    *_COUNT_PROPS,
)

INCIDENT_COUNTS_COMMUNE = Layer(
    id="incident_counts_commune", vi="Số vụ việc theo xã", en="Incidents per commune",
    geometry_type="MultiPolygon", kind="aggregate", source=_count_source("commune"),
    properties=_COUNT_UNIT_PROPS,
    scope_province=COMMUNES.scope_province, scope_commune=COMMUNES.scope_commune,
    time_field="occurred_at", unit_validity=True,
    style={"color_by": "count", "ramp": COUNT_RAMP, "fill_opacity": 0.6},
    legend=_COUNT_LEGEND, min_zoom=6, max_zoom=16, counts_incidents=True,
)

INCIDENT_COUNTS_VILLAGE = Layer(
    id="incident_counts_village", vi="Số vụ việc theo thôn", en="Incidents per village",
    geometry_type="MultiPolygon", kind="aggregate", source=_count_source("village"),
    properties=_COUNT_UNIT_PROPS,
    scope_province=VILLAGES.scope_province, scope_commune=VILLAGES.scope_commune,
    time_field="occurred_at", unit_validity=True,
    style={"color_by": "count", "ramp": COUNT_RAMP, "fill_opacity": 0.6},
    legend=_COUNT_LEGEND, min_zoom=9, max_zoom=18, counts_incidents=True,
)

# Targets met per commune (geo.kpi, as of today, this year's plan): the source is built per
# request by layers.sql.kpi_source, with the caller's scope and the tile's box pushed into the
# KPI query so a tile computes only the communes it draws.
KPI_RAMP = ["#d73027", "#fc8d59", "#fee08b", "#d9ef8b", "#91cf60", "#1a9850"]
KPI_COMMUNES = Layer(
    id="kpi_communes", vi="Chỉ tiêu đạt theo xã", en="Targets met per commune",
    geometry_type="MultiPolygon", kind="aggregate", source="",
    properties=(
        Prop("code", "string", "Mã", "Code", filterable=True, in_tiles=True),
        Prop("name", "string", "Tên", "Name", in_tiles=True),
        Prop("province_code", "string", "Mã tỉnh", "Province code", filterable=True),
        Prop("met", "integer", "Số chỉ tiêu đạt", "Targets met", filterable=True, in_tiles=True),
        Prop("on_track", "integer", "Đúng tiến độ", "On track", in_tiles=True),
        Prop("at_risk", "integer", "Có nguy cơ không đạt", "At risk", in_tiles=True),
        Prop("missed", "integer", "Không đạt", "Missed", in_tiles=True),
        Prop("no_data", "integer", "Chưa có số liệu", "No data"),
        Prop("targets", "integer", "Số chỉ tiêu", "Targets", in_tiles=True),
        Prop("year", "integer", "Năm kế hoạch", "Plan year"),
    ),
    scope_province="t.province_code = :scope_code", scope_commune="t.code = :scope_code",
    # datetime= picks the day the KPIs are taken on (the end of the interval), not a filter
    time_field="year", unit_validity=True,
    style={"color_by": "met", "ramp": KPI_RAMP, "max_by": "targets", "fill_opacity": 0.65},
    legend=({"value": "ramp", "colors": KPI_RAMP,
             "label": {"vi": "Số chỉ tiêu đạt (0 → tất cả)", "en": "Targets met (0 → all)"}},),
    min_zoom=6, max_zoom=16,
)

CATALOGUE: dict[str, Layer] = {layer.id: layer for layer in (
    PROVINCES, COMMUNES, VILLAGES, MODELS, FIRE_GROUPS, INSTITUTIONS, LAUNCH_POINTS, INCIDENTS,
    INCIDENT_HEXAGONS, INCIDENT_COUNTS_COMMUNE, INCIDENT_COUNTS_VILLAGE, KPI_COMMUNES,
)}
