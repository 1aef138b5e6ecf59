"""`generate(...)`: the whole demo in one transaction, and `build_haiphong_demo(url)` for tests.

Order: boundaries (file, existing, or synthetic) → villages (Voronoi cells) → the plan (hotspots,
uncovered villages) → models, fire groups, institutions, yearly facts, launch points →
incidents → accounts → manifest. A crash anywhere rolls everything back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Connection, Engine, text

from antt.accounts import create_user
from data.boundaries.units import ERA_2025
from data.demo import boundaries as demo_boundaries
from data.demo import incidents as demo_incidents
from data.demo import movement, yearplan
from data.demo.plan import Plan, choose_plan
from data.demo.sql import execute, read_frame
from data.demo.villages import create_villages, demo_communes

DEFAULT_SEED = 20250819  # 19 August: the national festival day of the movement
DEFAULT_INCIDENTS = 10_000
DEFAULT_VILLAGES_PER_COMMUNE = 9
DEFAULT_YEARS = 3
EXISTING = "existing"  # use the communes already in the database
DEMO_ROLES = ("admin", "police", "planner", "committee", "viewer")
DEMO_TABLES = ("movement_event", "model_review", "plan", "target_value", "incident", "launch_point",
               "security_model", "fire_group", "institution", "unit_year")
POINT_TABLES = ("incident", "launch_point", "security_model", "fire_group", "institution")


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    role: str
    scope: str


@dataclass
class DemoResult:
    province_codes: list[str]
    synthetic: bool
    counts: dict[str, int]
    plan: Plan
    accounts: list[DemoAccount]
    snapped_incidents: int
    until: dt.date
    skipped: bool = False
    extra: dict = field(default_factory=dict)


def default_until(today: dt.date | None = None) -> dt.date:
    """The last day of the previous month: whole months, and 'the last 12 months' is recent."""
    today = today or dt.date.today()
    return today.replace(day=1) - dt.timedelta(days=1)


def has_data(conn: Connection) -> bool:
    """True when units, incidents or movement records exist (demo or real)."""
    return bool(conn.execute(text(
        "SELECT EXISTS (SELECT 1 FROM admin_unit) OR EXISTS (SELECT 1 FROM incident) "
        "OR EXISTS (SELECT 1 FROM security_model) OR EXISTS (SELECT 1 FROM fire_group) "
        "OR EXISTS (SELECT 1 FROM institution)")).scalar_one())


def remove_demo(conn: Connection) -> None:
    """Delete earlier demo rows so a new run replaces, never duplicates, them."""
    demo_units = "(SELECT id FROM admin_unit WHERE is_demo)"
    for table in POINT_TABLES:  # real rows placed in demo villages keep their place, unlinked
        for col in ("village_id", "commune_id"):
            execute(conn, f"UPDATE {table} SET {col} = NULL WHERE NOT is_demo AND {col} IN {demo_units}")
    for table in DEMO_TABLES:
        execute(conn, f"DELETE FROM {table} WHERE is_demo")
    execute(conn, "DELETE FROM unit_year WHERE unit_id IN (SELECT id FROM admin_unit WHERE is_demo)")
    execute(conn, "UPDATE admin_unit SET parent_id = NULL WHERE NOT is_demo AND parent_id IN "
                  "(SELECT id FROM admin_unit WHERE is_demo)")
    execute(conn, "DELETE FROM admin_unit WHERE is_demo AND level = 'village'")
    execute(conn, "DELETE FROM admin_unit WHERE is_demo")
    execute(conn, "DELETE FROM demo_manifest")


def _passwords(role: str) -> str:
    """A fresh random password per run (printed once, never stored in clear)."""
    return f"{role[:3]}-{secrets.token_urlsafe(9)}"


def create_accounts(conn: Connection, province_code: str,
                    password_for: Callable[[str], str] = _passwords) -> list[DemoAccount]:
    accounts = []
    for role in DEMO_ROLES:
        scoped = role in ("planner", "committee")
        level, code = ("province", province_code) if scoped else ("all", None)
        pw = password_for(role)
        create_user(conn, f"demo_{role}", pw, role, scope_level=level, scope_code=code,
                    full_name=f"Tài khoản mẫu / demo {role}", is_demo=True, replace=True)
        accounts.append(DemoAccount(f"demo_{role}", pw, role, f"{level}:{code}" if code else "all"))
    return accounts


def checksum(conn: Connection) -> str:
    """A digest of the demo's generated content (not ids, not password hashes)."""
    parts = []
    for sql in (
        "SELECT code, name, population, households, md5(ST_AsBinary(ST_SnapToGrid(geom, 1e-7))) "
        "FROM admin_unit WHERE is_demo ORDER BY level, code",
        "SELECT external_id, category_code, occurred_at, youth_involved, status, deaths, injuries, "
        "ST_AsText(ST_SnapToGrid(geom, 1e-7)) FROM incident WHERE is_demo ORDER BY external_id",
        "SELECT external_id, type_code, name, status, founded_on, ST_AsText(ST_SnapToGrid(geom, 1e-7)) "
        "FROM security_model WHERE is_demo ORDER BY external_id",
        "SELECT m.external_id, r.rating, r.rated_on FROM model_rating r JOIN security_model m "
        "ON m.id = r.model_id WHERE m.is_demo ORDER BY 1, 3",
        "SELECT external_id, households, founded_on FROM fire_group WHERE is_demo ORDER BY 1",
    ):
        parts.append(json.dumps(read_frame(conn, sql).astype(str).values.tolist()))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def generate(engine: Engine, boundaries: Path | str | None = None, *, province_code: str | None = None,
             seed: int = DEFAULT_SEED, incidents: int = DEFAULT_INCIDENTS,
             villages_per_commune: int = DEFAULT_VILLAGES_PER_COMMUNE, years: int = DEFAULT_YEARS,
             until: dt.date | None = None, if_empty: bool = False, progress: bool = False,
             password_for: Callable[[str], str] = _passwords) -> DemoResult:
    """Generate the demo in one transaction.

    ``boundaries``: a 2025 commune file to load; ``"existing"`` to use the communes already in
    the database (optionally one ``province_code``); ``None`` for the synthetic province.
    Same seed, same ``until`` → the same data (passwords excepted: fresh each run).
    """
    if years < 1 or incidents < 0 or villages_per_commune < 1:
        raise ValueError("years ≥ 1, incidents ≥ 0, villages_per_commune ≥ 1 / "
                         "cần years ≥ 1, incidents ≥ 0, villages_per_commune ≥ 1")
    until = until or default_until()
    on_date = max(until, ERA_2025)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TimeElapsedColumn(), transient=False) if progress else nullcontext()
    steps = ["Ranh giới / boundaries", "Thôn / villages", "Mô hình / models",
             "Tổ liên gia PCCC / fire groups",
             "Cơ quan, trường, doanh nghiệp / institutions", "Kết quả năm / yearly facts",
             "Điểm phát động / launch points", "Kế hoạch năm, sự kiện / plans, events",
             f"Sự vụ / incidents ({incidents:,})", "Tài khoản / accounts"]
    with ExitStack() as stack:
        conn = stack.enter_context(engine.begin())
        if if_empty and has_data(conn):
            return DemoResult([], False, {}, Plan([], []), [], 0, until, skipped=True)
        prog = stack.enter_context(bar)
        task = prog.add_task("antt demo", total=len(steps)) if prog else None

        timings: dict[str, float] = {}
        clock = [time.perf_counter()]

        def step(i: int) -> None:
            now = time.perf_counter()
            if i > 0:
                timings[steps[i - 1].split(" / ")[-1]] = round(now - clock[0], 2)
            clock[0] = now
            if prog:
                prog.update(task, completed=i, description=steps[i] if i < len(steps) else "xong / done")

        step(0)
        remove_demo(conn)
        synthetic = False
        if boundaries is None:
            provinces = demo_boundaries.create_synthetic_province(conn, seed)
            synthetic = True
        elif str(boundaries) == EXISTING:
            where = "AND code = %(p)s" if province_code else ""
            # Provinces of the demo's date only: with pre-2025 units loaded, code 31 is two rows.
            provinces = read_frame(conn, "SELECT DISTINCT code FROM admin_unit "
                                   f"WHERE level = 'province' {where} AND valid_from <= %(d)s "
                                   "AND (valid_to IS NULL OR %(d)s < valid_to) ORDER BY code",
                                   {"p": province_code, "d": on_date})["code"].tolist()
            if not provinces:
                raise demo_boundaries.DemoBoundaryError(
                    "Chưa có ranh giới tỉnh trong CSDL / no province boundaries in the database")
        else:
            provinces = demo_boundaries.load_boundary_file(conn, boundaries, province_code)
        communes = demo_communes(conn, provinces, on_date)
        if communes.empty:
            raise demo_boundaries.DemoBoundaryError("Không có xã / no communes in the demo provinces")
        step(1)
        villages = create_villages(conn, communes, villages_per_commune, seed, on_date)
        plans = province_plans(villages, provinces, seed)
        plan = merge_plans(plans.values())
        types = read_frame(conn, "SELECT code, name_vi FROM model_type").set_index("code")["name_vi"]
        types = types.to_dict()
        window_start, _ = demo_incidents.window(until, years)
        year_list = list(range(window_start.year, until.year + 1))
        step(2)
        models = movement.create_models(conn, villages, plan, seed, until, types)
        step(3)
        fire = movement.create_fire_groups(conn, villages, seed, until)
        step(4)
        inst = movement.create_institutions(conn, villages, plan, communes, seed, until, year_list, types)
        step(5)
        unit_years = movement.create_unit_years(conn, villages, communes, plan, seed, year_list)
        step(6)
        launches = movement.create_launch_points(conn, villages, plan, seed, until)
        step(7)
        cycle = yearplan.create_year_plans(conn, communes, plan, provinces, seed, until, year_list)
        step(8)
        by_province = prog.add_task("  Sự vụ theo tỉnh / incidents by province",
                                    total=len(provinces)) if prog and len(provinces) > 1 else None

        def province_done(k: int) -> None:
            if by_province is not None:
                prog.update(by_province, completed=k)

        report = province_incidents(conn, villages, communes, plans, incidents, seed, until, years, on_date,
                                    province_done)
        step(9)
        accounts = create_accounts(conn, provinces[0], password_for)
        step(10)
        counts = {"communes": len(communes), "villages": len(villages), "village_models": len(models),
                  "fire_groups": fire, "institutions": inst, "unit_years": unit_years,
                  "launch_points": launches, **cycle, "incidents": report.total}
        manifest = {"seed": seed, "until": until.isoformat(), "start": report.start.isoformat(),
                    "years": years, "hotspot_from": (until - dt.timedelta(days=364)).isoformat(),
                    "synthetic": synthetic, "province_codes": provinces, "counts": counts,
                    "incidents_by_process": report.by_process,
                    "incidents_snapped_to_anchor": report.snapped_to_anchor,
                    "accounts": [a.username for a in accounts], **plan.as_json()}
        execute(conn, "INSERT INTO demo_manifest (key, value) VALUES ('demo', %(v)s::jsonb)",
                {"v": json.dumps(manifest, ensure_ascii=False)})
    return DemoResult(provinces, synthetic, counts, plan, accounts, report.snapped_to_anchor, until,
                      extra={"manifest": manifest, "timings": timings})


def province_plans(villages: pd.DataFrame, provinces: list[str], seed: int) -> dict[str, Plan]:
    """The planted story of each province: its own hotspots and uncovered villages.

    One province keeps the seed as given (the single-province demo is unchanged); with several,
    each draws with its own seed, so every province account finds its own story."""
    if len(provinces) == 1:
        return {provinces[0]: choose_plan(villages, seed)}
    return {p: choose_plan(villages[villages["province_code"] == p], seed + 7919 * (k + 1))
            for k, p in enumerate(provinces)}


def merge_plans(plans) -> Plan:
    plans = list(plans)
    return Plan([h for p in plans for h in p.hotspots], [u for p in plans for u in p.uncovered])


def apportion(total: int, weights: pd.Series) -> pd.Series:
    """TOTAL split in proportion to WEIGHTS, in integers that add up to TOTAL (largest remainder)."""
    exact = weights.astype(float) / float(weights.sum()) * total
    whole = np.floor(exact).astype(int)
    short = total - int(whole.sum())
    order = (exact - whole).sort_values(ascending=False, kind="stable").index[:short]
    whole.loc[order] += 1
    return whole


def province_incidents(conn: Connection, villages: pd.DataFrame, communes: pd.DataFrame,
                       plans: dict[str, Plan], incidents: int, seed: int, until: dt.date, years: int,
                       on_date: dt.date, done: Callable[[int], None]) -> demo_incidents.IncidentReport:
    """Incidents drawn province by province, in proportion to population, each around its own
    planted hotspots (one province: exactly the single-province demo)."""
    provinces = list(plans)
    if len(provinces) == 1:
        report = demo_incidents.create_incidents(conn, villages, plans[provinces[0]], incidents, seed, until,
                                                 years, communes["id"].tolist(), on_date)
        done(1)
        return report
    counts = apportion(incidents, villages.groupby("province_code")["population"].sum().reindex(provinces))
    total, by_process, snapped, start = 0, {}, 0, None
    for k, p in enumerate(provinces):
        n = int(counts[p])
        if n:
            r = demo_incidents.create_incidents(
                conn, villages[villages["province_code"] == p], plans[p], n, seed + 104729 * (k + 1), until,
                years, communes.loc[communes["province_code"] == p, "id"].tolist(), on_date,
                id_prefix=f"demo-inc-{p}-")
            total += r.total
            snapped += r.snapped_to_anchor
            start = r.start
            for proc, m in r.by_process.items():
                by_process[proc] = by_process.get(proc, 0) + m
        done(k + 1)
    start = start or demo_incidents.window(until, years)[0]
    return demo_incidents.IncidentReport(total, by_process, snapped, start, until)


HAIPHONG = "31"


def build_haiphong_demo(url: str, *, seed: int = DEFAULT_SEED, incidents: int = 10_000,
                        villages_per_commune: int = DEFAULT_VILLAGES_PER_COMMUNE,
                        until: dt.date = dt.date(2026, 10, 31)) -> DemoResult:
    """A migrated database at URL → real Hải Phòng 2025 boundaries + demo data (~1,000 villages,
    10,000 incidents). For other helpers' session templates; passwords are 'demo-<role>-pass'."""
    from antt.db import make_engine
    from data.boundaries import sources
    from data.boundaries.load import load_2025

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            loaded = conn.execute(text("SELECT count(*) FROM admin_unit WHERE level = 'commune' "
                                       "AND province_code = :p"), {"p": HAIPHONG}).scalar_one()
        if not loaded:
            load_2025(engine, sources.path_of(sources.COMMUNES_2025_HAIPHONG), province_code=HAIPHONG)
        return generate(engine, EXISTING, province_code=HAIPHONG, seed=seed, incidents=incidents,
                        villages_per_commune=villages_per_commune, until=until,
                        password_for=lambda role: f"demo-{role}-pass")
    finally:
        engine.dispose()
