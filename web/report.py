"""Standalone report maps (Folium) of a commune or a province, for committees to share offline.

Why every asset is inlined: the HTML is mailed around and opened on machines without internet,
so folium's CDN asset lists are emptied on every element and the vendored Leaflet and
MarkerCluster files are embedded in the page itself. Only aggregates go in: a coverage
choropleth, model points, and incident counts per village (or commune), with counts under the
suppression threshold hidden. Exact incident points never reach the file.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import folium
from folium.plugins import MarkerCluster
from sqlalchemy import Connection, Engine, text

from antt.crs import METRIC_SRID
from antt.settings import PROJECT_ROOT, get_settings
from geo.placement import unit_expr_sql

VENDOR = PROJECT_ROOT / "web" / "vendor" / "node_modules"
CHROMIUM = "/usr/bin/chromium"

# Latest rating -> colour, shared with the web page's legend (web/static/app.js RATING_COLORS).
RATING_COLORS = {"tot": "#1a9850", "kha": "#91cf60", "trung_binh": "#fdae61", "yeu": "#d73027",
                 None: "#7f7f7f"}
RATING_LABELS = {"tot": "Tốt / Good", "kha": "Khá / Fair", "trung_binh": "Trung bình / Average",
                 "yeu": "Yếu / Weak", None: "Chưa đánh giá / Not rated"}
# Coverage share (0..1) classes for the choropleth, light to dark green; None = no village data.
COVERAGE_BREAKS = [(0.0, "#f7fcf5"), (0.25, "#c7e9c0"), (0.5, "#74c476"), (0.75, "#31a354"),
                   (1.0, "#006d2c")]
NO_DATA_COLOR = "#d9d9d9"
UNCOVERED_COLOR = "#e31a1c"


class ReportError(ValueError):
    """The requested area does not exist, or the report cannot be made."""


@dataclass(frozen=True)
class Area:
    """The unit the report is about."""

    id: int
    level: str  # 'commune' | 'province'
    code: str
    name: str
    bbox: tuple[float, float, float, float]


# --- SQL (kept apart from the map building) ------------------------------------------------

CURRENT = "u.valid_from <= :on AND (u.valid_to IS NULL OR :on < u.valid_to)"

AREA_SQL = f"""
SELECT u.id, u.level, u.code, coalesce(u.full_name, u.name) AS name,
       ST_XMin(u.geom) AS minx, ST_YMin(u.geom) AS miny, ST_XMax(u.geom) AS maxx, ST_YMax(u.geom) AS maxy
FROM admin_unit u
WHERE u.level = :level AND u.code = :code AND {CURRENT} AND u.geom IS NOT NULL
"""

# Units to colour: villages of a commune, or communes of a province, with their incident counts
# in the period. Coverage comes from geo.coverage (the one definition of "covered"). Geometry
# is simplified in metres (METRIC_SRID) so a province file stays small.
UNITS_SQL = f"""
WITH units AS (
    SELECT u.id, u.code, coalesce(u.full_name, u.name) AS name, u.geom
    FROM admin_unit u
    WHERE u.level = :child_level AND {CURRENT} AND u.geom IS NOT NULL
      AND (u.parent_id = :area_id OR (:child_level = 'commune' AND u.province_code = :area_code))
),
incidents AS (  -- any date, in the unit of :on's map holding it (geo.placement)
    SELECT CASE WHEN :child_level = 'village' THEN {unit_expr_sql("village", "i", "on")}
                ELSE {unit_expr_sql("commune", "i", "on")} END AS unit_id,
           count(*) AS n
    FROM incident i
    WHERE i.occurred_at >= :start AND i.occurred_at < :end_excl
    GROUP BY 1
)
SELECT u.id, u.code, u.name,
       coalesce((SELECT n FROM incidents WHERE unit_id = u.id), 0) AS incidents,
       ST_AsGeoJSON(ST_Transform(ST_SimplifyPreserveTopology(ST_Transform(u.geom, {METRIC_SRID}),
                                                             :tolerance_m), 4326), 5) AS geojson,
       ST_Y(ST_PointOnSurface(u.geom)) AS label_lat, ST_X(ST_PointOnSurface(u.geom)) AS label_lon
FROM units u
ORDER BY u.code
"""

AREA_OUTLINE_SQL = f"""
SELECT ST_AsGeoJSON(ST_Transform(ST_SimplifyPreserveTopology(ST_Transform(geom, {METRIC_SRID}),
                                                            :tolerance_m), 4326), 5)
FROM admin_unit WHERE id = :area_id
"""

MODELS_SQL = """
SELECT m.name, t.name_vi AS type_vi, t.name_en AS type_en, m.type_code,
       (SELECT r.rating FROM model_rating r WHERE r.model_id = m.id AND r.rated_on <= :on
        ORDER BY r.rated_on DESC, r.id DESC LIMIT 1) AS rating,
       ST_Y(m.geom) AS lat, ST_X(m.geom) AS lon
FROM security_model m JOIN model_type t ON t.code = m.type_code
WHERE m.status = 'active' AND m.founded_on <= :on
  AND (m.commune_id = :area_id
       OR m.commune_id IN (SELECT id FROM admin_unit WHERE level = 'commune' AND province_code = :area_code
                           AND :area_level = 'province'))
ORDER BY m.id
"""


def _coverage_by_code(conn: Connection, area: Area, on: dt.date) -> dict[str, dict]:
    """Coverage share (0..1, None without villages) and active models per child unit."""
    from geo.coverage import commune_coverage, village_coverage

    if area.level == "commune":
        df = village_coverage(conn, on, commune_code=area.code)
        return {r.code: {"share": 1.0 if r.covered else 0.0, "models": int(r.models_active)}
                for r in df.itertuples()}
    df = commune_coverage(conn, on, province_code=area.code)
    return {r.code: {"share": None if r.covered_share is None else float(r.covered_share),
                     "models": int(r.models_active)} for r in df.itertuples()}


def find_area(conn: Connection, level: str, code: str, on: dt.date) -> Area:
    row = conn.execute(text(AREA_SQL), {"level": level, "code": code, "on": on}).mappings().first()
    if row is None:
        raise ReportError(f"Không tìm thấy {'xã' if level == 'commune' else 'tỉnh'} mã {code!r} / "
                          f"no {level} with code {code!r}")
    return Area(row["id"], row["level"], row["code"], row["name"],
                (row["minx"], row["miny"], row["maxx"], row["maxy"]))


def coverage_color(share: float | None) -> str:
    if share is None:
        return NO_DATA_COLOR
    color = COVERAGE_BREAKS[0][1]
    for threshold, c in COVERAGE_BREAKS:
        if share >= threshold:
            color = c
    return color


def shown_count(n: int, suppress_below: int) -> str:
    """Counts under the threshold are hidden: they could identify a household."""
    return f"<{suppress_below}" if 0 < n < suppress_below else str(n)


# --- assets ------------------------------------------------------------------------------

def _read_asset(relative: str) -> str:
    path = VENDOR / relative
    if not path.exists():
        raise ReportError(f"Thiếu tệp {relative}: chạy `make web` / missing asset {relative}: "
                          "run `make web` (scripts/setup-web.sh)")
    return path.read_text(encoding="utf-8")


def _inline_css_images(css: str, base: Path) -> str:
    """Leaflet's CSS points at images/*.png; embed them as data URIs."""

    def repl(match: re.Match[str]) -> str:
        ref = match.group(1).strip("'\"")
        if ref.startswith("data:"):
            return match.group(0)
        file = (base / ref).resolve()
        if not file.exists():
            return "url()"
        data = base64.b64encode(file.read_bytes()).decode()
        return f"url(data:image/png;base64,{data})"

    return re.sub(r"url\(([^)]+)\)", repl, css)


@lru_cache(maxsize=1)
def inline_assets_html() -> str:
    """<style>/<script> elements with Leaflet and MarkerCluster, in load order."""
    leaflet_css = _inline_css_images(_read_asset("leaflet/dist/leaflet.css"),
                                     VENDOR / "leaflet" / "dist")
    parts = [f"<style>{leaflet_css}</style>"]
    for css in ("leaflet.markercluster/dist/MarkerCluster.css",
                "leaflet.markercluster/dist/MarkerCluster.Default.css"):
        parts.append(f"<style>{_read_asset(css)}</style>")
    for js in ("leaflet/dist/leaflet.js", "leaflet.markercluster/dist/leaflet.markercluster.js"):
        parts.append(f"<script>{_read_asset(js)}</script>")
    parts.append("<style>html,body{font-family:'Segoe UI',Roboto,'Noto Sans',Arial,sans-serif}"
                 ".antt-legend{background:#fff;padding:8px 10px;border-radius:6px;font-size:12px;"
                 "box-shadow:0 1px 4px rgba(0,0,0,.3);line-height:18px}"
                 ".antt-legend i{display:inline-block;width:14px;height:14px;margin-right:6px;"
                 "vertical-align:-2px;border:1px solid #999}"
                 ".antt-title{background:#fff;padding:6px 12px;border-radius:6px;font-size:15px;"
                 "font-weight:600;box-shadow:0 1px 4px rgba(0,0,0,.3)}"
                 ".antt-count{background:#253494;color:#fff;border-radius:10px;padding:1px 6px;"
                 "font-size:11px;font-weight:600;white-space:nowrap;border:1px solid #fff}</style>")
    return "\n".join(parts)


def _strip_cdn_assets(element) -> None:
    """Empty folium's CDN asset lists on the element tree (instance attributes shadow the class)."""
    for child in [element, *element._children.values()]:
        if hasattr(child, "default_js"):
            child.default_js = []
        if hasattr(child, "default_css"):
            child.default_css = []
        if child is not element:
            _strip_cdn_assets(child)


# --- the map -----------------------------------------------------------------------------

def _legend_html(title_vi: str, subtitle: str, suppress_below: int) -> str:
    rows = "".join(
        f"<div><i style='background:{c}'></i>{'≥' if t else ''}{int(t * 100)}%</div>"
        for t, c in COVERAGE_BREAKS)
    ratings = "".join(
        f"<div><i style='background:{RATING_COLORS[k]};border-radius:50%'></i>{RATING_LABELS[k]}</div>"
        for k in RATING_COLORS)
    return (
        "<div class='antt-legend' style='position:fixed;bottom:24px;left:12px;z-index:9999'>"
        f"<b>{title_vi}</b><br><span style='color:#555'>{subtitle}</span><hr style='margin:4px 0'>"
        "<b>Tỷ lệ thôn có mô hình / villages covered</b>"
        f"{rows}<div><i style='background:{NO_DATA_COLOR}'></i>Chưa có dữ liệu thôn / no village data</div>"
        f"<div><i style='background:#fff;border:2px solid {UNCOVERED_COLOR}'></i>"
        "Chưa có mô hình / uncovered</div>"
        "<hr style='margin:4px 0'><b>Mô hình (xếp loại) / models (rating)</b>"
        f"{ratings}<hr style='margin:4px 0'><span class='antt-count'>12</span> "
        f"Số vụ việc / incidents (ẩn khi &lt;{suppress_below} / hidden below {suppress_below})"
        "</div>"
    )


def build_report_map(engine: Engine, commune: str | None = None, province: str | None = None,
                     on: dt.date | None = None, start: dt.date | None = None,
                     end: dt.date | None = None) -> folium.Map:
    """The report map of one commune (its villages) or one province (its communes)."""
    if bool(commune) == bool(province):
        raise ReportError("Cần đúng một trong commune/province / give exactly one of commune, province")
    on = on or dt.date.today()
    end = end or on
    start = start or (end - dt.timedelta(days=365))
    if start > end:
        raise ReportError("Ngày bắt đầu sau ngày kết thúc / start is after end")
    suppress_below = get_settings().suppress_below
    level, code = ("commune", commune) if commune else ("province", province)
    child_level = "village" if level == "commune" else "commune"
    tolerance_m = 5.0 if level == "commune" else 30.0

    with engine.connect() as conn:
        area = find_area(conn, level, code, on)
        params = {"on": on, "area_id": area.id, "area_code": area.code, "area_level": area.level,
                  "child_level": child_level, "tolerance_m": tolerance_m,
                  "start": start, "end_excl": end + dt.timedelta(days=1)}
        units = conn.execute(text(UNITS_SQL), params).mappings().all()
        coverage = _coverage_by_code(conn, area, on)
        outline = conn.execute(text(AREA_OUTLINE_SQL), params).scalar_one()
        models = conn.execute(text(MODELS_SQL), params).mappings().all()

    minx, miny, maxx, maxy = area.bbox
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=11, tiles=None,
                   maxZoom=19, control_scale=True, prefer_canvas=False)
    m.get_root().header.add_child(folium.Element(inline_assets_html()), name="antt_assets")
    m.get_root().html.add_child(folium.Element(
        f"<div class='antt-title' style='position:fixed;top:10px;left:60px;z-index:9999'>"
        f"{area.name} — {start:%d/%m/%Y}–{end:%d/%m/%Y}</div>"))

    folium.GeoJson(json.loads(outline), name="Ranh giới / boundary",
                   style_function=lambda _f: {"color": "#333", "weight": 2.5, "fill": False}).add_to(m)

    features = []
    for u in units:
        cov_row = coverage.get(u["code"], {})
        cov = cov_row.get("share")
        features.append({
            "type": "Feature",
            "geometry": json.loads(u["geojson"]),
            "properties": {
                "name": u["name"], "code": u["code"],
                "coverage": "—" if cov is None else f"{cov * 100:.0f}%",
                "models": int(cov_row.get("models", 0)),
                "incidents": shown_count(int(u["incidents"]), suppress_below),
                "fill": coverage_color(cov),
                "uncovered": cov == 0.0,
            },
        })
    if features:
        folium.GeoJson(
            {"type": "FeatureCollection", "features": features},
            name="Độ phủ mô hình / model coverage",
            style_function=lambda f: {
                "fillColor": f["properties"]["fill"], "fillOpacity": 0.75,
                "color": UNCOVERED_COLOR if f["properties"]["uncovered"] else "#555",
                "weight": 2 if f["properties"]["uncovered"] else 0.8},
            tooltip=folium.GeoJsonTooltip(
                fields=["name", "coverage", "models", "incidents"],
                aliases=["Đơn vị / unit", "Độ phủ / coverage", "Mô hình / models",
                         "Vụ việc / incidents"]),
        ).add_to(m)

    # On a province map 114 badges would hide the map: the layer starts off (counts stay in the
    # tooltips) and the reader can switch it on.
    counts = folium.FeatureGroup(name="Số vụ việc / incident counts", show=level == "commune")
    for u in units:
        n = int(u["incidents"])
        if n == 0:
            continue
        folium.Marker(
            [u["label_lat"], u["label_lon"]],
            icon=folium.DivIcon(html=f"<span class='antt-count'>{shown_count(n, suppress_below)}</span>",
                                icon_size=(34, 18), icon_anchor=(17, 9)),
            tooltip=f"{u['name']}: {shown_count(n, suppress_below)} vụ việc / incidents",
        ).add_to(counts)
    counts.add_to(m)

    cluster = MarkerCluster(name="Mô hình / models").add_to(m)
    for md in models:
        rating = md["rating"]
        folium.CircleMarker(
            [md["lat"], md["lon"]], radius=6, color="#fff", weight=1.5, fill=True,
            fill_color=RATING_COLORS.get(rating, RATING_COLORS[None]), fill_opacity=0.95,
            tooltip=f"{md['name']} — {md['type_vi']} ({RATING_LABELS.get(rating, RATING_LABELS[None])})",
        ).add_to(cluster)

    folium.LayerControl(collapsed=False).add_to(m)
    m.get_root().html.add_child(folium.Element(
        _legend_html(area.name, f"{len(units)} {'thôn' if child_level == 'village' else 'xã'}, "
                     f"{len(models)} mô hình / models", suppress_below)))
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    _strip_cdn_assets(m)
    _strip_cdn_assets(m.get_root())
    return m


EXTERNAL_REF = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|url\(\s*["']?(?:https?:)?//""", re.I)
ANY_URL = re.compile(r"https?://(?!www\.w3\.org/)[^\s\"'<>)]+", re.I)


def external_references(html: str) -> list[str]:
    """URLs a browser could fetch: any src/href/url() to a network, and any http(s) URL at all
    outside the vendored Leaflet files (whose attribution link text is not a request)."""
    found = [m.group(0) for m in EXTERNAL_REF.finditer(html.replace(inline_assets_html(), ""))]
    found += ANY_URL.findall(html.replace(inline_assets_html(), ""))
    return found


def render_html(m: folium.Map) -> str:
    """The standalone HTML; refuses to return a page that would fetch anything from a network."""
    html = m.get_root().render()
    if inline_assets_html() not in html:
        raise ReportError("vendored assets missing from the report")
    bad = external_references(html)
    if bad:
        raise ReportError(f"external reference left in the report: {bad[:3]}")
    return html


def screenshot(html_path: Path, png_path: Path, width: int = 1400, height: int = 1000,
               chromium: str = CHROMIUM, timeout_s: float = 60.0) -> Path:
    """PNG of the HTML map with headless Chromium (no network needed: everything is inlined)."""
    if not Path(chromium).exists() and shutil.which(chromium) is None:
        raise ReportError(f"Không có Chromium tại {chromium} / Chromium not found at {chromium}")
    png_path = Path(png_path).resolve()
    with tempfile.TemporaryDirectory(prefix="antt-chromium-") as profile:
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update", "--no-first-run",
               "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={width},{height}",
               "--virtual-time-budget=4000", f"--screenshot={png_path}",
               Path(html_path).resolve().as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0 or not png_path.exists() or png_path.stat().st_size == 0:
        raise ReportError(f"Chromium screenshot failed ({proc.returncode}): {proc.stderr[-400:]}")
    return png_path


def export_map(engine: Engine, out: Path, commune: str | None = None, province: str | None = None,
               png: Path | None = None, **kw) -> tuple[Path, Path | None]:
    """Write the HTML (and optionally the PNG) report; the HTML is written whole or not at all."""
    html = render_html(build_report_map(engine, commune=commune, province=province, **kw))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".part")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    if png is not None:
        screenshot(out, Path(png))
    return out, png
