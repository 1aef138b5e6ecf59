"""The movement's demo records: models and their rating history, fire-safety household groups,
institutions with yearly results, yearly unit facts and launch points.

Points are drawn inside their village polygon in SQL (ST_GeneratePoints, seeded), and commune
and village ids are written with them, so the per-row assignment trigger has nothing to look up.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from data.demo.names import person_names
from data.demo.plan import Plan
from data.demo.sql import copy_frame, read_frame

VILLAGE_MODEL_TYPES = {  # type code -> weight among village-hosted models
    "to_tu_quan": 0.30, "dong_ho_tu_quan": 0.12, "camera_antt": 0.18, "tai_hoa_nhap": 0.10,
    "an_toan_giao_thong": 0.10, "thanh_thieu_nien": 0.12, "pccc_lien_gia": 0.08,
}
QUALIFYING = ("tot", "kha", "trung_binh")
RATINGS = ("tot", "kha", "trung_binh", "yeu")
MOVEMENT_CLASSES = ("xuat_sac", "kha", "trung_binh", "yeu")


def points_in_villages(conn: Connection, village_ids: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One random point inside the village polygon per entry of VILLAGE_IDS (same order).

    Seeded by village code, not id, so a rerun (new ids) draws the same points."""
    if len(village_ids) == 0:
        return np.array([]), np.array([])
    req = pd.DataFrame({"village_id": village_ids})
    req["k"] = req.groupby("village_id").cumcount() + 1
    counts = req.groupby("village_id").size()
    # ST_GeneratePoints may return fewer points than asked for a polygon that fills little of
    # its box (island villages), so ask for more and keep the first ones.
    pts = read_frame(conn, """
        SELECT s.village_id, row_number() OVER (PARTITION BY s.village_id ORDER BY d.path[1]) AS k,
               ST_X(d.geom) AS lon, ST_Y(d.geom) AS lat
        FROM unnest(%(v)s::int[], %(n)s::int[]) AS s(village_id, n)
        JOIN admin_unit u ON u.id = s.village_id,
        LATERAL ST_Dump(ST_GeneratePoints(u.geom, 3 * s.n + 5,
                        abs(hashtext(u.code || ':' || %(salt)s)) %% 2000000000 + 1)) d""",
                     {"v": counts.index.tolist(), "n": counts.tolist(), "salt": str(seed)})
    merged = req.merge(pts, on=["village_id", "k"], how="left")
    short = merged["lon"].isna()
    if short.any():  # a sliver village: put the rest on its point-on-surface, still inside it
        inside = read_frame(conn, "SELECT id AS village_id, ST_X(ST_PointOnSurface(geom)) AS lon, "
                            "ST_Y(ST_PointOnSurface(geom)) AS lat FROM admin_unit WHERE id = ANY(%(v)s)",
                            {"v": sorted({int(v) for v in merged.loc[short, "village_id"]})})
        fill = merged.loc[short, ["village_id"]].merge(inside, on="village_id", how="left")
        merged.loc[short, ["lon", "lat"]] = fill[["lon", "lat"]].to_numpy()
    return merged["lon"].to_numpy(), merged["lat"].to_numpy()


def _ewkt(lon: np.ndarray, lat: np.ndarray) -> list[str]:
    return [f"SRID=4326;POINT({x:.7f} {y:.7f})" for x, y in zip(lon, lat, strict=True)]


def _rating_history(rng: np.random.Generator, founded: dt.date, until: dt.date,
                    final: str) -> list[tuple[str, dt.date]]:
    """Yearly ratings (15 November) since founding, at most four, ending in FINAL."""
    dates = [dt.date(y, 11, 15) for y in range(founded.year, until.year + 1)
             if founded <= dt.date(y, 11, 15) <= until][-4:]
    if not dates:
        dates = [until]
    history = [RATINGS[int(rng.integers(0, 3))] for _ in dates[:-1]] + [final]
    return list(zip(history, dates, strict=True))


def create_models(conn: Connection, villages: pd.DataFrame, plan: Plan, seed: int, until: dt.date,
                  types: dict[str, str]) -> pd.DataFrame:
    """Village-hosted models; every covered village gets at least one active qualifying model,
    every uncovered village none (its models are absent, rated 'yeu', or inactive)."""
    rng = np.random.default_rng([seed, 4])
    reasons = {u.village_id: u.reason for u in plan.uncovered}
    type_codes = list(VILLAGE_MODEL_TYPES)
    weights = np.array(list(VILLAGE_MODEL_TYPES.values()))
    weights = weights / weights.sum()
    rows, ratings = [], []
    for v in villages.itertuples():
        reason = reasons.get(v.id)
        if reason == "no_model":
            continue
        n = 1 + min(3, int(rng.poisson(0.9))) if reason is None else 1 + int(rng.random() < 0.3)
        picked = rng.choice(len(type_codes), size=min(n, len(type_codes)), replace=False, p=weights)
        for j, t in enumerate(picked):
            founded = until - dt.timedelta(days=int(rng.integers(60, 8 * 365)))
            if reason is None:
                status = "active" if j == 0 or rng.random() < 0.85 else rng.choice(["suspended", "dissolved"])
                final = (rng.choice(QUALIFYING, p=[0.35, 0.45, 0.20]) if j == 0
                         else rng.choice(RATINGS, p=[0.3, 0.4, 0.2, 0.1]))
            elif reason == "poor_rating":
                status, final = "active", "yeu"
            else:  # inactive: once good, now suspended or dissolved
                status, final = rng.choice(["suspended", "dissolved"]), rng.choice(["tot", "kha"])
            history = _rating_history(rng, founded, until, str(final))
            recognition, recognized_on = "none", None
            if final == "tot" and (until - founded).days > 2 * 365 and rng.random() < 0.4:
                recognition = "mps" if rng.random() < 0.25 else "provincial_bcd138"
                recognized_on = history[-1][1]
            status_since = (None if status == "active"
                            else until - dt.timedelta(days=int(rng.integers(30, 400))))
            ext = f"demo-model-{len(rows) + 1:06d}"
            rows.append({"external_id": ext, "type_code": type_codes[t],
                         "name": f"{types[type_codes[t]]} – {v.name}", "host_kind": "village",
                         "commune_id": v.commune_id, "village_id": v.id, "founded_on": founded,
                         "status": status, "status_since": status_since, "recognition": recognition,
                         "recognized_on": recognized_on})
            ratings += [(ext, r, d) for r, d in history]
    models = pd.DataFrame(rows)
    lon, lat = points_in_villages(conn, models["village_id"].to_numpy(), seed * 3 + 1)
    models["geom"] = _ewkt(lon, lat)
    _insert_models(conn, models, ratings)
    return models


def _insert_models(conn: Connection, models: pd.DataFrame, ratings: list[tuple[str, str, dt.date]]) -> None:
    models = models.assign(is_demo=True)
    copy_frame(conn, "security_model", models)
    ids = read_frame(conn, "SELECT external_id, id FROM security_model WHERE external_id = ANY(%(e)s)",
                     {"e": models["external_id"].tolist()}).set_index("external_id")["id"]
    frame = pd.DataFrame(ratings, columns=["external_id", "rating", "rated_on"])
    frame["model_id"] = frame["external_id"].map(ids)
    frame["rated_by"] = "BCĐ 138 (demo)"
    copy_frame(conn, "model_rating", frame[["model_id", "rating", "rated_on", "rated_by"]])


def create_fire_groups(conn: Connection, villages: pd.DataFrame, seed: int, until: dt.date) -> int:
    rng = np.random.default_rng([seed, 5])
    per_village = 1 + rng.poisson(1.2, len(villages))
    vids = np.repeat(villages["id"].to_numpy(), per_village)
    lookup = villages.set_index("id")
    k = pd.Series(vids).groupby(vids).cumcount().to_numpy() + 1
    n = len(vids)
    lon, lat = points_in_villages(conn, vids, seed * 3 + 2)
    frame = pd.DataFrame({
        "external_id": [f"demo-fire-{i + 1:06d}" for i in range(n)],
        "name": [f"Tổ liên gia an toàn PCCC số {j} – {lookup.at[v, 'name']}"
                 for v, j in zip(vids, k, strict=True)],
        "leader": person_names(n, rng), "households": rng.integers(5, 21, n),
        "founded_on": [until - dt.timedelta(days=int(d)) for d in rng.integers(30, 6 * 365, n)],
        "commune_id": lookup.loc[vids, "commune_id"].to_numpy(), "village_id": vids,
        "is_demo": True, "geom": _ewkt(lon, lat)})
    return copy_frame(conn, "fire_group", frame)


def create_institutions(conn: Connection, villages: pd.DataFrame, plan: Plan, communes: pd.DataFrame,
                        seed: int, until: dt.date, years: list[int], types: dict[str, str]) -> int:
    """Per commune: the People's Committee, two schools, 0-3 enterprises, placed in covered
    villages; yearly 'An toàn về ANTT' results; safe-school / enterprise models for some."""
    rng = np.random.default_rng([seed, 6])
    covered = villages[~villages["id"].isin(plan.uncovered_ids)]
    rows = []
    for c in communes.itertuples():
        hosts = covered[covered["commune_id"] == c.id]
        if hosts.empty:
            continue
        bare = c.name
        kinds = [("agency", f"Ủy ban nhân dân {c.full_name}"),
                 ("school", f"Trường Tiểu học {bare}"), ("school", f"Trường THCS {bare}")]
        kinds += [("enterprise", f"Công ty TNHH {bare} {k + 1}") for k in range(int(rng.integers(0, 4)))]
        for kind, name in kinds:
            vid = int(hosts["id"].iloc[int(rng.integers(0, len(hosts)))])
            rows.append({"external_id": f"demo-inst-{len(rows) + 1:06d}", "kind": kind, "name": name,
                         "commune_id": c.id, "village_id": vid})
    inst = pd.DataFrame(rows)
    if inst.empty:
        return 0
    lon, lat = points_in_villages(conn, inst["village_id"].to_numpy(), seed * 3 + 3)
    inst["geom"] = _ewkt(lon, lat)
    copy_frame(conn, "institution", inst.assign(is_demo=True))
    ids = read_frame(conn, "SELECT external_id, id FROM institution WHERE external_id = ANY(%(e)s)",
                     {"e": inst["external_id"].tolist()}).set_index("external_id")["id"]
    inst["id"] = inst["external_id"].map(ids)
    yearly = pd.DataFrame([(i, y) for i in inst["id"] for y in years], columns=["institution_id", "year"])
    yearly["antt_safe"] = rng.random(len(yearly)) < 0.85
    yearly["festival_held"] = rng.random(len(yearly)) < 0.9
    copy_frame(conn, "institution_year", yearly)
    # Institution-hosted models: most schools, half the enterprises.
    chance = inst["kind"].map({"school": 0.7, "enterprise": 0.5, "agency": 0.0}).to_numpy()
    hosted = inst[rng.random(len(inst)) < chance]
    mrows, ratings = [], []
    for i in hosted.itertuples():
        code = "truong_hoc_an_toan" if i.kind == "school" else "doanh_nghiep_an_toan"
        founded = until - dt.timedelta(days=int(rng.integers(200, 6 * 365)))
        final = str(rng.choice(QUALIFYING, p=[0.4, 0.4, 0.2]))
        ext = f"demo-imodel-{len(mrows) + 1:06d}"
        mrows.append({"external_id": ext, "type_code": code, "name": f"{types[code]} – {i.name}",
                      "host_kind": "institution", "institution_id": i.id, "commune_id": i.commune_id,
                      "village_id": i.village_id, "founded_on": founded, "status": "active",
                      "status_since": None, "recognition": "none", "recognized_on": None, "geom": i.geom})
        ratings += [(ext, r, d) for r, d in _rating_history(rng, founded, until, final)]
    if mrows:
        _insert_models(conn, pd.DataFrame(mrows), ratings)
    return len(inst)


def create_unit_years(conn: Connection, villages: pd.DataFrame, communes: pd.DataFrame, plan: Plan,
                      seed: int, years: list[int]) -> int:
    """Yearly festival, movement class and launch for every demo village and commune."""
    rng = np.random.default_rng([seed, 7])
    units = np.concatenate([villages["id"].to_numpy(), communes["id"].to_numpy()])
    weak = np.isin(units, list(plan.uncovered_ids))
    frame = pd.DataFrame([(u, y) for u in units for y in years], columns=["unit_id", "year"])
    weak_rows = np.repeat(weak, len(years))
    n = len(frame)
    good_p, weak_p = [0.15, 0.55, 0.25, 0.05], [0.0, 0.15, 0.45, 0.40]
    cls = np.where(weak_rows, rng.choice(4, n, p=weak_p), rng.choice(4, n, p=good_p))
    frame["movement_class"] = np.array(MOVEMENT_CLASSES)[cls]
    frame["festival_held"] = rng.random(n) < np.where(weak_rows, 0.5, 0.92)
    frame["launched"] = rng.random(n) < np.where(weak_rows, 0.6, 0.9)
    frame["is_demo"] = True
    return copy_frame(conn, "unit_year", frame)


def create_launch_points(conn: Connection, villages: pd.DataFrame, plan: Plan, seed: int,
                         until: dt.date) -> int:
    """Planned launches at the hotspots and three uncovered villages; past ones elsewhere."""
    rng = np.random.default_rng([seed, 8])
    rows = []
    for h in plan.hotspots:
        rows.append((h.village_id, f"Phát động tại {h.village_name}", h.theme.split(" / ")[0],
                     until + dt.timedelta(days=30), "planned"))
    for u in [u for u in plan.uncovered if u.reason == "no_model"][:3]:
        rows.append((u.village_id, f"Xây dựng mô hình tại {u.village_name}",
                     "Xây dựng mô hình tự quản về ANTT", until + dt.timedelta(days=45), "planned"))
    covered = villages[~villages["id"].isin(plan.uncovered_ids)]
    n_past = min(len(covered), max(3, len(villages) // 60))
    for v in covered.iloc[np.sort(rng.choice(len(covered), n_past, replace=False))].itertuples():
        day = until - dt.timedelta(days=int(rng.integers(30, 700)))
        status = "reviewed" if (until - day).days > 180 else "launched"
        rows.append((v.id, f"Ngày hội toàn dân bảo vệ ANTQ – {v.name}",
                     "Ngày hội toàn dân bảo vệ ANTQ", day, status))
    frame = pd.DataFrame(rows, columns=["village_id", "name", "theme", "launch_date", "status"])
    lookup = villages.set_index("id")
    frame["commune_id"] = lookup.loc[frame["village_id"], "commune_id"].to_numpy()
    lon, lat = points_in_villages(conn, frame["village_id"].to_numpy(), seed * 3 + 4)
    frame["geom"] = _ewkt(lon, lat)
    frame["created_by"] = "demo_planner"
    frame["is_demo"] = True
    return copy_frame(conn, "launch_point", frame)
