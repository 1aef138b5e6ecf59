"""A suggestion end to end: inputs from the database, the covering problem, the figures.

``suggest(bind, request)`` builds the inputs (``geo.planner.inputs``), solves the MCLP or LSCP
(``geo.planner.covering``) and returns the chosen sites ranked by marginal gain, each with the
villages it newly covers, and the before/after figures (``geo.planner.figures``).
``evaluate(bind, request, lons, lats)`` gives the same figures for sites placed by hand; it
reuses the inputs of a recent call with the same request (``CONTEXT_TTL_S``) while the data
they were read from is unchanged (``DATA_VERSION_SQL``), so dragging a site costs only the
figures.

Bad requests raise ``PlanError`` naming the request field (the API answers 422 with it).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import text

from antt.crs import METRIC_SRID
from geo._db import Bind, connect
from geo.filters import IncidentFilter
from geo.planner import covering as cv
from geo.planner import figures as fg
from geo.planner import inputs as pin
from geo.planner.inputs import CandidateRequest, Scope, WeightFormula

MAX_RADIUS_M = 20_000.0  # a model reaching further than 20 km is not a neighbourhood model
CONTEXT_TTL_S = 120.0
Progress = Callable[[float, str], None]


class PlanError(ValueError):
    """A request the planner cannot answer, naming the field at fault (bilingual)."""

    def __init__(self, field_name: str, vi: str, en: str, **detail: Any) -> None:
        super().__init__(f"{field_name}: {en}")
        self.field, self.vi, self.en, self.detail = field_name, vi, en, detail


@dataclass(frozen=True)
class PlanRequest:
    """What the planner asked for (see the API docs for each field)."""

    scope: Scope
    on: date
    problem: str = "mclp"
    p: int | None = 5
    share: float | None = None
    radius_m: float | None = None
    demand: str = "villages"
    cell_m: float = 250.0
    weights: WeightFormula = field(default_factory=WeightFormula)
    period: IncidentFilter = field(default_factory=IncidentFilter)
    candidates: CandidateRequest = field(default_factory=CandidateRequest)
    model_type: str | None = None
    solver: str = "auto"
    time_limit: float = 10.0
    gap: float = 0.0
    min_count: int | None = 3

    def __post_init__(self) -> None:
        if self.problem not in ("mclp", "lscp"):
            raise PlanError("problem", "phải là 'mclp' hoặc 'lscp'", "must be 'mclp' or 'lscp'")
        if self.problem == "mclp" and (self.p is None or self.p < 1):
            raise PlanError("p", "phải là số nguyên >= 1", "must be an integer >= 1")
        if self.share is not None and not 0 < self.share <= 1:
            raise PlanError("share", "phải trong (0, 1]", "must be within (0, 1]")
        if self.radius_m is not None and not (0 < self.radius_m <= MAX_RADIUS_M):
            raise PlanError("radius_m", f"phải > 0 và <= {MAX_RADIUS_M:.0f} m",
                            f"must be > 0 and <= {MAX_RADIUS_M:.0f} m")
        if self.demand not in ("villages", "hexagons"):
            raise PlanError("demand", "phải là 'villages' hoặc 'hexagons'",
                            "must be 'villages' or 'hexagons'")

    def input_key(self) -> str:
        """Digest of everything the inputs depend on (not p, the solver or its limits)."""
        data = {k: v for k, v in asdict(self).items()
                if k not in ("problem", "p", "share", "solver", "time_limit", "gap")}
        return hashlib.md5(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Context:
    """The inputs of a request, as frames and arrays."""

    request: PlanRequest
    radius_m: float
    villages: pd.DataFrame
    demand: pd.DataFrame          # villages or hexagons, with 'weight'
    candidates: pd.DataFrame
    fixed: pd.DataFrame           # models counting for the demand (of the model type, if any)
    models: pd.DataFrame          # every active model near the scope
    institutions: pd.DataFrame
    reach: pd.DataFrame
    communes: pd.DataFrame
    built_s: float

    @property
    def demand_xy(self) -> np.ndarray:
        return self.demand[["x", "y"]].to_numpy(dtype=float)

    @property
    def weight(self) -> np.ndarray:
        return self.demand["weight"].to_numpy(dtype=float)

    @property
    def fixed_xy(self) -> np.ndarray:
        return self.fixed[["x", "y"]].to_numpy(dtype=float) if len(self.fixed) else np.empty((0, 2))

    @property
    def models_xy(self) -> np.ndarray:
        return self.models[["x", "y"]].to_numpy(dtype=float) if len(self.models) else np.empty((0, 2))


_CACHE: OrderedDict[tuple[str, str], tuple[float, Context]] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_MAX = 16


# What the inputs read, as one cheap probe: a write to any of these tables (an accepted plan, a
# model suspended by a review, a new institution) gives a new key, on every worker.
DATA_VERSION_SQL = """
SELECT concat_ws('/',
    (SELECT count(*) || ':' || COALESCE(max(updated_at)::text, '') FROM security_model),
    (SELECT count(*) || ':' || COALESCE(max(updated_at)::text, '') FROM institution),
    (SELECT count(*) || ':' || COALESCE(max(updated_at)::text, '') FROM launch_point),
    (SELECT count(*) FROM institution_year),
    (SELECT COALESCE(max(id), 0) FROM incident),
    (SELECT COALESCE(max(id), 0) || ':' || count(*) FROM admin_unit))"""


def _engine_key(bind: Bind) -> str:
    """The database and the version of the data the inputs read (see DATA_VERSION_SQL)."""
    with connect(bind) as conn:
        version = conn.execute(text(DATA_VERSION_SQL)).scalar_one()
        return f"{conn.engine.url.render_as_string(hide_password=True)}#{version}"


def build_context(bind: Bind, req: PlanRequest, progress: Progress | None = None,
                  use_cache: bool = True) -> Context:
    """The request's inputs (reused from a call with the same inputs within CONTEXT_TTL_S
    unless ``use_cache`` is False)."""
    key = (_engine_key(bind), req.input_key())
    now = time.monotonic()
    if use_cache:
        with _CACHE_LOCK:
            hit = _CACHE.get(key)
            if hit and now - hit[0] < CONTEXT_TTL_S:
                _CACHE.move_to_end(key)
                return hit[1]
    ctx = _build(bind, req, progress or (lambda f, m: None))
    with _CACHE_LOCK:
        _CACHE[key] = (now, ctx)
        while len(_CACHE) > _CACHE_MAX:
            _CACHE.popitem(last=False)
    return ctx


def _build(bind: Bind, req: PlanRequest, progress: Progress) -> Context:
    t0 = time.perf_counter()
    if req.model_type is not None:
        with connect(bind) as conn:
            known = conn.execute(text("SELECT 1 FROM model_type WHERE code = :c"),
                                 {"c": req.model_type}).first()
        if known is None:
            raise PlanError("model_type", "không có trong danh mục", f"unknown model type {req.model_type!r}")
    radius = req.radius_m if req.radius_m is not None else pin.default_radius(bind, req.model_type)
    progress(0.05, "Thôn trong phạm vi / villages in scope")
    villages = pin.villages(bind, req.on, req.scope, req.period, req.min_count)
    if villages.empty:
        raise PlanError("scope", "không có thôn nào trong phạm vi (không có nhu cầu)",
                        "the scope holds no village (no demand)")
    villages["weight"] = req.weights.apply(villages)
    if req.demand == "villages":
        demand = villages
    else:
        progress(0.15, "Lưới lục giác / hexagon grid")
        demand = pin.hexagons(bind, req.on, req.scope, req.cell_m, req.period, req.min_count, villages)
        demand["weight"] = req.weights.apply(demand)
    if float(demand["weight"].sum()) <= 0:
        raise PlanError("weights", "mọi đơn vị nhu cầu có trọng số 0", "every demand unit has weight 0")
    progress(0.3, "Địa điểm ứng viên / candidate sites")
    cands = pin.candidates(bind, req.on, req.scope, req.candidates)
    models = pin.fixed_sites(bind, req.on, req.scope, radius)
    fixed = models if req.model_type is None else models[models["type_code"] == req.model_type]
    inst = pin.institutions(bind, req.on, req.scope)
    communes = pin.scope_units(bind, req.on, req.scope)
    progress(0.4, "Độ phủ hiện có / current reach")
    reach = fg.village_reach(bind, req.on, radius, req.scope, [int(i) for i in villages["id"]],
                             sorted(set(communes["province_code"].dropna())))
    return Context(req, float(radius), villages, demand.reset_index(drop=True), cands,
                   fixed.reset_index(drop=True), models, inst, reach, communes, time.perf_counter() - t0)


def _site_points(bind: Bind, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    """EPSG:3405 coordinates of lon/lat points, transformed by PostGIS (as stored points are)."""
    if len(lons) == 0:
        return np.empty((0, 2))
    df = pin.frame(bind, f"""
    SELECT ST_X(g) AS x, ST_Y(g) AS y FROM (
        SELECT t.k, ST_Transform(ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326), {METRIC_SRID}) AS g
        FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[])) WITH ORDINALITY AS t(lon, lat, k)) s
    ORDER BY k""", {"lons": [float(x) for x in lons], "lats": [float(y) for y in lats]})
    return df[["x", "y"]].to_numpy(dtype=float)


def _ranked_sites(ctx: Context, site_xy: np.ndarray, info: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sites in order of marginal gain (demand weight newly covered given the fixed models and
    the sites before), each with the villages it newly brings within R."""
    r = ctx.radius_m
    a = cv.coverage_matrix(ctx.demand_xy, site_xy, r).tocsc()
    fixed_cov = cv.covered_by(ctx.demand_xy, ctx.fixed_xy, r) if len(ctx.fixed) else \
        np.zeros(len(ctx.demand), dtype=bool)
    w = np.where(fixed_cov, 0.0, ctx.weight)
    from geo.planner.solvers import rank_by_gain

    order, gains = rank_by_gain(a, w, list(range(len(site_xy))))
    vxy = ctx.villages[["x", "y"]].to_numpy(dtype=float)
    taken = cv.covered_by(vxy, ctx.models_xy, r) if len(ctx.models) else np.zeros(len(vxy), dtype=bool)
    vcols = cv.coverage_matrix(vxy, site_xy, r).tocsc()
    v = ctx.villages
    pops = [None if pd.isna(x) else int(x) for x in v["population"]]
    cols = list(zip(v["id"].astype(int), v["code"], v["name"], v["commune_code"], pops, strict=True))
    out = []
    for rank, (j, gain) in enumerate(zip(order, gains, strict=True), start=1):
        rows = vcols.indices[vcols.indptr[j]:vcols.indptr[j + 1]]
        new = np.sort(rows[~taken[rows]])
        taken[rows] = True
        out.append({**info[j], "rank": rank, "input_index": int(j), "gain": float(gain),
                    "villages": [dict(zip(("id", "code", "name", "commune_code", "population"), cols[k],
                                          strict=True)) for k in new]})
    return out


def _unreachable_villages(ctx: Context, demand_idx: np.ndarray) -> list[dict[str, Any]]:
    """The villages behind unreachable demand units (a hexagon names the village holding it)."""
    if ctx.request.demand == "villages":
        ids = ctx.demand.iloc[demand_idx]["id"].astype("int64").tolist()
    else:
        ids = sorted({int(v) for v in ctx.demand.iloc[demand_idx]["village_id"].dropna()})
    vill = ctx.villages[ctx.villages["id"].isin(ids)]
    return [{"id": int(v.id), "code": v.code, "name": v.name, "commune_code": v.commune_code}
            for v in vill.itertuples()]


def _result(bind: Bind, ctx: Context, sites: list[dict[str, Any]], solution: cv.Solution | None,
            site_xy: np.ndarray) -> dict[str, Any]:
    lon = np.array([s["lon"] for s in sites], dtype=float)
    lat = np.array([s["lat"] for s in sites], dtype=float)
    figs = fg.before_after(bind, ctx.request.on, ctx.radius_m, ctx.villages, ctx.reach, ctx.institutions,
                           ctx.fixed_xy, ctx.demand_xy, ctx.weight, site_xy, lon, lat, ctx.models_xy)
    ranked = _ranked_sites(ctx, site_xy, sites)
    hosts = figs.pop("hosts")
    for s in ranked:
        s["host_village_id"] = hosts[s["input_index"]]
    within_after = figs.pop("village_within_r_after")
    within_before = figs.pop("village_within_r_before")
    figs.pop("village_share_after")
    v = ctx.villages
    uncovered = [{"id": int(x.id), "code": x.code, "name": x.name, "commune_code": x.commune_code,
                  "population": None if pd.isna(x.population) else int(x.population),
                  "weight": float(x.weight)} for x in v[~within_after].itertuples()]
    d = ctx.demand
    r = ctx.radius_m
    d_before = cv.covered_by(ctx.demand_xy, ctx.fixed_xy, r) if len(ctx.fixed) else \
        np.zeros(len(d), dtype=bool)
    d_after = d_before | (cv.covered_by(ctx.demand_xy, site_xy, r) if len(site_xy) else False)
    units = _units(ctx, d_before, d_after)
    reach_xy = np.vstack([ctx.fixed_xy, ctx.candidates[["x", "y"]].to_numpy(dtype=float).reshape(-1, 2)])
    reachable = cv.covered_by(ctx.demand_xy, reach_xy, r) if len(reach_xy) else np.zeros(len(d), dtype=bool)
    out = {
        "date": ctx.request.on.isoformat(), "radius_m": r, "sites": ranked, "figures": figs,
        "uncovered_villages": uncovered,
        "unreachable_villages": _unreachable_villages(ctx, np.flatnonzero(~reachable)),
        "demand": {"kind": ctx.request.demand, "formula": ctx.request.weights.describe(),
                   "cell_m": ctx.request.cell_m if ctx.request.demand == "hexagons" else None,
                   "total_weight": float(ctx.weight.sum()), "units": units,
                   "incidents_suppressed_below": ctx.request.min_count},
        "inputs": {"candidates": int(len(ctx.candidates)), "fixed_models": int(len(ctx.fixed)),
                   "active_models_near": int(len(ctx.models)), "villages": int(len(v)),
                   "demand_units": int(len(d)), "communes": ctx.communes["code"].tolist(),
                   "province_codes": sorted(set(ctx.communes["province_code"].dropna())),
                   "built_s": round(ctx.built_s, 3)},
        "village_within_r": {"before": v.loc[within_before, "id"].astype(int).tolist(),
                             "after": v.loc[within_after, "id"].astype(int).tolist()},
    }
    if solution is not None:
        out["solver"] = {k: solution.summary()[k] for k in
                         ("problem", "solver", "status", "objective", "bound", "gap", "time_s", "phases",
                          "reduction", "p", "target_weight", "message", "total_weight", "fixed_weight",
                          "covered_weight")}
    return out


def _units(ctx: Context, before: np.ndarray, after: np.ndarray) -> list[dict[str, Any]]:
    d = ctx.demand
    cols = ["population", "households", "incidents", "incidents_suppressed", "institutions_unsafe",
            "no_model"]
    keys = ["id", "code", "name", "commune_code"] if ctx.request.demand == "villages" else \
        ["i", "j", "village_id"]
    recs = []
    for k, row in enumerate(d[keys + cols + ["weight", "lon", "lat"]].itertuples(index=False)):
        rec = dict(zip(keys + cols + ["weight", "lon", "lat"], row, strict=True))
        for c in ("population", "households"):
            rec[c] = None if pd.isna(rec[c]) else round(float(rec[c]), 3)
        for c in ("incidents", "institutions_unsafe", "no_model", "id", "i", "j"):
            if c in rec and rec[c] is not None and not pd.isna(rec[c]):
                rec[c] = int(rec[c])
        if "village_id" in rec:
            rec["village_id"] = None if pd.isna(rec["village_id"]) else int(rec["village_id"])
        rec["incidents_suppressed"] = bool(rec["incidents_suppressed"])
        rec["weight"] = float(rec["weight"])
        rec["covered_before"], rec["covered_after"] = bool(before[k]), bool(after[k])
        recs.append(rec)
    return recs


def suggest(bind: Bind, req: PlanRequest, progress: Progress | None = None,
            use_cache: bool = True) -> dict[str, Any]:
    """Solve the request; the answer's ``sites`` are ranked by marginal gain."""
    progress = progress or (lambda f, m: None)
    ctx = build_context(bind, req, progress, use_cache=use_cache)
    cands = ctx.candidates
    if cands.empty:
        raise PlanError("candidates", "không có địa điểm ứng viên nào trong phạm vi",
                        "no candidate site in the scope")
    if req.problem == "mclp" and req.p > len(cands):
        raise PlanError("p", f"lớn hơn số địa điểm ứng viên ({len(cands)})",
                        f"exceeds the number of candidate sites ({len(cands)})", candidates=len(cands))
    progress(0.5, "Giải bài toán / solving")
    a = cv.coverage_matrix(ctx.demand_xy, cands[["x", "y"]].to_numpy(dtype=float), ctx.radius_m)
    fixed = cv.covered_by(ctx.demand_xy, ctx.fixed_xy, ctx.radius_m) if len(ctx.fixed) else None
    if req.problem == "mclp":
        sol = cv.mclp_matrix(a, ctx.weight, req.p, fixed, solver=req.solver, time_limit=req.time_limit,
                             gap=req.gap)
    else:
        sol = cv.lscp_matrix(a, ctx.weight, req.share, fixed, solver=req.solver, time_limit=req.time_limit)
        if sol.status == "infeasible":
            unreachable = _unreachable_villages(ctx, sol.unreachable)
            raise PlanError("share", "không bộ địa điểm ứng viên nào đạt được mục tiêu; các thôn không "
                            "thể với tới được liệt kê", "no set of candidate sites reaches the target; the "
                            "villages no candidate can reach are listed", unreachable_villages=unreachable,
                            unreachable_units=int(len(sol.unreachable)),
                            reachable_share=float(1 - ctx.weight[sol.unreachable].sum() / ctx.weight.sum()))
    progress(0.85, "Số liệu trước/sau / before and after figures")
    chosen = cands.iloc[sol.sites]
    site_xy = chosen[["x", "y"]].to_numpy(dtype=float)
    info = [{"kind": c.kind, "ref_id": int(c.ref_id), "name": c.name, "lon": float(c.lon),
             "lat": float(c.lat)} for c in chosen.itertuples()]
    out = _result(bind, ctx, info, sol, site_xy)
    progress(1.0, "Xong / done")
    return out


def evaluate(bind: Bind, req: PlanRequest, lons: list[float], lats: list[float],
             names: list[str] | None = None, use_cache: bool = True) -> dict[str, Any]:
    """The figures of sites placed by hand (lon/lat, EPSG:4326), ranked like a suggestion's."""
    if len(lons) != len(lats):
        raise PlanError("sites", "thiếu tọa độ", "each site needs lon and lat")
    ctx = build_context(bind, req, use_cache=use_cache)
    lon = np.asarray(lons, dtype=float)
    lat = np.asarray(lats, dtype=float)
    site_xy = _site_points(bind, lon, lat)
    info = [{"kind": "manual", "ref_id": k + 1, "name": (names[k] if names and k < len(names) and names[k]
                                                        else f"Điểm / site {k + 1}"),
             "lon": float(lon[k]), "lat": float(lat[k])} for k in range(len(lon))]
    return _result(bind, ctx, info, None, site_xy)
