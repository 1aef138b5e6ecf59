"""GeoAlchemy2 models mirroring the Alembic schema (``antt/migrations``).

The migrations are the source of truth for DDL (triggers, checks, functions); these classes
give typed access for editing. ``tests/test_schema.py`` checks that the two agree.
"""

from __future__ import annotations

import datetime as dt

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from antt.crs import METRIC_SRID


class Base(DeclarativeBase):
    pass


def _point() -> Mapped[object]:
    return mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)


class AdminUnit(Base):
    __tablename__ = "admin_unit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[str] = mapped_column(Text)
    code: Mapped[str] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    full_name: Mapped[str | None] = mapped_column(Text)
    name_search: Mapped[str] = mapped_column(Text)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("admin_unit.id"))
    province_code: Mapped[str | None] = mapped_column(Text)
    population: Mapped[int | None] = mapped_column(Integer)
    households: Mapped[int | None] = mapped_column(Integer)
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    source: Mapped[str | None] = mapped_column(Text)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    is_synthetic: Mapped[bool] = mapped_column(Boolean, default=False)
    geom: Mapped[object | None] = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=False))


class UnitLineage(Base):
    __tablename__ = "unit_lineage"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    old_level: Mapped[str] = mapped_column(Text)
    old_code: Mapped[str] = mapped_column(Text)
    old_name: Mapped[str | None] = mapped_column(Text)
    new_level: Mapped[str] = mapped_column(Text)
    new_code: Mapped[str] = mapped_column(Text)
    new_name: Mapped[str | None] = mapped_column(Text)
    merge_type: Mapped[str] = mapped_column(Text)
    area_share: Mapped[float | None] = mapped_column(Float)
    effective_on: Mapped[dt.date] = mapped_column(Date)
    source: Mapped[str | None] = mapped_column(Text)


class ModelType(Base):
    __tablename__ = "model_type"
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name_vi: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    icon: Mapped[str] = mapped_column(Text)
    host_kind: Mapped[str] = mapped_column(Text)
    reach_m: Mapped[float | None] = mapped_column(Float)  # planner's default radius (0008)


class Institution(Base):
    __tablename__ = "institution"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("admin_unit.id"))
    village_id: Mapped[int | None] = mapped_column(ForeignKey("admin_unit.id"))
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    geom: Mapped[object] = _point()


class InstitutionYear(Base):
    __tablename__ = "institution_year"
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    antt_safe: Mapped[bool | None] = mapped_column(Boolean)
    festival_held: Mapped[bool | None] = mapped_column(Boolean)
    launched: Mapped[bool | None] = mapped_column(Boolean)
    movement_class: Mapped[str | None] = mapped_column(Text)


class UnitYear(Base):
    __tablename__ = "unit_year"
    unit_id: Mapped[int] = mapped_column(ForeignKey("admin_unit.id"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    festival_held: Mapped[bool | None] = mapped_column(Boolean)
    movement_class: Mapped[str | None] = mapped_column(Text)
    launched: Mapped[bool | None] = mapped_column(Boolean)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)


class SecurityModel(Base):
    __tablename__ = "security_model"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(Text)
    type_code: Mapped[str] = mapped_column(ForeignKey("model_type.code"))
    name: Mapped[str] = mapped_column(Text)
    host_kind: Mapped[str] = mapped_column(Text, default="village")
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("admin_unit.id"))
    village_id: Mapped[int | None] = mapped_column(ForeignKey("admin_unit.id"))
    founded_on: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(Text, default="active")
    status_since: Mapped[dt.date | None] = mapped_column(Date)
    recognition: Mapped[str] = mapped_column(Text, default="none")
    recognized_on: Mapped[dt.date | None] = mapped_column(Date)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    geom: Mapped[object] = _point()


class ModelRating(Base):
    __tablename__ = "model_rating"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("security_model.id"))
    rating: Mapped[str] = mapped_column(Text)
    rated_on: Mapped[dt.date] = mapped_column(Date)
    rated_by: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)


class FireGroup(Base):
    __tablename__ = "fire_group"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    leader: Mapped[str | None] = mapped_column(Text)
    households: Mapped[int] = mapped_column(Integer)
    founded_on: Mapped[dt.date] = mapped_column(Date)
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("admin_unit.id"))
    village_id: Mapped[int | None] = mapped_column(ForeignKey("admin_unit.id"))
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    geom: Mapped[object] = _point()


class IncidentCategory(Base):
    __tablename__ = "incident_category"
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    parent: Mapped[str | None] = mapped_column(ForeignKey("incident_category.code"))
    name_vi: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)


class Incident(Base):
    __tablename__ = "incident"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(Text)
    category_code: Mapped[str] = mapped_column(ForeignKey("incident_category.code"))
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    precision: Mapped[str] = mapped_column(Text, default="exact")
    deaths: Mapped[int] = mapped_column(Integer, default=0)
    injuries: Mapped[int] = mapped_column(Integer, default=0)
    youth_involved: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(Text, default="reported")
    source: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("admin_unit.id"))
    village_id: Mapped[int | None] = mapped_column(ForeignKey("admin_unit.id"))
    # Today's units by location (migration 0006): every incident counts in the current map.
    commune_now_id: Mapped[int | None] = mapped_column(ForeignKey("admin_unit.id", ondelete="SET NULL"))
    village_now_id: Mapped[int | None] = mapped_column(ForeignKey("admin_unit.id", ondelete="SET NULL"))
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    geom: Mapped[object] = _point()
    # The point in metres (EPSG:3405), computed by PostgreSQL from geom (migration 0013).
    geom_m: Mapped[object] = mapped_column(
        Geometry("POINT", srid=METRIC_SRID, spatial_index=False),
        Computed(f"ST_Transform(geom, {METRIC_SRID})", persisted=True))
    # Its 2 km hexagon packed as i * 2^21 + j (migration 0016, geo.grid.STORED_HEX_CELL_M).
    hex2000: Mapped[int] = mapped_column(
        BigInteger, Computed(f"antt_hex_key(ST_Transform(geom, {METRIC_SRID}), 2000)", persisted=True))


class LaunchPoint(Base):
    __tablename__ = "launch_point"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    theme: Mapped[str] = mapped_column(Text)
    launch_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(Text, default="planned")
    notes: Mapped[str | None] = mapped_column(Text)
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("admin_unit.id"))
    village_id: Mapped[int | None] = mapped_column(ForeignKey("admin_unit.id"))
    created_by: Mapped[str | None] = mapped_column(Text)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    geom: Mapped[object | None] = mapped_column(
        Geometry("POINT", srid=4326, spatial_index=False))
    model_type_code: Mapped[str | None] = mapped_column(ForeignKey("model_type.code"))
    source_model_id: Mapped[int | None] = mapped_column(ForeignKey("security_model.id"))


class AppUser(Base):
    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(Text)
    full_name: Mapped[str | None] = mapped_column(Text)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    scope_level: Mapped[str] = mapped_column(Text, default="all")
    scope_code: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    __tablename__ = "api_key"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    prefix: Mapped[str] = mapped_column(Text)
    key_hash: Mapped[str] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AuditLog(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    username: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    entity: Mapped[str] = mapped_column(Text)
    entity_id: Mapped[str | None] = mapped_column(Text)
    before: Mapped[dict | None] = mapped_column(JSONB)
    after: Mapped[dict | None] = mapped_column(JSONB)
    detail: Mapped[dict | None] = mapped_column(JSONB)


class Job(Base):
    __tablename__ = "job"
    id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str | None] = mapped_column(Text)
    params: Mapped[dict] = mapped_column(JSONB)
    result: Mapped[dict | None] = mapped_column(JSONB)
    error: Mapped[dict | None] = mapped_column(JSONB)
    owner: Mapped[str | None] = mapped_column(Text)
    owner_role: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class DemoManifest(Base):
    __tablename__ = "demo_manifest"
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[dict] = mapped_column(JSONB)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class ReachCache(Base):
    __tablename__ = "reach_cache"
    unit_id: Mapped[int] = mapped_column(ForeignKey("admin_unit.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    radius_m: Mapped[float] = mapped_column(Float)
    area_m2: Mapped[float] = mapped_column(Float)
    area_within_m2: Mapped[float] = mapped_column(Float)
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class PlannerScenario(Base):
    __tablename__ = "planner_scenario"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    problem: Mapped[str] = mapped_column(Text)
    province_code: Mapped[str | None] = mapped_column(Text)
    commune_codes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    parameters: Mapped[dict] = mapped_column(JSONB)
    figures: Mapped[dict] = mapped_column(JSONB)
    solver: Mapped[dict | None] = mapped_column(JSONB)
    exact_counts: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(Text, default="draft")
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    accepted_by: Mapped[str | None] = mapped_column(Text)
    accepted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_as: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)


class PlannerScenarioSite(Base):
    __tablename__ = "planner_scenario_site"
    scenario_id: Mapped[int] = mapped_column(
        ForeignKey("planner_scenario.id", ondelete="CASCADE"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    gain: Mapped[float] = mapped_column(Float)
    villages: Mapped[list] = mapped_column(JSONB)
    launch_point_id: Mapped[int | None] = mapped_column(ForeignKey("launch_point.id", ondelete="SET NULL"))
    model_id: Mapped[int | None] = mapped_column(ForeignKey("security_model.id", ondelete="SET NULL"))
    geom: Mapped[object] = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))


# --- the year's plan (migration 0009, issue 11) ----------------------------------------------

class TargetDef(Base):
    __tablename__ = "target_def"
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name_vi: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    measure: Mapped[str] = mapped_column(Text)
    unit_vi: Mapped[str] = mapped_column(Text)
    unit_en: Mapped[str] = mapped_column(Text)
    direction: Mapped[str] = mapped_column(Text)
    default_threshold: Mapped[float] = mapped_column(Float)
    metric: Mapped[str | None] = mapped_column(Text)
    applies_to: Mapped[str] = mapped_column(Text, default="commune")
    due: Mapped[str] = mapped_column(Text, default="12-31")
    position: Mapped[int] = mapped_column(Integer, default=100)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class Plan(Base):
    __tablename__ = "plan"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_level: Mapped[str] = mapped_column(Text)
    unit_code: Mapped[str] = mapped_column(Text)
    year: Mapped[int] = mapped_column(Integer)
    title: Mapped[str | None] = mapped_column(Text)
    doc_number: Mapped[str | None] = mapped_column(Text)
    issued_on: Mapped[dt.date | None] = mapped_column(Date)
    signer: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(Text)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class PlanTarget(Base):
    __tablename__ = "plan_target"
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id", ondelete="CASCADE"), primary_key=True)
    target_code: Mapped[str] = mapped_column(ForeignKey("target_def.code"), primary_key=True)
    threshold: Mapped[float] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text)


class TargetValue(Base):
    __tablename__ = "target_value"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target_code: Mapped[str] = mapped_column(ForeignKey("target_def.code"))
    unit_level: Mapped[str] = mapped_column(Text)
    unit_code: Mapped[str] = mapped_column(Text)
    year: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)
    recorded_on: Mapped[dt.date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(Text)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class MovementEvent(Base):
    __tablename__ = "movement_event"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(Text, unique=True)
    kind: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    held_on: Mapped[dt.date] = mapped_column(Date)
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("admin_unit.id"))
    village_id: Mapped[int | None] = mapped_column(ForeignKey("admin_unit.id"))
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))
    launch_point_id: Mapped[int | None] = mapped_column(ForeignKey("launch_point.id"))
    place: Mapped[str | None] = mapped_column(Text)
    participants: Mapped[int | None] = mapped_column(Integer)
    notes: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list[str]] = mapped_column(ARRAY(Text))
    created_by: Mapped[str | None] = mapped_column(Text)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class ModelReview(Base):
    __tablename__ = "model_review"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("admin_unit.id", ondelete="CASCADE"))
    commune_code: Mapped[str] = mapped_column(Text)
    year: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(Text)
    reviewed_on: Mapped[dt.date] = mapped_column(Date)
    created_by: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)


class ModelReviewItem(Base):
    __tablename__ = "model_review_item"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("model_review.id", ondelete="CASCADE"))
    model_id: Mapped[int] = mapped_column(ForeignKey("security_model.id", ondelete="CASCADE"))
    proposal: Mapped[str] = mapped_column(Text)
    reason_vi: Mapped[str] = mapped_column(Text)
    reason_en: Mapped[str] = mapped_column(Text)
    ratings: Mapped[list] = mapped_column(JSONB)
    decision: Mapped[str | None] = mapped_column(Text)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)


class ModelStatusEvent(Base):
    __tablename__ = "model_status_event"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("security_model.id", ondelete="CASCADE"))
    on_date: Mapped[dt.date] = mapped_column(Date)
    decision: Mapped[str] = mapped_column(Text)
    status_before: Mapped[str] = mapped_column(Text)
    status_after: Mapped[str] = mapped_column(Text)
    review_item_id: Mapped[int | None] = mapped_column(ForeignKey("model_review_item.id"))
    decided_by: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


# --- shared state of stateless workers (migration 0007) -----------------------------------

class LoginFailure(Base):
    __tablename__ = "login_failure"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    key: Mapped[str] = mapped_column(Text)
    at: Mapped[float] = mapped_column(Float)


class DataVersion(Base):
    __tablename__ = "data_version"
    tbl: Mapped[str] = mapped_column(Text, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class DataChange(Base):
    __tablename__ = "data_change"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tbl: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class TileCache(Base):
    __tablename__ = "tile_cache"
    key: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    layer: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    features: Mapped[int] = mapped_column(Integer)
    generalisation: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class ResultCache(Base):
    """Analysis responses shared by all workers (migration 0014, api/resultcache.py)."""

    __tablename__ = "result_cache"
    key: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    grp: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(Text)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[dict] = mapped_column(JSONB)
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


# --- report files made by jobs (migration 0011) ----------------------------------------------

class ReportFile(Base):
    __tablename__ = "report_file"
    id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"))
    format: Mapped[str] = mapped_column(Text)
    filename: Mapped[str] = mapped_column(Text)
    media_type: Mapped[str] = mapped_column(Text)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(Text)
    code: Mapped[str] = mapped_column(Text)
    sees_points: Mapped[bool] = mapped_column(Boolean)
    annex: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
