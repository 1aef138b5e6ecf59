"""The launch-point planner: suggest sites, evaluate hand-placed ones, save, compare and
accept scenarios (``/planner/...``). The work is ``geo.planner``'s; this module turns requests
into its arguments, applies roles, scopes and the privacy rules, and shapes GeoJSON.

Roles (DOMAIN.md: planners are the commune police and the Steering Committee 138, who hold
the ``planner`` role; the ``police`` role is for incident analysis): ``planner`` and ``admin``
use the tool; every other role (police, committee, viewer) reads accepted plans only.
Scopes: a province- or commune-scoped account plans inside its unit only (403 for another
unit, 422 for a drawn polygon reaching outside it) and sees only scenarios inside it.

Privacy: incidents enter the weights only as counts per village or hexagon, aggregated in SQL.
For roles that may not see incident points, a unit's count under ``suppress_below`` (3) is 0,
as in the analytics. A scenario saved from exact counts (by an admin) is shown to such roles
without its incident figures, weights and gains.

Large work (a province, or hexagon demand) runs as a job (``antt.jobs``): ``202 Accepted``
with ``Location: /jobs/{id}``; the job's result is what the direct call returns.
"""

import datetime as dt
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Connection, text

from antt import jobs
from antt.crs import METRIC_SRID
from antt.db import get_engine
from antt.settings import get_settings
from api.audit import record
from api.deps import Principal, get_conn, get_principal
from api.guards import reject_nul
from api.problems import Problem, field_error
from geo.filters import IncidentFilter
from geo.planner import inputs as pin
from geo.planner import plan as gpl

TOOL_ROLES = ("planner", "admin")
PROBLEM = "application/problem+json"
VN_LON, VN_LAT = (102.0, 118.0), (6.0, 23.5)
DEFAULT_THEME = "Phát động phong trào toàn dân bảo vệ an ninh Tổ quốc"
JOB_KIND = "planner.suggest"
# figures and fields that carry incident counts (left out for roles without points when the
# scenario was computed from exact counts)
# Largest hexagon grid (demand, or candidates in drawn areas) a request may build: the analytics'
# limit (api.analytics.MAX_GRID_CELLS); a polygon the size of the country at 50 m is 2.6e8 cells
MAX_PLAN_CELLS = 250_000
INCIDENT_FIGURES = ("incidents", "incidents_in_villages_within_r", "demand_weight", "demand_weight_covered")
# what of the solver's answer such roles see: how it was solved, not the weights it reached (with
# a formula of "1 x incidents" the objective and the total weight are the exact counts)
SOLVER_SHOWN = ("problem", "solver", "status", "time_s", "phases", "p")


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    words = {401: "Chưa đăng nhập / not authenticated", 403: "Không có quyền hoặc ngoài phạm vi / forbidden",
             404: "Không tìm thấy / not found", 409: "Xung đột trạng thái / state conflict",
             413: "Lưới lục giác quá lớn / hexagon grid too large",
             422: "Dữ liệu không hợp lệ / invalid input"}
    return {c: {"description": words[c], "content": {PROBLEM: {}}} for c in codes}


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_nul)]
Code = Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[0-9A-Za-z._-]+$")]
Lon = Annotated[float, Field(ge=VN_LON[0], le=VN_LON[1], allow_inf_nan=False)]
Lat = Annotated[float, Field(ge=VN_LAT[0], le=VN_LAT[1], allow_inf_nan=False)]
Position = Annotated[list[float], Field(min_length=2, max_length=3)]
Ring = Annotated[list[Position], Field(min_length=4, max_length=5000)]


def _positions_in_vn(rings: list[list[list[float]]]) -> None:
    for ring in rings:
        for pos in ring:
            lon, lat = pos[0], pos[1]
            if not (VN_LON[0] <= lon <= VN_LON[1] and VN_LAT[0] <= lat <= VN_LAT[1]):
                raise ValueError("coordinates must be lon/lat (EPSG:4326) inside Vietnam")


class PolygonIn(BaseModel):
    """A GeoJSON Polygon or MultiPolygon in EPSG:4326 ([lon, lat] positions, inside Vietnam)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["Polygon", "MultiPolygon"]
    coordinates: list[Any] = Field(min_length=1, max_length=50)

    @field_validator("coordinates")
    @classmethod
    def _shape(cls, value: list[Any], info) -> list[Any]:
        polys = value if info.data.get("type") == "MultiPolygon" else [value]
        try:
            from pydantic import TypeAdapter

            adapter = TypeAdapter(list[Annotated[list[Ring], Field(min_length=1, max_length=50)]])
            checked = adapter.validate_python(polys)
        except Exception as exc:  # noqa: BLE001 - reported as the field's own error
            raise ValueError(f"not a valid {info.data.get('type')}: {exc.__class__.__name__}") from None
        for rings in checked:
            _positions_in_vn(rings)
        return value

    def text(self) -> str:
        return json.dumps({"type": self.type, "coordinates": self.coordinates})


class ScopeIn(BaseModel):
    """Exactly one of a province code, a commune code or a drawn polygon; none = the
    account's own unit."""

    model_config = ConfigDict(extra="forbid")
    province: Code | None = None
    commune: Code | None = None
    polygon: PolygonIn | None = None


class WeightsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    population: float = Field(1.0, ge=0, le=1e6, allow_inf_nan=False, description="× dân số / population")
    households: float = Field(0.0, ge=0, le=1e6, allow_inf_nan=False, description="× số hộ / households")
    incidents: float = Field(0.0, ge=0, le=1e6, allow_inf_nan=False,
                             description="× vụ việc trong kỳ / incidents in the period")
    institutions_unsafe: float = Field(0.0, ge=0, le=1e6, allow_inf_nan=False,
                                       description="× cơ sở chưa đạt 'An toàn về ANTT'")
    no_model: float = Field(0.0, ge=0, le=1e9, allow_inf_nan=False,
                            description="× [thôn chưa có mô hình] / [no active model]")


class SitePoint(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lon: Lon
    lat: Lat


class CandidatesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kinds: list[Literal["villages", "institutions", "launch_points", "drawn"]] = Field(
        default_factory=lambda: ["villages"], min_length=1, max_length=4)
    points: list[SitePoint] = Field(default_factory=list, max_length=500,
                                    description="Điểm vẽ / drawn points")
    polygons: list[PolygonIn] = Field(default_factory=list, max_length=20,
                                      description="Vùng vẽ: tâm ô lục giác bên trong / drawn areas")
    exclusions: list[PolygonIn] = Field(default_factory=list, max_length=20, description="Vùng loại trừ")
    cell_m: float = Field(250.0, ge=50, le=5000, allow_inf_nan=False,
                          description="Cạnh lục giác trong vùng vẽ (m) / hexagon side in drawn areas")


class SuggestIn(BaseModel):
    """A suggestion request (also the parameters of evaluate and of a saved scenario)."""

    model_config = ConfigDict(extra="forbid")
    scope: ScopeIn = Field(default_factory=ScopeIn)
    date: dt.date | None = Field(None, description="Ngày tính / as of (default today)")
    problem: Literal["mclp", "lscp"] = "mclp"
    p: int = Field(5, ge=1, le=2000, description="Số điểm mới (MCLP) / new sites")
    share: float | None = Field(None, gt=0, le=1, allow_inf_nan=False,
                                description="LSCP: tỷ lệ trọng số cần phủ (trống = mọi đơn vị)")
    radius_m: float | None = Field(None, gt=0, le=gpl.MAX_RADIUS_M, allow_inf_nan=False,
                                   description="Bán kính (m); trống = tầm của loại mô hình hoặc 500")
    demand: Literal["villages", "hexagons"] = "villages"
    cell_m: float = Field(250.0, ge=50, le=2000, allow_inf_nan=False, description="Cạnh lục giác nhu cầu (m)")
    weights: WeightsIn = Field(default_factory=WeightsIn)
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    category: Annotated[str, Field(max_length=100), AfterValidator(_no_nul)] | None = None
    youth: bool | None = None
    candidates: CandidatesIn = Field(default_factory=CandidatesIn)
    model_type: Code | None = None
    solver: Literal["auto", "exact", "greedy"] = "auto"
    time_limit: float = Field(10.0, gt=0, le=60, allow_inf_nan=False, description="Giới hạn thời gian (s)")
    gap: float = Field(0.0, ge=0, lt=1, allow_inf_nan=False, description="Khoảng cách tối ưu chấp nhận")


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lon: Lon
    lat: Lat
    name: Text | None = None


class EvaluateIn(SuggestIn):
    sites: list[SiteIn] = Field(min_length=1, max_length=2000)


class SuggestRun(SuggestIn):
    run: Literal["auto", "direct", "job"] = Field(
        "auto", description="auto: một tỉnh hoặc lưới lục giác chạy nền / "
                            "a province or hexagons run as a job")


class ScenarioIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text
    request: SuggestIn
    sites: list[SiteIn] | None = Field(None, max_length=2000,
                                       description="Trống: chạy lại gợi ý / empty: re-run the suggestion")


class AcceptIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    as_: Literal["launch_points", "models"] = Field("launch_points", alias="as")
    launch_date: dt.date | None = Field(None, description="launch_points: ngày phát động (default today)")
    theme: Text = DEFAULT_THEME
    type_code: Code | None = Field(None, description="models: loại mô hình")
    founded_on: dt.date | None = Field(None, description="models: ngày thành lập (<= hôm nay)")


class PlanOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = "FeatureCollection"
    features: list[dict[str, Any]]


# --- helpers -------------------------------------------------------------------------------

def today_vn() -> dt.date:
    return dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).date()


def _bad(field: str, vi: str, en: str, **extra: Any) -> Problem:
    return Problem(422, f"{field}: {vi}", f"{field}: {en}", [field_error(field, vi, en)], **extra)


def _require_tool(principal: Principal) -> None:
    if principal.role not in TOOL_ROLES:
        raise Problem(403, f"Vai trò '{principal.role}' chỉ xem được kế hoạch đã duyệt",
                      f"Role '{principal.role}' may only read accepted plans",
                      [field_error("role", "không dùng được công cụ", "may not use the planner")])


def _out_of_scope(field: str) -> Problem:
    return Problem(403, "Ngoài phạm vi tài khoản", "Outside this account's scope",
                   [field_error(field, "ngoài phạm vi", "outside the account's scope")])


def _resolve_scope(conn: Connection, principal: Principal, s: ScopeIn, on: dt.date) -> pin.Scope:
    given = [x is not None for x in (s.province, s.commune, s.polygon)]
    if sum(given) > 1:
        raise _bad("scope", "chỉ chọn một: tỉnh, xã hoặc vùng vẽ", "give one of province, commune, polygon")
    if not any(given):
        if principal.scope_level == "province":
            return pin.Scope(province_code=principal.scope_code)
        if principal.scope_level == "commune":
            return pin.Scope(commune_code=principal.scope_code)
        raise _bad("scope", "bắt buộc (tỉnh, xã hoặc vùng vẽ)", "required (province, commune or polygon)")
    if s.commune is not None:
        row = conn.execute(text("SELECT province_code FROM admin_unit WHERE level = 'commune' AND code = :c "
                                "AND valid_from <= :on AND (valid_to IS NULL OR :on < valid_to) LIMIT 1"),
                           {"c": s.commune, "on": on}).first()
        if row is None:
            raise _bad("scope.commune", "không có xã này vào ngày tính", "no such commune on the date")
        if (principal.scope_level == "province" and row.province_code != principal.scope_code) or \
                (principal.scope_level == "commune" and s.commune != principal.scope_code):
            raise _out_of_scope("scope.commune")
        return pin.Scope(commune_code=s.commune)
    if s.province is not None:
        exists = conn.execute(text("SELECT 1 FROM admin_unit WHERE level = 'province' AND code = :c "
                                   "AND valid_from <= :on AND (valid_to IS NULL OR :on < valid_to)"),
                              {"c": s.province, "on": on}).first()
        if exists is None:
            raise _bad("scope.province", "không có tỉnh này vào ngày tính", "no such province on the date")
        if principal.scope_level == "commune" or (principal.scope_level == "province"
                                                  and s.province != principal.scope_code):
            raise _out_of_scope("scope.province")
        return pin.Scope(province_code=s.province)
    poly = s.polygon.text()
    why = pin.polygon_problem(conn, poly)
    if why:
        raise _bad("scope.polygon", f"vùng không hợp lệ: {why}", f"invalid polygon: {why}")
    _polygon_in_account(conn, principal, poly, on, "scope.polygon")
    return pin.Scope(polygon=poly)


def _polygon_in_account(conn: Connection, principal: Principal, poly: str, on: dt.date, field: str) -> None:
    """422 unless the polygon lies within the account's unit (50 m of slack for drawing)."""
    if principal.scope_level == "all":
        return
    level = "province" if principal.scope_level == "province" else "commune"
    inside = conn.execute(text(f"""
        SELECT ST_CoveredBy(ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(:p), 4326), {METRIC_SRID}),
                            ST_Buffer(ST_Transform(u.geom, {METRIC_SRID}), 50))
        FROM admin_unit u WHERE u.level = '{level}' AND u.code = :c
          AND u.valid_from <= :on AND (u.valid_to IS NULL OR :on < u.valid_to)
        ORDER BY u.valid_from DESC LIMIT 1"""), {"p": poly, "c": principal.scope_code, "on": on}).scalar()
    if not inside:
        raise _bad(field, "vùng vẽ nằm ngoài phạm vi tài khoản",
                   "the polygon reaches outside the account's scope")


def plan_request(conn: Connection, principal: Principal, body: SuggestIn) -> gpl.PlanRequest:
    """The geo request for BODY, with the caller's scope and privacy rules; 4xx on bad input."""
    on = body.date or today_vn()
    if on > today_vn():
        raise _bad("date", "không được ở tương lai", "cannot be in the future")
    if on < dt.date(2000, 1, 1):
        raise _bad("date", "trước năm 2000", "before 2000")
    scope = _resolve_scope(conn, principal, body.scope, on)
    settings = get_settings()
    if body.demand == "hexagons" and not principal.sees_points and body.cell_m < settings.min_public_hex_m:
        raise _bad("cell_m", f"tối thiểu {settings.min_public_hex_m:.0f} m với vai trò này",
                   f"at least {settings.min_public_hex_m:.0f} m for this role")
    if body.problem == "lscp" and body.demand == "hexagons" and body.share is None:
        pass  # every hexagon must be reached: allowed, the answer may be infeasible (422 below)
    if body.demand == "hexagons":
        cells = _estimated_cells(conn, f"SELECT g FROM ({scope.area_sql()}) a",
                                 {**scope.area_params(), "on": on}, body.cell_m)
        _refuse_large_grid(cells, "cell_m")
    category = body.category if body.category not in (None, "", "all") else None
    if category is not None and not conn.execute(
            text("SELECT 1 FROM incident_category WHERE code = :c"), {"c": category}).first():
        raise _bad("category", "không có trong danh mục", f"unknown category {category!r}")
    end = body.period_end or on
    start = body.period_start or (end - dt.timedelta(days=364))
    try:
        period = IncidentFilter(start=start, end=end, category=category, youth=body.youth)
    except ValueError as exc:
        raise _bad("period_end", "trước ngày bắt đầu", str(exc)) from exc
    for k, poly in enumerate(body.candidates.polygons):
        why = pin.polygon_problem(conn, poly.text())
        if why:
            raise _bad(f"candidates.polygons.{k}", f"vùng không hợp lệ: {why}", f"invalid polygon: {why}")
        _polygon_in_account(conn, principal, poly.text(), on, f"candidates.polygons.{k}")
    if body.candidates.polygons and "drawn" in body.candidates.kinds:
        cells = sum(_estimated_cells(conn, f"SELECT ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(:p), 4326), "
                                           f"{METRIC_SRID}) AS g", {"p": poly.text()}, body.candidates.cell_m)
                    for poly in body.candidates.polygons)
        _refuse_large_grid(cells, "candidates.cell_m")
    for k, poly in enumerate(body.candidates.exclusions):
        why = pin.polygon_problem(conn, poly.text())
        if why:
            raise _bad(f"candidates.exclusions.{k}", f"vùng không hợp lệ: {why}", f"invalid polygon: {why}")
    if body.candidates.points:
        _points_in_scope(conn, scope, on, body.candidates.points)
    if body.model_type is not None and not conn.execute(
            text("SELECT 1 FROM model_type WHERE code = :c"), {"c": body.model_type}).first():
        raise _bad("model_type", "không có trong danh mục", f"unknown model type {body.model_type!r}")
    if "drawn" in body.candidates.kinds and not (body.candidates.points or body.candidates.polygons):
        raise _bad("candidates.kinds", "'drawn' cần điểm hoặc vùng vẽ",
                   "'drawn' needs drawn points or polygons")
    try:
        weights = pin.WeightFormula(**body.weights.model_dump())
        cands = pin.CandidateRequest(
            kinds=tuple(dict.fromkeys(body.candidates.kinds)),
            points=tuple((p.lon, p.lat) for p in body.candidates.points),
            polygons=tuple(p.text() for p in body.candidates.polygons),
            exclusions=tuple(p.text() for p in body.candidates.exclusions), cell_m=body.candidates.cell_m)
        return gpl.PlanRequest(scope=scope, on=on, problem=body.problem, p=body.p, share=body.share,
                               radius_m=body.radius_m, demand=body.demand, cell_m=body.cell_m,
                               weights=weights, period=period, candidates=cands,
                               model_type=body.model_type, solver=body.solver,
                               time_limit=body.time_limit, gap=body.gap,
                               min_count=None if principal.sees_points else settings.suppress_below)
    except gpl.PlanError as exc:
        raise _bad(exc.field, exc.vi, exc.en, **exc.detail) from exc
    except ValueError as exc:
        raise _bad("weights", "không hợp lệ", str(exc)) from exc


def _estimated_cells(conn: Connection, geom_sql: str, params: dict[str, Any], cell_m: float) -> float:
    """About how many hexagons of side ``cell_m`` a grid over the geometry of ``geom_sql`` (one
    row, ``g`` in EPSG:3405) holds: its area over a hexagon's, plus one cell per side along its
    outline (the cells it cuts). Known before any grid is built."""
    from geo.grid import hexagon_area_m2

    row = conn.execute(text(f"SELECT ST_Area(t.g) AS a, ST_Perimeter(t.g) AS l FROM ({geom_sql}) t"),
                       params).first()
    if row is None or row.a is None:
        return 0.0
    return float(row.a) / hexagon_area_m2(cell_m) + float(row.l) / cell_m


def _refuse_large_grid(cells: float, field: str) -> None:
    if cells > MAX_PLAN_CELLS:
        raise Problem(413, f"Khoảng {cells:,.0f} ô lục giác; hãy tăng '{field}' hoặc chọn vùng nhỏ hơn",
                      f"About {cells:,.0f} hexagons; use a larger '{field}' or a smaller area",
                      [field_error(field, "quá nhỏ cho vùng này", "too small for this area")],
                      limit=MAX_PLAN_CELLS)


def _points_in_scope(conn: Connection, scope: pin.Scope, on: dt.date, points: list[SitePoint]) -> None:
    rows = conn.execute(text(f"""
        WITH area AS ({scope.area_sql()})
        SELECT t.k
        FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[])) WITH ORDINALITY AS t(lon, lat, k), area
        WHERE NOT ST_Covers(area.g4326, ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326)) ORDER BY t.k"""),
                        {**scope.area_params(), "on": on, "lons": [p.lon for p in points],
                         "lats": [p.lat for p in points]}).all()
    if rows:
        k = int(rows[0].k) - 1
        raise _bad(f"candidates.points.{k}", "điểm vẽ nằm ngoài phạm vi tính",
                   "the drawn point is outside the scope")


def _plan_error(exc: gpl.PlanError) -> Problem:
    return _bad(exc.field, exc.vi, exc.en, **exc.detail)


def to_geojson(result: dict[str, Any], parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """A geo.planner answer as a FeatureCollection of sites (ranked), with the rest alongside."""
    features = [{"type": "Feature", "id": s["rank"],
                 "geometry": {"type": "Point", "coordinates": [s["lon"], s["lat"]]},
                 "properties": {**{k: v for k, v in s.items() if k not in ("lon", "lat")},
                                "radius_m": result["radius_m"]}}
                for s in result["sites"]]
    out = {"type": "FeatureCollection", "features": features, "numberReturned": len(features),
           **{k: v for k, v in result.items() if k != "sites"}}
    if parameters is not None:
        out["parameters"] = parameters
    return out


def _with_village_points(conn: Connection, result: dict[str, Any]) -> None:
    """Add lon/lat (point on surface) to the uncovered and unreachable village lists."""
    ids = {v["id"] for key in ("uncovered_villages", "unreachable_villages") for v in result.get(key, [])}
    if not ids:
        return
    rows = conn.execute(text("SELECT id, ST_X(p) AS lon, ST_Y(p) AS lat FROM (SELECT id, "
                             "ST_PointOnSurface(geom) p FROM admin_unit WHERE id = ANY(:ids)) t"),
                        {"ids": sorted(ids)}).all()
    where = {r.id: (r.lon, r.lat) for r in rows}
    for key in ("uncovered_villages", "unreachable_villages"):
        for v in result.get(key, []):
            v["lon"], v["lat"] = where.get(v["id"], (None, None))


# --- the job kind (also the direct call) -----------------------------------------------------

@jobs.job_kind(JOB_KIND)
def run_suggest(ctx: jobs.JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """Suggest (as a job or directly): params = {'body': SuggestIn JSON, 'principal': {...}}."""
    principal = Principal(**params["principal"])
    body = SuggestIn.model_validate(params["body"])
    with ctx.engine.connect() as conn:
        req = plan_request(conn, principal, body)
        try:
            result = gpl.suggest(conn, req, progress=lambda f, m: ctx.progress(f, m))
        except gpl.PlanError as exc:
            raise jobs.JobError(exc.vi, exc.en, field=exc.field, **exc.detail) from exc
        _with_village_points(conn, result)
    return to_geojson(result, body.model_dump(mode="json"))


# --- routes --------------------------------------------------------------------------------

router = APIRouter(prefix="/planner", tags=["planner"], dependencies=[Depends(reject_nul)])


@router.post("/suggest", response_model=PlanOut, responses={**_responses(401, 403, 413, 422),
             202: {"description": "Chạy nền / running as a job: poll Location"}},
             summary="Gợi ý điểm phát động / suggest launch points (MCLP or LSCP)")
def suggest(body: SuggestRun, principal: Principal = Depends(get_principal),
            conn: Connection = Depends(get_conn)) -> Any:
    _require_tool(principal)
    req_body = SuggestIn.model_validate(body.model_dump(exclude={"run"}))
    req = plan_request(conn, principal, req_body)  # 4xx now, before any job starts
    as_job = body.run == "job" or (body.run == "auto" and (req.scope.province_code is not None
                                                           or req.demand == "hexagons"))
    params = {"body": req_body.model_dump(mode="json"),
              "principal": {"username": principal.username, "role": principal.role,
                            "scope_level": principal.scope_level, "scope_code": principal.scope_code}}
    if as_job:
        from api.jobs import accepted

        job_id = jobs.submit(get_engine(), JOB_KIND, params, owner=principal.username,
                             owner_role=principal.role)
        return accepted(job_id)
    try:
        return jobs.run_direct(get_engine(), JOB_KIND, params)
    except jobs.JobError as exc:
        detail = dict(exc.detail)
        field = detail.pop("field", "body")
        raise Problem(422, f"{field}: {exc.vi}", f"{field}: {exc.en}", [field_error(field, exc.vi, exc.en)],
                      **detail) from exc


@router.post("/evaluate", response_model=PlanOut, responses=_responses(401, 403, 413, 422),
             summary="Tính số liệu cho các điểm đặt tay / figures of hand-placed sites")
def evaluate(body: EvaluateIn, principal: Principal = Depends(get_principal),
             conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    _require_tool(principal)
    req_body = SuggestIn.model_validate(body.model_dump(exclude={"sites"}))
    req = plan_request(conn, principal, req_body)
    _sites_in_scope(conn, req, body.sites)
    try:
        result = gpl.evaluate(conn, req, [s.lon for s in body.sites], [s.lat for s in body.sites],
                              [s.name for s in body.sites])
    except gpl.PlanError as exc:
        raise _plan_error(exc) from exc
    _with_village_points(conn, result)
    return to_geojson(result, req_body.model_dump(mode="json"))


def _sites_in_scope(conn: Connection, req: gpl.PlanRequest, sites: list[SiteIn]) -> None:
    rows = conn.execute(text(f"""
        WITH area AS ({req.scope.area_sql()})
        SELECT t.k
        FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[])) WITH ORDINALITY AS t(lon, lat, k), area
        WHERE NOT ST_DWithin(ST_Transform(ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326), {METRIC_SRID}),
                             area.g, 50)
        ORDER BY t.k"""), {**req.scope.area_params(), "on": req.on, "lons": [s.lon for s in sites],
                           "lats": [s.lat for s in sites]}).all()
    if rows:
        k = int(rows[0].k) - 1
        raise _bad(f"sites.{k}", "điểm nằm ngoài phạm vi tính", "the site is outside the scope")


# --- scenarios -----------------------------------------------------------------------------

def _scenario_visible(principal: Principal, row: Any) -> bool:
    if principal.role not in TOOL_ROLES and row.status != "accepted":
        return False
    if principal.scope_level == "province":
        return row.province_code == principal.scope_code
    if principal.scope_level == "commune":
        return principal.scope_code in (row.commune_codes or [])
    return True


def _redacted(principal: Principal, exact_counts: bool) -> bool:
    """Whether incident-derived fields must be left out for this reader."""
    return exact_counts and not principal.sees_points


def _figures_for(figures: dict[str, Any], redact: bool) -> dict[str, Any]:
    if not redact:
        return figures
    return {part: {k: v for k, v in block.items() if k not in INCIDENT_FIGURES}
            for part, block in figures.items()}


_SCENARIO_COLS = ("id, name, problem, province_code, commune_codes, parameters, figures, solver, "
                  "exact_counts, status, created_by, created_at, accepted_by, accepted_at, accepted_as, "
                  "version")


def _load_scenario(conn: Connection, principal: Principal, sid: int, lock: bool = False) -> Any:
    row = conn.execute(text(f"SELECT {_SCENARIO_COLS} FROM planner_scenario WHERE id = :id"
                            + (" FOR UPDATE" if lock else "")), {"id": sid}).first()
    if row is None or not _scenario_visible(principal, row):
        raise Problem(404, f"Không có kịch bản {sid}", f"No scenario {sid}",
                      [field_error("scenario_id", "không tồn tại", "does not exist")])
    return row


def _scenario_json(conn: Connection, principal: Principal, row: Any,
                   with_sites: bool = True) -> dict[str, Any]:
    redact = _redacted(principal, row.exact_counts)
    out = {"id": row.id, "name": row.name, "problem": row.problem, "status": row.status,
           "province_code": row.province_code, "commune_codes": list(row.commune_codes or []),
           "created_by": row.created_by, "created_at": row.created_at.isoformat(),
           "accepted_by": row.accepted_by,
           "accepted_at": row.accepted_at.isoformat() if row.accepted_at else None,
           "accepted_as": row.accepted_as, "exact_counts": row.exact_counts, "redacted": redact,
           "figures": _figures_for(row.figures, redact), "solver": row.solver,
           "parameters": row.parameters}
    if redact:  # the formula is the weights; the solver's figures are weights
        out["parameters"] = {**row.parameters, "weights": None, "formula": None}
        out["solver"] = None if row.solver is None else {
            k: v for k, v in row.solver.items() if k in SOLVER_SHOWN}
    if with_sites:
        sites = conn.execute(text("""
            SELECT rank, name, kind, gain, villages, launch_point_id, model_id,
                   ST_X(geom) AS lon, ST_Y(geom) AS lat
            FROM planner_scenario_site WHERE scenario_id = :id ORDER BY rank"""),
                             {"id": row.id}).mappings().all()
        radius = row.parameters.get("radius_m_used")
        out["type"] = "FeatureCollection"
        out["features"] = [{"type": "Feature", "id": s["rank"],
                            "geometry": {"type": "Point", "coordinates": [s["lon"], s["lat"]]},
                            "properties": {"rank": s["rank"], "name": s["name"], "kind": s["kind"],
                                           "gain": None if redact else s["gain"], "villages": s["villages"],
                                           "launch_point_id": s["launch_point_id"], "model_id": s["model_id"],
                                           "radius_m": radius}} for s in sites]
    return out


@router.post("/scenarios", status_code=201, responses=_responses(401, 403, 413, 422),
             summary="Lưu kịch bản / save a scenario (figures computed by the server)")
def save_scenario(body: ScenarioIn, principal: Principal = Depends(get_principal),
                  conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    _require_tool(principal)
    req = plan_request(conn, principal, body.request)
    try:
        if body.sites is None:  # figures from the data as it is now: no cached inputs
            result = gpl.suggest(conn, req, use_cache=False)
        else:
            _sites_in_scope(conn, req, body.sites)
            result = gpl.evaluate(conn, req, [s.lon for s in body.sites], [s.lat for s in body.sites],
                                  [s.name for s in body.sites], use_cache=False)
    except gpl.PlanError as exc:
        raise _plan_error(exc) from exc
    provinces = result["inputs"]["province_codes"]
    params = {**body.request.model_dump(mode="json"), "radius_m_used": result["radius_m"],
              "date_used": result["date"], "formula": result["demand"]["formula"]}
    sid = conn.execute(text("""
        INSERT INTO planner_scenario (name, problem, province_code, commune_codes, parameters, figures,
                                      solver, exact_counts, created_by)
        VALUES (:name, :problem, :prov, :communes, CAST(:params AS jsonb), CAST(:figures AS jsonb),
                CAST(:solver AS jsonb), :exact, :by) RETURNING id"""),
                       {"name": body.name, "problem": req.problem,
                        "prov": provinces[0] if len(provinces) == 1 else None,
                        "communes": result["inputs"]["communes"], "params": json.dumps(params),
                        "figures": json.dumps(result["figures"]),
                        "solver": json.dumps(result.get("solver")), "exact": principal.sees_points,
                        "by": principal.username}).scalar_one()
    for s in result["sites"]:
        conn.execute(text("""
            INSERT INTO planner_scenario_site (scenario_id, rank, name, kind, gain, villages, geom)
            VALUES (:sid, :rank, :name, :kind, :gain, CAST(:villages AS jsonb),
                    ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"""),
                     {"sid": sid, "rank": s["rank"], "name": s["name"][:500], "kind": s["kind"],
                      "gain": s["gain"], "villages": json.dumps(s["villages"], ensure_ascii=False),
                      "lon": s["lon"], "lat": s["lat"]})
    record(conn, principal, "create", "planner_scenarios", sid,
           after={"name": body.name, "sites": len(result["sites"]), "problem": req.problem})
    conn.commit()
    return _scenario_json(conn, principal, _load_scenario(conn, principal, sid))


@router.get("/scenarios", responses=_responses(401, 422),
            summary="Danh sách kịch bản / scenarios (accepted only for read-only roles)")
def list_scenarios(status: Literal["draft", "accepted", "archived"] | None = Query(None),
                   limit: int = Query(100, ge=1, le=1000),
                   principal: Principal = Depends(get_principal),
                   conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    rows = conn.execute(text(f"SELECT {_SCENARIO_COLS} FROM planner_scenario "
                             "WHERE (CAST(:st AS text) IS NULL OR status = :st) ORDER BY id DESC"),
                        {"st": status}).all()
    visible = [r for r in rows if _scenario_visible(principal, r)][:limit]
    return {"scenarios": [_scenario_json(conn, principal, r, with_sites=False) for r in visible],
            "numberReturned": len(visible), "tool": principal.role in TOOL_ROLES}


@router.get("/scenarios/compare", responses=_responses(401, 404, 422),
            summary="So sánh hai kịch bản / compare two scenarios side by side")
def compare(a: int = Query(..., ge=1, le=2**31 - 1), b: int = Query(..., ge=1, le=2**31 - 1),
            principal: Principal = Depends(get_principal),
            conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    sa = _scenario_json(conn, principal, _load_scenario(conn, principal, a))
    sb = _scenario_json(conn, principal, _load_scenario(conn, principal, b))
    after_a, after_b = sa["figures"]["after"], sb["figures"]["after"]
    diff = {k: after_b[k] - after_a[k] for k in after_a if k in after_b
            and isinstance(after_a[k], int | float) and isinstance(after_b[k], int | float)}
    names_a = {f["properties"]["name"] for f in sa["features"]}
    shared = names_a & {f["properties"]["name"] for f in sb["features"]}
    return {"a": sa, "b": sb, "after_b_minus_a": diff, "sites_in_both": sorted(shared)}


@router.get("/scenarios/{sid}", responses=_responses(401, 404, 422), summary="Một kịch bản / one scenario")
def get_scenario(sid: int = Path(..., ge=1, le=2**31 - 1), principal: Principal = Depends(get_principal),
                 conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    return _scenario_json(conn, principal, _load_scenario(conn, principal, sid))


@router.post("/scenarios/{sid}/accept", responses=_responses(401, 403, 404, 409, 422),
             summary="Duyệt kịch bản: tạo điểm phát động (hoặc mô hình) / "
                     "accept: create launch points or models")
def accept(sid: int = Path(..., ge=1, le=2**31 - 1), body: AcceptIn = Body(default_factory=AcceptIn),
           principal: Principal = Depends(get_principal),
           conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    _require_tool(principal)
    row = _load_scenario(conn, principal, sid, lock=True)
    if row.status != "draft":
        raise Problem(409, f"Kịch bản đang ở trạng thái '{row.status}'", f"The scenario is '{row.status}'",
                      [field_error("scenario_id", "không còn là bản nháp", "is not a draft")])
    today = today_vn()
    if body.as_ == "models":
        if body.type_code is None:
            raise _bad("type_code", "bắt buộc khi tạo mô hình", "required to create models")
        mtype = conn.execute(text("SELECT code, name_vi, host_kind FROM model_type WHERE code = :c"),
                             {"c": body.type_code}).first()
        if mtype is None:
            raise _bad("type_code", "không có trong danh mục", f"unknown model type {body.type_code!r}")
        founded = body.founded_on or today
        if founded > today:
            raise _bad("founded_on", "không được ở tương lai", "cannot be in the future")
        if founded < dt.date(1900, 1, 1):
            raise _bad("founded_on", "trước năm 1900", "before 1900")
    else:
        launch = body.launch_date or today
        if launch < dt.date(1900, 1, 1):
            raise _bad("launch_date", "trước năm 1900", "before 1900")
    sites = conn.execute(text("SELECT rank, name, kind, ST_X(geom) AS lon, ST_Y(geom) AS lat "
                              "FROM planner_scenario_site WHERE scenario_id = :id ORDER BY rank"),
                         {"id": sid}).all()
    created = []
    for s in sites:
        if body.as_ == "models":
            new_id = conn.execute(text("""
                INSERT INTO security_model (type_code, name, host_kind, founded_on, status, geom)
                VALUES (:t, :n, 'village', :d, 'active', ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
                RETURNING id, commune_id, village_id"""),
                                  {"t": body.type_code, "n": f"{mtype.name_vi} — {s.name}"[:500],
                                   "d": founded, "lon": s.lon, "lat": s.lat}).first()
            conn.execute(text("UPDATE planner_scenario_site SET model_id = :m "
                              "WHERE scenario_id = :id AND rank = :r"),
                         {"m": new_id.id, "id": sid, "r": s.rank})
            entity = "models"
            after = {"type_code": body.type_code, "founded_on": founded.isoformat(), "lon": s.lon,
                     "lat": s.lat, "scenario": sid, "rank": s.rank}
        else:
            # a plan made for one model type carries it (launch_point.model_type_code, 0009)
            new_id = conn.execute(text("""
                INSERT INTO launch_point (name, theme, launch_date, status, created_by, model_type_code, geom)
                VALUES (:n, :theme, :d, 'planned', :by, :mtype, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
                RETURNING id, commune_id, village_id"""),
                                  {"n": f"Điểm phát động {s.rank}: {s.name}"[:500], "theme": body.theme,
                                   "d": launch, "by": principal.username, "lon": s.lon, "lat": s.lat,
                                   "mtype": row.parameters.get("model_type")}).first()
            conn.execute(text("UPDATE planner_scenario_site SET launch_point_id = :l "
                              "WHERE scenario_id = :id AND rank = :r"),
                         {"l": new_id.id, "id": sid, "r": s.rank})
            entity = "launch_points"
            after = {"theme": body.theme, "launch_date": launch.isoformat(), "status": "planned",
                     "lon": s.lon, "lat": s.lat, "scenario": sid, "rank": s.rank}
        if new_id.commune_id is None:
            raise _bad("scenario_id", f"điểm {s.rank} không nằm trong xã nào",
                       f"site {s.rank} lies in no commune")
        record(conn, principal, "create", entity, new_id.id, after=after)
        created.append({"rank": s.rank, "id": new_id.id, "commune_id": new_id.commune_id,
                        "village_id": new_id.village_id})
    conn.execute(text("""UPDATE planner_scenario SET status = 'accepted', accepted_by = :by,
                         accepted_at = now(), accepted_as = :as_, version = version + 1 WHERE id = :id"""),
                 {"by": principal.username, "as_": body.as_, "id": sid})
    record(conn, principal, "accept", "planner_scenarios", sid, before={"status": "draft"},
           after={"status": "accepted", "as": body.as_, "created": created})
    conn.commit()
    return {"scenario": _scenario_json(conn, principal, _load_scenario(conn, principal, sid)),
            "created": {"as": body.as_, "items": created}}


@router.post("/scenarios/{sid}/archive", responses=_responses(401, 403, 404, 409),
             summary="Lưu trữ kịch bản nháp / archive a draft scenario")
def archive(sid: int = Path(..., ge=1, le=2**31 - 1), principal: Principal = Depends(get_principal),
            conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    _require_tool(principal)
    row = _load_scenario(conn, principal, sid, lock=True)
    if row.status != "draft":
        raise Problem(409, f"Kịch bản đang ở trạng thái '{row.status}'", f"The scenario is '{row.status}'",
                      [field_error("scenario_id", "không còn là bản nháp", "is not a draft")])
    conn.execute(text("UPDATE planner_scenario SET status = 'archived', version = version + 1 "
                      "WHERE id = :id"), {"id": sid})
    record(conn, principal, "archive", "planner_scenarios", sid, before={"status": "draft"},
           after={"status": "archived"})
    conn.commit()
    return _scenario_json(conn, principal, _load_scenario(conn, principal, sid), with_sites=False)


@router.get("/options", responses=_responses(401),
            summary="Danh mục cho công cụ / model types with their reach, candidate kinds")
def options(principal: Principal = Depends(get_principal),
            conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    from geo.reach import DEFAULT_RADIUS_M

    types = conn.execute(text("SELECT code, name_vi, name_en, reach_m FROM model_type "
                              "ORDER BY code")).mappings().all()
    return {"tool": principal.role in TOOL_ROLES, "default_radius_m": DEFAULT_RADIUS_M,
            "max_radius_m": gpl.MAX_RADIUS_M, "model_types": [dict(t) for t in types],
            "candidate_kinds": list(pin.CANDIDATE_KINDS), "exact_counts": principal.sees_points,
            "suppress_below": None if principal.sees_points else get_settings().suppress_below}
