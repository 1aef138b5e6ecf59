"""Editing: create, replace, patch and delete models, fire groups, incidents, institutions and
launch points; ratings as their own events; uncovered villages around a launch point.

Why this shape: one `Editable` spec per collection (table, roles, property model, date rules)
and one set of route factories, so every collection follows the same rules — role and scope
checks on the server, bilingual 422s naming the field, ETag/If-Match (412 stale, 428 missing)
with the version check inside the UPDATE itself, and the audit row in the same transaction.

(No `from __future__ import annotations` here: FastAPI must resolve the per-collection body
types built inside the route factories.)
"""

import datetime as dt
import json
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model
from sqlalchemy import Connection, text

from antt.crs import METRIC_SRID
from api.audit import record
from api.deps import Principal, get_conn, get_principal
from api.guards import reject_nul, utc_instant
from api.problems import Problem, field_error
from api.scope import commune_in_scope

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
OLDEST = dt.date(1900, 1, 1)
VN_LON, VN_LAT = (102.0, 118.0), (6.0, 23.5)  # the schema's VN_EXTENT check
PROBLEM = "application/problem+json"


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; say so instead of failing in the driver.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_no_nul)]
LongText = Annotated[str, Field(max_length=5000), AfterValidator(_no_nul)]
Coordinate = Annotated[float, Field(allow_inf_nan=False)]


class PointGeometry(BaseModel):
    """A GeoJSON Point in EPSG:4326 [lon, lat] (a third value, height, is ignored)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["Point"]
    coordinates: list[Coordinate] = Field(min_length=2, max_length=3)


P = TypeVar("P", bound=BaseModel)


class FeatureIn(BaseModel, Generic[P]):
    model_config = ConfigDict(extra="allow")
    type: Literal["Feature"]
    geometry: PointGeometry | None = None
    properties: P


class Props(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelProps(Props):
    type_code: Text = Field(description="Mã loại mô hình (danh mục model_type) / model type code")
    name: Text
    host_kind: Literal["village", "institution"] = "village"
    institution_id: int | None = Field(None, ge=1, le=2**31 - 1)
    founded_on: dt.date
    status: Literal["active", "suspended", "dissolved"] = "active"
    status_since: dt.date | None = None
    recognition: Literal["mps", "provincial_bcd138", "none"] = "none"
    recognized_on: dt.date | None = None
    external_id: Text | None = None


class FireGroupProps(Props):
    name: Text
    leader: Text | None = None
    households: int = Field(ge=1, le=100_000, description="Số hộ / households covered")
    founded_on: dt.date
    external_id: Text | None = None


class IncidentProps(Props):
    category_code: Text = Field(description="Đường dẫn loại vụ việc / category path, e.g. crime/theft")
    occurred_at: dt.datetime = Field(description="Thời điểm (giờ Việt Nam nếu không ghi múi giờ)")
    precision: Literal["exact", "street", "village", "commune"] = "exact"
    deaths: int = Field(0, ge=0, le=10_000)
    injuries: int = Field(0, ge=0, le=10_000)
    youth_involved: bool = False
    status: Literal["reported", "investigating", "solved", "closed"] = "reported"
    source: Text | None = None
    description: LongText | None = None
    external_id: Text | None = None


class InstitutionProps(Props):
    kind: Literal["agency", "enterprise", "school"]
    name: Text
    external_id: Text | None = None


class LaunchPointProps(Props):
    name: Text
    theme: Text
    launch_date: dt.date = Field(description="Ngày phát động; tương lai chỉ khi status=planned")
    status: Literal["planned", "launched", "reviewed", "cancelled"] = "planned"
    notes: LongText | None = None
    village_code: Text | None = Field(None, description="Mã thôn (thay cho/cùng với tọa độ)")


@dataclass(frozen=True)
class Editable:
    """How one collection is edited."""

    collection: str
    table: str
    roles: frozenset[str]
    props: type[Props]
    columns: tuple[str, ...]          # property names stored as same-named columns
    past_dates: tuple[str, ...]       # dates (or datetimes) that cannot be in the future
    point_required: bool = True
    event_time: str | None = None     # the column dating the point (for unit_at); else today
    read_only: tuple[str, ...] = ()   # columns shown but set by the server

    @property
    def partial(self) -> type[BaseModel]:
        return _partial(self.props)


def _partial(model: type[Props]) -> type[BaseModel]:
    fields = {name: (f.annotation | None, None) for name, f in model.model_fields.items()}
    return create_model(f"{model.__name__}Patch", __config__=ConfigDict(extra="forbid"), **fields)


EDITABLES: dict[str, Editable] = {e.collection: e for e in (
    Editable("models", "security_model", frozenset({"admin", "planner"}), ModelProps,
             ("type_code", "name", "host_kind", "institution_id", "founded_on", "status",
              "status_since", "recognition", "recognized_on", "external_id"),
             ("founded_on", "status_since", "recognized_on")),
    Editable("fire_groups", "fire_group", frozenset({"admin", "planner"}), FireGroupProps,
             ("name", "leader", "households", "founded_on", "external_id"), ("founded_on",)),
    Editable("incidents", "incident", frozenset({"admin", "police"}), IncidentProps,
             ("category_code", "occurred_at", "precision", "deaths", "injuries", "youth_involved",
              "status", "source", "description", "external_id"), ("occurred_at",),
             event_time="occurred_at"),
    Editable("institutions", "institution", frozenset({"admin", "planner"}), InstitutionProps,
             ("kind", "name", "external_id"), ()),
    Editable("launch_points", "launch_point", frozenset({"admin", "planner"}), LaunchPointProps,
             ("name", "theme", "launch_date", "status", "notes"), (), point_required=False,
             read_only=("created_by",)),
)}


# --- responses ---------------------------------------------------------------------------

class FeatureOut(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: int
    geometry: dict[str, Any] | None
    properties: dict[str, Any]


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rating: Literal["tot", "kha", "trung_binh", "yeu"]
    rated_on: dt.date
    note: LongText | None = None


class RatingOut(BaseModel):
    id: int
    model_id: int
    rating: str
    rated_on: dt.date
    rated_by: str | None
    note: str | None


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    words = {400: "Yêu cầu sai / bad request", 401: "Chưa đăng nhập / not authenticated",
             403: "Không có quyền hoặc ngoài phạm vi / forbidden or out of scope",
             404: "Không tìm thấy / not found", 409: "Trùng mã / duplicate external_id",
             412: "Phiên bản cũ / stale If-Match", 413: "Quá lớn / too large",
             422: "Dữ liệu không hợp lệ / invalid input", 428: "Thiếu If-Match / If-Match required"}
    return {c: {"description": words[c], "content": {PROBLEM: {}}} for c in codes}


# --- helpers -------------------------------------------------------------------------------

def today_vn() -> dt.date:
    return dt.datetime.now(VN_TZ).date()


def etag(version: int) -> str:
    return f'W/"{version}"'


def parse_if_match(value: str | None) -> list[int] | None:
    """Versions named by If-Match (None for '*'); 428 when missing, 412 when unparseable."""
    if value is None or not value.strip():
        raise Problem(428, "Cần header If-Match với ETag hiện tại (W/\"<version>\")",
                      "This write needs an If-Match header with the current ETag (W/\"<version>\")",
                      [field_error("If-Match", "bắt buộc", "required")])
    if value.strip() == "*":
        return None
    versions = []
    for tag in value.split(","):
        tag = tag.strip().removeprefix("W/").strip('"')
        if not tag.isdigit() or len(tag) > 9:
            raise Problem(412, f"If-Match không khớp phiên bản nào: {value!r}",
                          f"If-Match matches no version: {value!r}",
                          [field_error("If-Match", "không hợp lệ", "does not name a version")])
        versions.append(int(tag))
    return versions


def stale(current: int) -> Problem:
    return Problem(412, f"Phiên bản hiện tại là {current}, không khớp If-Match",
                   f"The current version is {current}; If-Match is stale",
                   [field_error("If-Match", "đã cũ", "stale")], current_etag=etag(current))


def _forbid_role(principal: Principal, spec: Editable) -> None:
    if principal.role not in spec.roles:
        raise Problem(403, f"Vai trò '{principal.role}' không được sửa lớp {spec.collection}",
                      f"Role '{principal.role}' may not edit {spec.collection}",
                      [field_error("collection", "không được sửa", "not editable by this role")])


def _validation_problem(exc: ValidationError, prefix: str) -> Problem:
    errors = [field_error(".".join([prefix, *(str(p) for p in e["loc"])]),
                          f"Giá trị không hợp lệ: {e['msg']}", e["msg"]) for e in exc.errors()]
    fields = ", ".join(e["field"] for e in errors)
    return Problem(422, f"Dữ liệu không hợp lệ ở: {fields}", f"Invalid input at: {fields}", errors)


def _as_local(value: dt.datetime) -> dt.datetime:
    """An aware instant (naive = Vietnamese local time), 422 outside 1900-2100 or odd offsets."""
    return utc_instant(value, "properties.occurred_at", VN_TZ)


def check_dates(spec: Editable, props: dict[str, Any]) -> None:
    """No date in the future (launch dates may be, while planned) nor before 1900."""
    today, errors = today_vn(), []
    for name, value in props.items():
        if value is None or not isinstance(value, dt.date):
            continue
        day = _as_local(value).astimezone(VN_TZ).date() if isinstance(value, dt.datetime) else value
        if day < OLDEST:
            errors.append(field_error(f"properties.{name}", "ngày trước năm 1900", "date before 1900"))
        elif name in spec.past_dates and day > today:
            errors.append(field_error(f"properties.{name}", "ngày không được ở tương lai",
                                      "date cannot be in the future"))
    if spec.collection == "launch_points" and props.get("launch_date") and \
            props["launch_date"] > today and props.get("status") != "planned":
        errors.append(field_error("properties.launch_date",
                                  "ngày tương lai chỉ khi trạng thái 'planned'",
                                  "a future launch date needs status 'planned'"))
    if errors:
        fields = ", ".join(e["field"] for e in errors)
        raise Problem(422, f"Ngày không hợp lệ ở: {fields}", f"Invalid date at: {fields}", errors)


def check_catalogues(conn: Connection, spec: Editable, props: dict[str, Any]) -> None:
    """Model types and incident categories must be known catalogue values."""
    if spec.collection == "models":
        row = conn.execute(text("SELECT host_kind FROM model_type WHERE code = :c"),
                           {"c": props["type_code"]}).first()
        if row is None:
            raise Problem(422, f"Loại mô hình không có trong danh mục: {props['type_code']!r}",
                          f"Unknown model type {props['type_code']!r}",
                          [field_error("properties.type_code", "không có trong danh mục",
                                       "not in the model_type catalogue")])
        if props.get("institution_id") is not None and not conn.execute(text(
                "SELECT 1 FROM institution WHERE id = :i"), {"i": props["institution_id"]}).first():
            raise Problem(422, "Không có cơ quan/đơn vị này", "No such institution",
                          [field_error("properties.institution_id", "không tồn tại", "does not exist")])
    if spec.collection == "incidents" and not conn.execute(text(
            "SELECT 1 FROM incident_category WHERE code = :c"), {"c": props["category_code"]}).first():
        raise Problem(422, f"Loại vụ việc không có trong danh mục: {props['category_code']!r}",
                      f"Unknown incident category {props['category_code']!r}",
                      [field_error("properties.category_code", "không có trong danh mục",
                                   "not in the incident_category catalogue")])


@dataclass(frozen=True)
class Place:
    lon: float | None
    lat: float | None
    commune_id: int
    commune_code: str
    province_code: str | None
    village_id: int | None


def locate(conn: Connection, spec: Editable, geometry: PointGeometry | None,
           props: dict[str, Any]) -> Place:
    """The commune (and village) of the written point; 422 outside Vietnam or any commune."""
    on_date = today_vn()
    if spec.event_time and props.get(spec.event_time) is not None:
        on_date = _as_local(props[spec.event_time]).astimezone(VN_TZ).date()
    village_code = props.get("village_code") if spec.collection == "launch_points" else None
    if geometry is None:
        if spec.point_required or not village_code:
            raise Problem(422, "Thiếu tọa độ điểm", "A Point geometry is required",
                          [field_error("geometry", "bắt buộc", "required")])
        return _place_by_village(conn, village_code, on_date)
    lon, lat = geometry.coordinates[0], geometry.coordinates[1]
    if not (VN_LON[0] <= lon <= VN_LON[1] and VN_LAT[0] <= lat <= VN_LAT[1]):
        raise Problem(422, "Điểm nằm ngoài lãnh thổ Việt Nam", "The point is outside Vietnam",
                      [field_error("geometry", "ngoài Việt Nam", "outside Vietnam")])
    # Units valid on the event date; for dates before the current map was loaded (e.g. last
    # year's incidents when only the 2025 map exists), the units valid today.
    row = conn.execute(text("""
        WITH p AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g),
        ids AS (SELECT coalesce(unit_at(p.g, 'commune', :d), unit_at(p.g, 'commune', :today)) AS c,
                       coalesce(unit_at(p.g, 'village', :d), unit_at(p.g, 'village', :today)) AS v
                FROM p)
        SELECT ids.c, ids.v, u.code, u.province_code, v.code AS village_code
        FROM ids LEFT JOIN admin_unit u ON u.id = ids.c LEFT JOIN admin_unit v ON v.id = ids.v
    """), {"lon": lon, "lat": lat, "d": on_date, "today": today_vn()}).first()
    if row is None or row.c is None:
        raise Problem(422, "Điểm không nằm trong xã/phường nào", "The point lies in no commune",
                      [field_error("geometry", "ngoài mọi xã", "outside every commune")])
    if village_code and row.village_code != village_code:
        raise Problem(422, f"Điểm không nằm trong thôn {village_code}",
                      f"The point is not inside village {village_code}",
                      [field_error("properties.village_code", "không chứa điểm",
                                   "does not contain the point")])
    return Place(lon, lat, row.c, row.code, row.province_code, row.v)


def _place_by_village(conn: Connection, code: str, on_date: dt.date) -> Place:
    row = conn.execute(text("""
        SELECT v.id, c.id AS commune_id, c.code, c.province_code
        FROM admin_unit v JOIN admin_unit c ON c.id = v.parent_id AND c.level = 'commune'
        WHERE v.level = 'village' AND v.code = :code
        ORDER BY (v.valid_from <= :d AND (v.valid_to IS NULL OR :d < v.valid_to)) DESC,
                 v.valid_from DESC LIMIT 1"""), {"code": code, "d": on_date}).first()
    if row is None:
        raise Problem(422, f"Không có thôn mã {code}", f"No village with code {code}",
                      [field_error("properties.village_code", "không tồn tại", "unknown village")])
    return Place(None, None, row.commune_id, row.code, row.province_code, row.id)


def check_scope(principal: Principal, place: Place, field: str = "geometry") -> None:
    if not commune_in_scope(principal, place.commune_code, place.province_code):
        raise Problem(403, f"Điểm ngoài phạm vi tài khoản ({principal.scope_level} "
                           f"{principal.scope_code})",
                      f"Outside this account's scope ({principal.scope_level} {principal.scope_code})",
                      [field_error(field, "ngoài phạm vi", "outside the account's scope")])


def _select_sql(spec: Editable) -> str:
    cols = ", ".join(f"t.{c}" for c in spec.columns + spec.read_only)
    return (f"SELECT t.id, {cols}, t.version, t.updated_at, t.commune_id, t.village_id, "
            "ST_X(t.geom) AS lon, ST_Y(t.geom) AS lat, c.code AS commune_code, "
            "c.name AS commune_name, c.province_code, v.code AS village_code, v.name AS village_name "
            f"FROM {spec.table} t LEFT JOIN admin_unit c ON c.id = t.commune_id "
            "LEFT JOIN admin_unit v ON v.id = t.village_id WHERE t.id = :id")


def load_row(conn: Connection, spec: Editable, fid: int, lock: bool = False) -> dict[str, Any]:
    row = conn.execute(text(_select_sql(spec) + (" FOR UPDATE OF t" if lock else "")),
                       {"id": fid}).mappings().first()
    if row is None:
        raise Problem(404, f"Không tìm thấy {spec.collection}/{fid}", f"{spec.collection}/{fid} not found",
                      [field_error("featureId", "không tồn tại", "does not exist")])
    return dict(row)


def to_feature(spec: Editable, row: dict[str, Any]) -> dict[str, Any]:
    props = {k: v for k, v in row.items() if k not in ("lon", "lat", "id", "commune_id", "village_id")}
    props = json.loads(json.dumps(props, default=lambda v: v.isoformat()))
    geometry = None if row["lon"] is None else {"type": "Point", "coordinates": [row["lon"], row["lat"]]}
    return {"type": "Feature", "id": row["id"], "geometry": geometry, "properties": props}


def _row_scope(principal: Principal, row: dict[str, Any]) -> None:
    if not commune_in_scope(principal, row["commune_code"], row["province_code"]):
        raise Problem(403, "Đối tượng nằm ngoài phạm vi tài khoản", "This feature is outside your scope",
                      [field_error("featureId", "ngoài phạm vi", "outside the account's scope")])


def _values(spec: Editable, props: dict[str, Any]) -> dict[str, Any]:
    values = {c: props.get(c) for c in spec.columns}
    if spec.event_time and values.get(spec.event_time) is not None:
        values[spec.event_time] = _as_local(values[spec.event_time])
    return values


def _duplicate_guard(conn: Connection, spec: Editable, props: dict[str, Any], fid: int | None) -> None:
    ext = props.get("external_id")
    if ext is None or "external_id" not in spec.columns:
        return
    clash = conn.execute(text(f"SELECT id FROM {spec.table} WHERE external_id = :e AND id <> :id"),
                         {"e": ext, "id": fid or 0}).first()
    if clash:
        raise Problem(409, f"external_id {ext!r} đã dùng cho {spec.collection}/{clash.id}",
                      f"external_id {ext!r} is already used by {spec.collection}/{clash.id}",
                      [field_error("properties.external_id", "đã tồn tại", "already exists")])


def _validate_full(spec: Editable, data: dict[str, Any]) -> dict[str, Any]:
    try:
        return spec.props.model_validate(data).model_dump()
    except ValidationError as exc:
        raise _validation_problem(exc, "properties") from exc


def _write_response(response: Response, spec: Editable, feature: dict[str, Any]) -> FeatureOut:
    response.headers["ETag"] = etag(feature["properties"]["version"])
    response.headers["Location"] = f"/collections/{spec.collection}/items/{feature['id']}"
    return FeatureOut(**feature)


# --- route factories -------------------------------------------------------------------------

def _add_collection_routes(router: APIRouter, spec: Editable) -> None:
    body_full = FeatureIn[spec.props]
    body_patch = FeatureIn[spec.partial]
    base = f"/collections/{spec.collection}/items"
    tags = ["editing"]
    fid_path = Path(..., ge=1, le=2**31 - 1, description="Mã đối tượng / feature id")

    def prepare(conn: Connection, principal: Principal, geometry: PointGeometry | None,
                props: dict[str, Any], fid: int | None) -> Place:
        check_dates(spec, props)
        check_catalogues(conn, spec, props)
        _duplicate_guard(conn, spec, props, fid)
        place = locate(conn, spec, geometry, props)
        check_scope(principal, place, "geometry" if geometry is not None else "properties.village_code")
        return place

    def create(response: Response, body: body_full,  # type: ignore[valid-type]
               principal: Principal = Depends(get_principal),
               conn: Connection = Depends(get_conn)) -> FeatureOut:
        _forbid_role(principal, spec)
        props = body.properties.model_dump()
        place = prepare(conn, principal, body.geometry, props, None)
        values = _values(spec, props)
        cols = list(values) + ["commune_id", "village_id", "geom"]
        if spec.collection == "launch_points":
            cols.append("created_by")
            values["created_by"] = principal.username
        values.update(commune_id=place.commune_id, village_id=place.village_id,
                      lon=place.lon, lat=place.lat)
        binds = [f":{c}" for c in cols if c != "geom"]
        geom_sql = ("CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL "
                    "ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) END")
        fid = conn.execute(text(
            f"INSERT INTO {spec.table} ({', '.join(c for c in cols if c != 'geom')}, geom) "
            f"VALUES ({', '.join(binds)}, {geom_sql}) RETURNING id"), values).scalar_one()
        feature = to_feature(spec, load_row(conn, spec, fid))
        record(conn, principal, "create", spec.collection, fid, after=feature)
        conn.commit()
        response.status_code = 201
        return _write_response(response, spec, feature)

    def update(conn: Connection, principal: Principal, fid: int, if_match: str | None,
               geometry: PointGeometry | None, props: dict[str, Any], keep_geometry: bool,
               action: str) -> dict[str, Any]:
        _forbid_role(principal, spec)
        versions = parse_if_match(if_match)
        before_row = load_row(conn, spec, fid, lock=True)
        _row_scope(principal, before_row)
        if versions is not None and before_row["version"] not in versions:
            raise stale(before_row["version"])
        if keep_geometry and geometry is None and before_row["lon"] is not None:
            geometry = PointGeometry(type="Point", coordinates=[before_row["lon"], before_row["lat"]])
        if spec.collection == "launch_points" and "village_code" not in props and geometry is None:
            props["village_code"] = before_row["village_code"]
        place = prepare(conn, principal, geometry, props, fid)
        values = _values(spec, props)
        values.update(id=fid, v=before_row["version"], commune_id=place.commune_id,
                      village_id=place.village_id, lon=place.lon, lat=place.lat)
        sets = ", ".join(f"{c} = :{c}" for c in spec.columns)
        geom_sql = ("CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL "
                    "ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) END")
        # The version check is part of the UPDATE itself: atomic even without the row lock.
        done = conn.execute(text(
            f"UPDATE {spec.table} SET {sets}, geom = {geom_sql}, commune_id = :commune_id, "
            "village_id = :village_id, version = version + 1, updated_at = now() "
            "WHERE id = :id AND version = :v RETURNING id"), values).first()
        if done is None:
            raise Problem(412, "Dữ liệu vừa bị người khác thay đổi", "Changed by someone else meanwhile",
                          [field_error("If-Match", "đã cũ", "stale")])
        before = to_feature(spec, before_row)
        after = to_feature(spec, load_row(conn, spec, fid))
        record(conn, principal, action, spec.collection, fid, before=before, after=after)
        conn.commit()
        return after

    def replace(response: Response, body: body_full,  # type: ignore[valid-type]
                fid: int = fid_path,
                if_match: str | None = Header(None, alias="If-Match"),
                principal: Principal = Depends(get_principal),
                conn: Connection = Depends(get_conn)) -> FeatureOut:
        props = body.properties.model_dump()
        feature = update(conn, principal, fid, if_match, body.geometry, props, False, "update")
        return _write_response(response, spec, feature)

    def patch(response: Response, body: body_patch,  # type: ignore[valid-type]
              fid: int = fid_path,
              if_match: str | None = Header(None, alias="If-Match"),
              principal: Principal = Depends(get_principal),
              conn: Connection = Depends(get_conn)) -> FeatureOut:
        _forbid_role(principal, spec)
        current = load_row(conn, spec, fid)
        merged = {c: current[c] for c in spec.columns}
        merged.update(body.properties.model_dump(exclude_unset=True))
        if spec.collection == "launch_points":
            merged["village_code"] = body.properties.model_dump(exclude_unset=True).get(
                "village_code", None if body.geometry is not None else current["village_code"])
        props = _validate_full(spec, merged)
        feature = update(conn, principal, fid, if_match, body.geometry, props, True, "update")
        return _write_response(response, spec, feature)

    def delete(fid: int = fid_path,
               if_match: str | None = Header(None, alias="If-Match"),
               principal: Principal = Depends(get_principal),
               conn: Connection = Depends(get_conn)) -> Response:
        _forbid_role(principal, spec)
        versions = parse_if_match(if_match)
        row = load_row(conn, spec, fid, lock=True)
        _row_scope(principal, row)
        if versions is not None and row["version"] not in versions:
            raise stale(row["version"])
        done = conn.execute(text(f"DELETE FROM {spec.table} WHERE id = :id AND version = :v RETURNING id"),
                            {"id": fid, "v": row["version"]}).first()
        if done is None:
            raise Problem(412, "Dữ liệu vừa bị người khác thay đổi", "Changed by someone else meanwhile")
        record(conn, principal, "delete", spec.collection, fid, before=to_feature(spec, row))
        conn.commit()
        return Response(status_code=204)

    name = spec.collection
    router.add_api_route(base, create, methods=["POST"], status_code=201, response_model=FeatureOut,
                         tags=tags, summary=f"Thêm / create ({name})",
                         responses=problem_responses(401, 403, 409, 422))
    item = base + "/{fid}"
    router.add_api_route(item, replace, methods=["PUT"], response_model=FeatureOut, tags=tags,
                         summary=f"Thay thế / replace ({name}); If-Match required",
                         responses=problem_responses(401, 403, 404, 409, 412, 422, 428))
    router.add_api_route(item, patch, methods=["PATCH"], response_model=FeatureOut, tags=tags,
                         summary=f"Sửa một phần / patch ({name}); If-Match required",
                         responses=problem_responses(401, 403, 404, 409, 412, 422, 428))
    router.add_api_route(item, delete, methods=["DELETE"], status_code=204, tags=tags,
                         response_class=Response, summary=f"Xóa / delete ({name}); If-Match required",
                         responses=problem_responses(401, 403, 404, 412, 422, 428))


def _add_rating_route(router: APIRouter) -> None:
    spec = EDITABLES["models"]

    def rate(response: Response, body: RatingIn,
             fid: int = Path(..., ge=1, le=2**31 - 1),
             principal: Principal = Depends(get_principal),
             conn: Connection = Depends(get_conn)) -> RatingOut:
        _forbid_role(principal, spec)
        row = load_row(conn, spec, fid, lock=True)
        _row_scope(principal, row)
        if body.rated_on > today_vn():
            raise Problem(422, "Ngày đánh giá không được ở tương lai", "rated_on cannot be in the future",
                          [field_error("rated_on", "ở tương lai", "in the future")])
        if body.rated_on < row["founded_on"]:
            raise Problem(422, "Ngày đánh giá trước ngày thành lập mô hình",
                          "rated_on is before the model was founded",
                          [field_error("rated_on", "trước ngày thành lập", "before founded_on")])
        out = conn.execute(text(
            "INSERT INTO model_rating (model_id, rating, rated_on, rated_by, note) "
            "VALUES (:m, :r, :d, :by, :n) RETURNING id, model_id, rating, rated_on, rated_by, note"),
            {"m": fid, "r": body.rating, "d": body.rated_on, "by": principal.username,
             "n": body.note}).mappings().one()
        rating = dict(out)
        record(conn, principal, "rate", "models", fid, after=json.loads(json.dumps(rating, default=str)))
        conn.commit()
        response.status_code = 201
        response.headers["Location"] = f"/collections/models/items/{fid}/ratings/{rating['id']}"
        return RatingOut(**rating)

    router.add_api_route("/collections/models/items/{fid}/ratings", rate, methods=["POST"],
                         status_code=201, response_model=RatingOut, tags=["editing"],
                         summary="Đánh giá mô hình (một sự kiện) / rate a model (an event)",
                         responses=problem_responses(401, 403, 404, 422))


def make_router() -> APIRouter:
    router = APIRouter(dependencies=[Depends(reject_nul)])
    for spec in EDITABLES.values():
        _add_collection_routes(router, spec)
    _add_rating_route(router)
    _add_nearby_route(router)
    return router


def _add_nearby_route(router: APIRouter) -> None:
    """Uncovered villages around a launch point (geo's coverage functions do the work)."""
    spec = EDITABLES["launch_points"]

    def nearby(fid: int = Path(..., ge=1, le=2**31 - 1),
               radius: float = Query(2000, gt=0, le=50_000, description="Bán kính (m) / radius in metres"),
               on: dt.date | None = Query(None, alias="date", description="Ngày / date (default today)"),
               principal: Principal = Depends(get_principal),
               conn: Connection = Depends(get_conn)) -> dict[str, Any]:
        row = load_row(conn, spec, fid)
        _row_scope(principal, row)
        return uncovered_near(conn, row, radius, on or today_vn(), principal)

    router.add_api_route("/collections/launch_points/items/{fid}/nearby-uncovered", nearby,
                         methods=["GET"], tags=["editing"],
                         summary="Thôn chưa có mô hình quanh điểm phát động / uncovered villages nearby",
                         responses=problem_responses(401, 403, 404, 422))


def uncovered_near(conn: Connection, row: dict[str, Any], radius: float, on: dt.date,
                   principal: Principal) -> dict[str, Any]:
    """Villages not covered on ``on`` (geo.coverage's rule and ranking) within ``radius`` metres
    of the launch point (EPSG:3405), nearest first; incident counts follow the privacy rules."""
    from api.analytics import clean, suppress_small
    from api.geojson import unit_geometries
    from geo import coverage

    commune = principal.scope_code if principal.scope_level == "commune" else None
    province = None if commune else row["province_code"]
    df = coverage.uncovered_villages(conn, on, province_code=province, commune_code=commune)
    ids = [int(x) for x in df["id"]]
    near = conn.execute(text(f"""
        WITH lp AS (SELECT ST_Transform(COALESCE(t.geom, ST_PointOnSurface(v.geom)), {METRIC_SRID}) AS p
                    FROM launch_point t LEFT JOIN admin_unit v ON v.id = t.village_id WHERE t.id = :id)
        SELECT u.id, ST_Distance(ST_Transform(u.geom, {METRIC_SRID}), lp.p) AS distance_m
        FROM admin_unit u, lp
        WHERE u.id = ANY(:ids) AND ST_DWithin(ST_Transform(u.geom, {METRIC_SRID}), lp.p, :r)
        ORDER BY 2, u.code"""), {"id": row["id"], "ids": ids, "r": radius}).all()
    distance = {r.id: r.distance_m for r in near}
    records = [{k: clean(v) for k, v in rec.items()} for rec in df.to_dict("records")
               if int(rec["id"]) in distance]
    for rec in records:
        rec["distance_m"] = round(distance[int(rec["id"])], 1)
    records.sort(key=lambda r: (r["distance_m"], r["code"]))
    records = suppress_small(records, principal)
    outlines = unit_geometries(conn, [int(r["id"]) for r in records], 20.0)
    geoms = {k: v and json.loads(v) for k, v in outlines.items()}
    features = [{"type": "Feature", "id": r["code"], "geometry": geoms.get(int(r["id"])), "properties": r}
                for r in records]
    return {"type": "FeatureCollection", "features": features, "numberReturned": len(features),
            "launch_point": row["id"], "radius_m": radius, "date": on.isoformat()}
