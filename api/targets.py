"""The year's plan over HTTP: target definitions, plans and thresholds, recorded values, KPIs.

Why here and not in geo/: roles, scope and bilingual 422s are the API's; the figures come from
``geo.kpi`` (one engine for this router, the unit panel, reports and the KPI map layer).

- ``GET /targets/definitions``, ``POST /targets/definitions`` (a target a user adds)
- ``GET/PUT /plans/{province|commune}/{code}/{year}``: a plan and its thresholds (a commune may
  only raise its province's)
- ``POST /targets/values``: the actual of a target without a metric, for a unit and year
- ``GET /kpis``: the sortable table (communes or villages) with per-unit counts by status;
  ``GET /kpis/ranking``: communes ranked; ``GET /kpis/{level}/{code}``: one unit, every target
  with the records its figure was computed from.

KPIs are aggregates of the registry (no incident), so every role may read them in its scope;
plans, definitions and values are written by admin, committee (BCĐ 138) and planner accounts.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import Connection, text

from api.analytics import bad, clean, resolve_area, responses, today_vn
from api.audit import record
from api.deps import Principal, get_conn, get_principal, require_roles
from api.guards import reject_nul
from api.problems import Problem, field_error
from api.scope import commune_in_scope
from geo import kpi

PLAN_ROLES = ("admin", "committee", "planner")
CODE_PATTERN = r"^[0-9A-Za-z_.-]{1,20}$"
STATUS_LABELS = {
    "met": ("Đạt", "Met"), "on_track": ("Đúng tiến độ", "On track"),
    "at_risk": ("Có nguy cơ không đạt", "At risk"), "missed": ("Không đạt", "Missed"),
    "no_data": ("Chưa có số liệu", "No data"),
}
DIRECTION_LABELS = {"ge": ("ít nhất", "at least"), "gt": ("trên", "more than"),
                    "le": ("không quá", "at most"), "lt": ("dưới", "less than")}


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, Field(min_length=1, max_length=300), AfterValidator(_no_nul)]
LongText = Annotated[str, Field(max_length=5000), AfterValidator(_no_nul)]
Year = Annotated[int, Field(ge=2000, le=2100)]
Threshold = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]


def check_date(on: dt.date, field: str = "date") -> dt.date:
    if not dt.date(1900, 1, 1) <= on <= dt.date(2100, 12, 31):
        raise bad(field, "ngoài khoảng 1900-2100", "outside 1900-2100")
    return on


def definitions(conn: Connection) -> dict[str, kpi.TargetDef]:
    return {d.code: d for d in kpi.target_defs(conn)}


def describe_def(d: kpi.TargetDef) -> dict[str, Any]:
    return {"code": d.code, "name": {"vi": d.name_vi, "en": d.name_en}, "measure": d.measure,
            "unit": {"vi": d.unit_vi, "en": d.unit_en}, "direction": d.direction,
            "direction_label": dict(zip(("vi", "en"), DIRECTION_LABELS[d.direction], strict=True)),
            "default_threshold": d.default_threshold, "metric": d.metric, "applies_to": d.applies_to,
            "due": d.due, "builtin": d.builtin, "computed": d.metric is not None}


# --- units and scope -----------------------------------------------------------------------

def unit_row(conn: Connection, level: str, code: str, on: dt.date | None = None) -> dict[str, Any]:
    """A province, commune or village by code (the row valid on ON, else the latest), with its
    commune and province codes; 404 naming the code when there is none."""
    on = on or today_vn()
    row = conn.execute(text("""
        SELECT u.id, u.level, u.code, u.name, u.full_name, u.province_code,
               CASE u.level WHEN 'commune' THEN u.code WHEN 'village' THEN p.code END AS commune_code,
               CASE u.level WHEN 'village' THEN p.name WHEN 'commune' THEN u.name END AS commune_name
        FROM admin_unit u LEFT JOIN admin_unit p ON p.id = u.parent_id
        WHERE u.level = :level AND u.code = :code
        ORDER BY (u.valid_from <= :on AND (u.valid_to IS NULL OR :on < u.valid_to)) DESC,
                 u.valid_from DESC LIMIT 1"""), {"level": level, "code": code, "on": on}).mappings().first()
    if row is None:
        raise Problem(404, f"Không có đơn vị {level} mã {code}", f"No {level} with code {code}",
                      [field_error("code", "không tồn tại", "unknown code")])
    out = dict(row)
    if level == "province":
        out["province_code"] = out["code"]
    return out


def in_scope(principal: Principal, unit: dict[str, Any]) -> bool:
    if unit["level"] == "province":
        return principal.scope_level == "all" or (
            principal.scope_level == "province" and principal.scope_code == unit["code"])
    return commune_in_scope(principal, unit["commune_code"], unit["province_code"])


def require_scope(principal: Principal, unit: dict[str, Any], field: str = "code") -> None:
    if not in_scope(principal, unit):
        raise Problem(403, "Đơn vị ngoài phạm vi tài khoản", "This unit is outside your scope",
                      [field_error(field, "ngoài phạm vi tài khoản", "outside the account's scope")])


# --- target definitions ----------------------------------------------------------------------

class TargetDefIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,39}$", description="Mã chỉ tiêu / code (a-z, 0-9, _)")
    name_vi: Text
    name_en: Text
    measure: Literal["percent", "count"]
    unit_vi: Text = Field(description="Đơn vị tính / unit of measure, e.g. '%', 'camera'")
    unit_en: Text
    direction: Literal["ge", "gt", "le", "lt"] = Field(
        description="ge: ít nhất / at least; gt: trên / more than; le: không quá / at most; lt: dưới")
    default_threshold: float = Field(ge=0, le=1e9, allow_inf_nan=False)
    applies_to: Literal["commune", "both"] = "commune"
    due: str = Field("12-31", pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
                     description="Hạn trong năm / due month-day")


router = APIRouter(tags=["targets"], dependencies=[Depends(reject_nul)])


@router.get("/targets/definitions", responses=responses(401),
            summary="Danh mục chỉ tiêu / target definitions")
def list_definitions(principal: Principal = Depends(get_principal),
                     conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    return {"targets": [describe_def(d) for d in kpi.target_defs(conn)],
            "statuses": {k: {"vi": vi, "en": en} for k, (vi, en) in STATUS_LABELS.items()}}


@router.post("/targets/definitions", status_code=201, responses=responses(401, 403, 422),
             summary="Thêm chỉ tiêu / add a target")
def add_definition(body: TargetDefIn, principal: Principal = Depends(require_roles(*PLAN_ROLES)),
                   conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    if body.measure == "percent" and body.default_threshold > 100:
        raise bad("default_threshold", "tỷ lệ không quá 100", "a percentage is at most 100")
    if conn.execute(text("SELECT 1 FROM target_def WHERE code = :c"), {"c": body.code}).first():
        raise Problem(409, f"Mã chỉ tiêu {body.code} đã có", f"Target code {body.code} exists",
                      [field_error("code", "đã tồn tại", "already exists")])
    conn.execute(text("""INSERT INTO target_def (code, name_vi, name_en, measure, unit_vi, unit_en,
            direction, default_threshold, applies_to, due, position, created_by)
        VALUES (:code, :name_vi, :name_en, :measure, :unit_vi, :unit_en, :direction, :default_threshold,
                :applies_to, :due, 1000, :by)"""), {**body.model_dump(), "by": principal.username})
    record(conn, principal, "create", "target_def", body.code, after=body.model_dump())
    conn.commit()
    return describe_def(definitions(conn)[body.code])


# --- plans -----------------------------------------------------------------------------------

class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Text | None = None
    doc_number: Annotated[str, Field(max_length=100), AfterValidator(_no_nul)] | None = None
    issued_on: dt.date | None = None
    signer: Text | None = None
    notes: LongText | None = None
    targets: dict[Annotated[str, Field(max_length=40)], Threshold | None] = Field(
        default_factory=dict, description="Mã chỉ tiêu → ngưỡng (null: bỏ ngưỡng riêng) / "
                                                "target code → threshold (null: remove the override)")


def _plan(conn: Connection, level: str, code: str, year: int) -> dict[str, Any] | None:
    row = conn.execute(text("""SELECT id, unit_level, unit_code, year, title, doc_number, issued_on,
            signer, notes, created_by, version, updated_at FROM plan
        WHERE unit_level = :l AND unit_code = :c AND year = :y"""),
        {"l": level, "c": code, "y": year}).mappings().first()
    return dict(row) if row else None


def _plan_thresholds(conn: Connection, level: str, code: str, year: int) -> dict[str, float]:
    return {r.target_code: r.threshold for r in conn.execute(text("""
        SELECT pt.target_code, pt.threshold FROM plan_target pt JOIN plan p ON p.id = pt.plan_id
        WHERE p.unit_level = :l AND p.unit_code = :c AND p.year = :y"""),
        {"l": level, "c": code, "y": year})}


def better_or_equal(direction: str, new: float, base: float) -> bool:
    return new >= base if direction in ("ge", "gt") else new <= base


def plan_view(conn: Connection, unit: dict[str, Any], year: int) -> dict[str, Any]:
    """The plan and, per target, the threshold in force and where it comes from."""
    defs = definitions(conn)
    own = _plan_thresholds(conn, unit["level"], unit["code"], year)
    prov = (_plan_thresholds(conn, "province", unit["province_code"], year)
            if unit["level"] == "commune" else {})
    rows = []
    for d in defs.values():
        base = prov.get(d.code, d.default_threshold)
        applies = d.builtin or d.code in own or d.code in prov
        if not applies:
            continue
        threshold = own.get(d.code, base)
        source = "commune" if unit["level"] == "commune" and d.code in own else (
            "province" if d.code in own or d.code in prov else "default")
        rows.append({**describe_def(d), "threshold": threshold, "threshold_source": source,
                     "province_threshold": base if unit["level"] == "commune" else None})
    plan = _plan(conn, unit["level"], unit["code"], year)
    return {"unit": {"level": unit["level"], "code": unit["code"], "name": unit["name"]},
            "year": year, "plan": clean(plan) if plan else None, "targets": rows}


PlanLevel = Annotated[str, Path(pattern="^(province|commune)$")]
UnitCode = Annotated[str, Path(pattern=CODE_PATTERN)]


@router.get("/plans/{level}/{code}/{year}", responses=responses(401, 403, 404, 422),
            summary="Kế hoạch năm và chỉ tiêu / a year's plan and its thresholds")
def get_plan(level: PlanLevel, code: UnitCode, year: Annotated[int, Path(ge=2000, le=2100)],
             principal: Principal = Depends(get_principal),
             conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    unit = unit_row(conn, level, code)
    require_scope(principal, unit)
    return plan_view(conn, unit, year)


@router.put("/plans/{level}/{code}/{year}", responses=responses(401, 403, 404, 422),
            summary="Lưu kế hoạch năm / save a year's plan")
def put_plan(body: PlanIn, level: PlanLevel, code: UnitCode,
             year: Annotated[int, Path(ge=2000, le=2100)],
             principal: Principal = Depends(require_roles(*PLAN_ROLES)),
             conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    unit = unit_row(conn, level, code)
    require_scope(principal, unit)
    if level == "province" and principal.scope_level == "commune":
        raise Problem(403, "Tài khoản cấp xã không sửa kế hoạch tỉnh",
                      "A commune account may not change the province plan",
                      [field_error("level", "ngoài phạm vi", "outside the account's scope")])
    defs = definitions(conn)
    errors = []
    prov = _plan_thresholds(conn, "province", unit["province_code"], year) if level == "commune" else {}
    for tcode, value in body.targets.items():
        d = defs.get(tcode)
        if d is None:
            errors.append(field_error(f"targets.{tcode}", "mã chỉ tiêu không có trong danh mục",
                                      "unknown target code"))
            continue
        if value is None:
            continue
        if d.measure == "percent" and value > 100:
            errors.append(field_error(f"targets.{tcode}", "tỷ lệ không quá 100",
                                      "a percentage is at most 100"))
        base = prov.get(tcode, d.default_threshold)
        lowered = not better_or_equal(d.direction, value, base)
        if level == "commune" and (d.builtin or tcode in prov) and lowered:
            word_vi, word_en = ("thấp hơn", "below") if d.direction in ("ge", "gt") else ("cao hơn", "above")
            errors.append(field_error(
                f"targets.{tcode}", f"xã chỉ được nâng chỉ tiêu, không {word_vi} mức của tỉnh ({base:g})",
                f"a commune may only raise a target, not set it {word_en} the province's ({base:g})"))
    if errors:
        fields = ", ".join(e["field"] for e in errors)
        raise Problem(422, f"Chỉ tiêu không hợp lệ: {fields}", f"Invalid targets: {fields}", errors)
    before = plan_view(conn, unit, year)
    meta = body.model_dump(exclude={"targets"})
    pid = conn.execute(text("""
        INSERT INTO plan (unit_level, unit_code, year, title, doc_number, issued_on, signer, notes,
                          created_by)
        VALUES (:l, :c, :y, :title, :doc_number, :issued_on, :signer, :notes, :by)
        ON CONFLICT (unit_level, unit_code, year) DO UPDATE SET title = EXCLUDED.title,
            doc_number = EXCLUDED.doc_number, issued_on = EXCLUDED.issued_on, signer = EXCLUDED.signer,
            notes = EXCLUDED.notes, version = plan.version + 1, updated_at = now()
        RETURNING id"""), {"l": level, "c": code, "y": year, "by": principal.username, **meta}).scalar_one()
    for tcode, value in body.targets.items():
        if value is None:
            conn.execute(text("DELETE FROM plan_target WHERE plan_id = :p AND target_code = :t"),
                         {"p": pid, "t": tcode})
        else:
            conn.execute(text("""INSERT INTO plan_target (plan_id, target_code, threshold) VALUES (:p, :t, :v)
                ON CONFLICT (plan_id, target_code) DO UPDATE SET threshold = EXCLUDED.threshold"""),
                         {"p": pid, "t": tcode, "v": value})
    after = plan_view(conn, unit, year)
    record(conn, principal, "update", "plan", pid, before=before, after=after)
    conn.commit()
    return after


# --- recorded values of targets without a metric ----------------------------------------------

class TargetValueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target_code: Annotated[str, Field(max_length=40)]
    level: Literal["commune", "village"]
    code: Annotated[str, Field(pattern=CODE_PATTERN)]
    year: Year
    value: float = Field(ge=0, le=1e9, allow_inf_nan=False)
    recorded_on: dt.date
    note: LongText | None = None


@router.post("/targets/values", status_code=201, responses=responses(401, 403, 404, 422),
             summary="Ghi số liệu chỉ tiêu tự thêm / record the value of a user-added target")
def add_value(body: TargetValueIn, principal: Principal = Depends(require_roles(*PLAN_ROLES)),
              conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    d = definitions(conn).get(body.target_code)
    if d is None:
        raise bad("target_code", "mã chỉ tiêu không có trong danh mục", "unknown target code")
    if d.metric is not None:
        raise bad("target_code", "chỉ tiêu này được tính tự động từ dữ liệu",
                  "this target is computed from the registry, not entered")
    if d.measure == "percent" and body.value > 100:
        raise bad("value", "tỷ lệ không quá 100", "a percentage is at most 100")
    check_date(body.recorded_on, "recorded_on")
    if body.recorded_on > today_vn():
        raise bad("recorded_on", "không được ở tương lai", "must not be in the future")
    unit = unit_row(conn, body.level, body.code, body.recorded_on)
    require_scope(principal, unit, "code")
    vid = conn.execute(text("""INSERT INTO target_value (target_code, unit_level, unit_code, year, value,
            recorded_on, note, created_by) VALUES (:t, :l, :c, :y, :v, :r, :n, :by)
        ON CONFLICT (target_code, unit_level, unit_code, year, recorded_on)
        DO UPDATE SET value = EXCLUDED.value, note = EXCLUDED.note, created_by = EXCLUDED.created_by
        RETURNING id"""), {"t": body.target_code, "l": body.level, "c": body.code, "y": body.year,
                           "v": body.value, "r": body.recorded_on, "n": body.note,
                           "by": principal.username}).scalar_one()
    record(conn, principal, "create", "target_value", vid, after=body.model_dump(mode="json"))
    conn.commit()
    return {"id": vid, **body.model_dump(mode="json")}


# --- KPIs --------------------------------------------------------------------------------------

def kpi_frame(conn: Connection, principal: Principal, on: dt.date, year: int, level: str,
              province: str | None, commune: str | None) -> pd.DataFrame:
    province, commune = resolve_area(conn, principal, province, commune)
    try:
        return kpi.kpis(conn, on, level=level, province_code=province, commune_code=commune, year=year)
    except ValueError as exc:
        raise bad("year", "không hợp lệ", str(exc)) from exc


def unit_rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Units with their per-status counts and every target's figure."""
    if df.empty:
        return []
    summary = kpi.rank(kpi.unit_summary(df)).set_index("unit_id")
    by_unit: dict[int, dict[str, Any]] = {}
    cols = ["actual", "numerator", "denominator", "threshold", "threshold_source", "expected",
            "fraction", "status"]
    for rec in df[["unit_id", "target", *cols]].to_dict("records"):
        by_unit.setdefault(rec["unit_id"], {})[rec["target"]] = {c: clean(rec[c]) for c in cols}
    out = []
    for uid, s in summary.iterrows():
        row = {k: clean(s[k]) for k in ("level", "code", "name", "commune_code", "province_code", "met",
                                        "on_track", "at_risk", "missed", "no_data", "targets",
                                        "assessed", "met_share", "rank")}
        row["kpis"] = by_unit.get(uid, {})
        out.append(row)
    return out


SORT_KEYS = {"rank", "code", "name", "met", "on_track", "at_risk", "missed", "no_data", "met_share"}


def sort_rows(rows: list[dict[str, Any]], sort: str, order: str, targets: set[str]) -> list[dict[str, Any]]:
    if sort not in SORT_KEYS and sort not in targets:
        raise bad("sort", f"một trong {sorted(SORT_KEYS)} hoặc mã chỉ tiêu",
                  f"one of {sorted(SORT_KEYS)} or a target code")

    def key(r: dict[str, Any]) -> tuple:
        v = r["kpis"].get(sort, {}).get("actual") if sort in targets and sort not in SORT_KEYS else r[sort]
        return (v is None, v if v is not None else 0, r["code"])

    rows = sorted(rows, key=key)
    if order == "desc":  # missing values stay last
        present = [r for r in rows if key(r)[0] is False][::-1]
        rows = present + [r for r in rows if key(r)[0] is True]
    return rows


@router.get("/kpis", responses=responses(401, 403, 404, 422),
            summary="Chỉ tiêu theo xã/thôn (bảng sắp xếp được) / KPIs per commune or village")
def kpi_table(level: str = Query("commune", pattern="^(commune|village)$"),
              date: dt.date | None = Query(None, description="Tính đến ngày / as of (default today)"),
              year: int | None = Query(None, ge=2000, le=2100, description="Năm kế hoạch / plan year"),
              province: str | None = Query(None, pattern=CODE_PATTERN),
              commune: str | None = Query(None, pattern=CODE_PATTERN),
              sort: str = Query("rank", max_length=40, description="rank, code, name, met, missed, "
                                "met_share… or a target code (by its actual)"),
              order: str = Query("asc", pattern="^(asc|desc)$"),
              principal: Principal = Depends(get_principal),
              conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    on = check_date(date or today_vn())
    year = year or on.year
    df = kpi_frame(conn, principal, on, year, level, province, commune)
    defs = definitions(conn)
    present = list(dict.fromkeys(df["target"])) if not df.empty else []
    rollup = kpi.province_rollup(df).to_dict("records")
    rows = sort_rows(unit_rows(df), sort, order, set(present))
    return {"level": level, "date": on.isoformat(), "year": year,
            "targets": [describe_def(defs[c]) for c in present],
            "units": rows, "number_returned": len(rows),
            "rollup": [{k: clean(v) for k, v in r.items()} for r in rollup]}


@router.get("/kpis/ranking", responses=responses(401, 403, 404, 422),
            summary="Xếp hạng xã theo số chỉ tiêu đạt / communes ranked by targets met")
def kpi_ranking(date: dt.date | None = Query(None), year: int | None = Query(None, ge=2000, le=2100),
                province: str | None = Query(None, pattern=CODE_PATTERN),
                principal: Principal = Depends(get_principal),
                conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    on = check_date(date or today_vn())
    year = year or on.year
    df = kpi_frame(conn, principal, on, year, "commune", province, None)
    if df.empty:
        return {"date": on.isoformat(), "year": year, "ranking": []}
    ranked = kpi.rank(kpi.unit_summary(df))
    keep = ["rank", "code", "name", "province_code", "met", "on_track", "at_risk", "missed", "no_data",
            "assessed", "met_share"]
    return {"date": on.isoformat(), "year": year,
            "ranking": [{k: clean(r[k]) for k in keep} for r in ranked.to_dict("records")]}


@router.get("/kpis/{level}/{code}", responses=responses(401, 403, 404, 422),
            summary="Chỉ tiêu của một xã/thôn và hồ sơ tính / one unit's KPIs and their records")
def kpi_unit(level: Annotated[str, Path(pattern="^(commune|village)$")], code: UnitCode,
             date: dt.date | None = Query(None), year: int | None = Query(None, ge=2000, le=2100),
             records: bool = Query(True, description="Kèm hồ sơ / include the records"),
             principal: Principal = Depends(get_principal),
             conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    on = check_date(date or today_vn())
    year = year or on.year
    unit = unit_row(conn, level, code, on)
    require_scope(principal, unit)
    commune = unit["commune_code"]
    df = kpi.kpis(conn, on, level=level, commune_code=commune, year=year)
    df = df[df["code"] == code]
    if df.empty:
        raise Problem(404, f"Đơn vị {code} không có hiệu lực ngày {on}", f"Unit {code} is not valid on {on}",
                      [field_error("date", "đơn vị không có hiệu lực", "unit not valid on that date")])
    defs = definitions(conn)
    targets = []
    for rec in df.to_dict("records"):
        d = defs[rec["target"]]
        item = {**describe_def(d), **{c: clean(rec[c]) for c in ("actual", "numerator", "denominator",
                                                                  "threshold", "threshold_source",
                                                                  "expected", "fraction", "status")},
                "due_date": clean(rec["due"])}
        if records:
            recs = kpi.records(conn, on, level, code, d.code, year=year)
            item["records"] = [{k: clean(list(v) if isinstance(v, np.ndarray | list) else v)
                                for k, v in r.items()} for r in recs.to_dict("records")]
        targets.append(item)
    summary = kpi.unit_summary(df).iloc[0]
    return {"unit": {"level": level, "code": code, "name": unit["name"], "commune_code": commune,
                     "province_code": unit["province_code"]},
            "date": on.isoformat(), "year": year,
            "summary": {k: clean(summary[k]) for k in ("met", "on_track", "at_risk", "missed", "no_data",
                                                       "targets", "assessed", "met_share")},
            "targets": targets}
