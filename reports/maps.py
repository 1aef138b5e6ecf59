"""Map images for the reports, drawn offline with matplotlib (Agg; no tiles, no network).

- ``incident_map(conn, report)``: incident counts on hexagons for the period (250 m for a
  commune, 1 km for a province) with the Gi* hot spots of the period outlined (Esri bin ≥ 2,
  ``geo.hotspots``); for roles without points, counts of 1–2 are drawn as "hidden", never as a
  value, and no incident point is drawn for anyone.
- ``coverage_map(conn, report)``: a commune's villages, covered or not (``geo.coverage``), with its
  active models; a province's communes by the share of villages covered.
Drawn in EPSG:3405 metres so shapes keep their proportions; PNG bytes returned.
"""

from __future__ import annotations

import io
from typing import Any

import geopandas as gpd
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import BoundaryNorm, ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from shapely import from_wkb  # noqa: E402
from shapely.geometry import shape  # noqa: E402

from antt.crs import METRIC_SRID  # noqa: E402
from geo._db import frame  # noqa: E402
from geo.coverage import commune_coverage, village_coverage  # noqa: E402
from geo.filters import IncidentFilter  # noqa: E402
from geo.hotspots import hex_hotspots  # noqa: E402

COUNT_COLORS = ["#fff5eb", "#fdd0a2", "#fd8d3c", "#d94801", "#7f2704"]
HIDDEN_COLOR = "#d9d9d9"
COVERED, UNCOVERED = "#31a354", "#e31a1c"
SHARE_COLORS = ["#f7fcf5", "#c7e9c0", "#74c476", "#31a354", "#006d2c"]
DPI = 150


def _outlines(conn, level: str, ids: list[int], r: Any = None) -> gpd.GeoDataFrame:
    """Simplified outlines in metres. With a report R they are kept on it for the next map: a
    province's 168 full-resolution communes took ~0.8 s to simplify, three times per report."""
    key = (level, tuple(ids))
    memo = getattr(r, "outlines", None)
    if memo is not None and key in memo:
        return memo[key].copy()
    out = _read_outlines(conn, level, ids)
    if memo is not None:
        memo[key] = out
    return out.copy()


def _read_outlines(conn, level: str, ids: list[int]) -> gpd.GeoDataFrame:
    df = frame(conn, f"""SELECT id, code, name,
            ST_AsBinary(ST_SimplifyPreserveTopology(ST_Transform(geom, {METRIC_SRID}), 10)) AS wkb
        FROM admin_unit WHERE id = ANY(:ids) AND geom IS NOT NULL""", {"ids": ids})
    return gpd.GeoDataFrame(df.drop(columns="wkb"), geometry=[from_wkb(bytes(b)) for b in df["wkb"]],
                            crs=METRIC_SRID)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _frame_axes(ax, title: str) -> None:
    ax.set_axis_off()
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=10)


def _area_ids(conn, r) -> tuple[list[int], list[int]]:
    """(commune ids, village ids) of the report's area, valid on its last day."""
    cond = "u.province_code = :code" if r.level == "province" else "u.code = :code"
    communes = frame(conn, f"""SELECT u.id FROM admin_unit u WHERE u.level = 'commune' AND {cond}
        AND u.valid_from <= :end AND (u.valid_to IS NULL OR :end < u.valid_to)""",
                     {"code": r.code, "end": r.end})["id"].tolist()
    villages = frame(conn, """SELECT id FROM admin_unit WHERE level = 'village' AND parent_id = ANY(:ids)
        AND valid_from <= :end AND (valid_to IS NULL OR :end < valid_to)""",
                     {"ids": communes, "end": r.end})["id"].tolist()
    return communes, villages


def incident_map(conn, r) -> bytes:
    cell = 250 if r.level == "commune" else 1000
    area = {"province_code": r.code} if r.level == "province" else {"commune_code": r.code}
    hx = hex_hotspots(conn, cell, IncidentFilter(r.start, r.end), on=r.end, **area)
    communes, villages = _area_ids(conn, r)
    outline = _outlines(conn, "commune", communes, r)
    inner = _outlines(conn, "village", villages, r) if r.level == "commune" else None
    fig, ax = plt.subplots(figsize=(7.5, 6.2))
    counts = hx["count"].to_numpy()
    shown = hx[counts > 0].copy()
    if len(shown):
        geoms = gpd.GeoSeries([shape(g) for g in shown["geometry"]], crs=4326).to_crs(METRIC_SRID)
        hidden = (np.zeros(len(shown), dtype=bool) if r.sees_points
                  else shown["count"].to_numpy() < r.suppress_below)
        positive = shown["count"].to_numpy()[~hidden]
        values = positive if len(positive) else np.array([1])
        top = int(values.max())
        bounds = np.r_[np.unique(np.ceil(np.quantile(values, [0, .25, .5, .75])).astype(int)), top + 1]
        cmap = ListedColormap(COUNT_COLORS[:max(1, len(bounds) - 1)])
        norm = BoundaryNorm(bounds, cmap.N)
        gdf = gpd.GeoDataFrame({"count": shown["count"].to_numpy(), "hidden": hidden},
                               geometry=geoms.values, crs=METRIC_SRID)
        if (~gdf["hidden"]).any():
            gdf[~gdf["hidden"]].plot(ax=ax, column="count", cmap=cmap, norm=norm, edgecolor="none",
                                     alpha=0.9)
        if gdf["hidden"].any():
            gdf[gdf["hidden"]].plot(ax=ax, color=HIDDEN_COLOR, edgecolor="none")
        hot = shown["bin"].to_numpy() >= 2
        if hot.any():
            gpd.GeoSeries(geoms.values[hot], crs=METRIC_SRID).boundary.plot(ax=ax, color="#b30000",
                                                                            linewidth=1.4)
        legend = []
        if len(positive):
            for c, lo, hi in zip(cmap.colors, bounds[:-1], bounds[1:], strict=False):
                label = f"{int(lo)}–{int(hi) - 1} vụ" if hi - lo > 1 else f"{int(lo)} vụ"
                legend.append(Patch(facecolor=c, label=label))
        if not r.sees_points:
            legend.append(Patch(facecolor=HIDDEN_COLOR, label=f"1–{r.suppress_below - 1} vụ (ẩn số liệu)"))
        legend.append(Patch(facecolor="none", edgecolor="#b30000", label="Điểm nóng (Gi*, 95%)"))
        ax.legend(handles=legend, loc="lower left", fontsize=7, frameon=True)
    if inner is not None and len(inner):
        inner.boundary.plot(ax=ax, color="#9e9ac8", linewidth=0.5)
    if len(outline):
        outline.boundary.plot(ax=ax, color="#4a1486", linewidth=0.9)
    _frame_axes(ax, f"Vụ việc {r.start:%d/%m/%Y} – {r.end:%d/%m/%Y}, lục giác cạnh {cell} m")
    return _png(fig)


def coverage_map(conn, r) -> bytes:
    communes, villages = _area_ids(conn, r)
    fig, ax = plt.subplots(figsize=(7.5, 6.2))
    if r.level == "commune":
        cov = village_coverage(conn, r.end, commune_code=r.code)
        gdf = _outlines(conn, "village", villages, r).merge(cov[["id", "covered"]], on="id", how="left")
        if len(gdf):
            colors = np.where(gdf["covered"].fillna(False).astype(bool), COVERED, UNCOVERED)
            gdf.plot(ax=ax, color=colors, edgecolor="white", linewidth=0.6, alpha=0.75)
        models = frame(conn, f"""SELECT ST_X(g) AS x, ST_Y(g) AS y FROM (
                SELECT ST_Transform(m.geom, {METRIC_SRID}) AS g FROM security_model m
                WHERE m.commune_id = ANY(:ids) AND m.founded_on <= :end
                  AND NOT (m.status IN ('suspended', 'dissolved')
                           AND coalesce(m.status_since, m.founded_on) <= :end)) t""",
                       {"ids": communes, "end": r.end})
        if len(models):
            ax.scatter(models["x"], models["y"], s=9, c="#08306b", marker="o", zorder=3)
        handles: list[Any] = [Patch(facecolor=COVERED, label="Có mô hình đạt yêu cầu"),
                              Patch(facecolor=UNCOVERED, label="Chưa có mô hình đạt yêu cầu"),
                              plt.Line2D([], [], marker="o", color="#08306b", linestyle="", markersize=4,
                                         label="Mô hình đang hoạt động")]
    else:
        cov = commune_coverage(conn, r.end, radius_m=None, province_code=r.code)
        gdf = _outlines(conn, "commune", communes, r).merge(cov[["id", "covered_share"]], on="id", how="left")
        share = pd.to_numeric(gdf["covered_share"], errors="coerce")
        bins = [0, 0.25, 0.5, 0.75, 0.9, 1.0001]
        idx = np.clip(np.digitize(share.fillna(-1), bins) - 1, 0, len(SHARE_COLORS) - 1)
        colors = np.where(share.isna(), HIDDEN_COLOR, np.array(SHARE_COLORS)[idx])
        if len(gdf):
            gdf.plot(ax=ax, color=colors, edgecolor="#636363", linewidth=0.4)
        handles = [Patch(facecolor=c, label=f"{int(lo * 100)}–{min(100, int(hi * 100))}% thôn có mô hình")
                   for c, lo, hi in zip(SHARE_COLORS, bins[:-1], bins[1:], strict=True)]
        handles.append(Patch(facecolor=HIDDEN_COLOR, label="Chưa có dữ liệu thôn"))
    outline = _outlines(conn, "commune", communes, r)
    if len(outline):
        outline.boundary.plot(ax=ax, color="#4a1486", linewidth=0.9)
    ax.legend(handles=handles, loc="lower left", fontsize=7, frameon=True)
    _frame_axes(ax, f"Độ phủ mô hình tự quản đến {r.end:%d/%m/%Y}")
    return _png(fig)
