"""The demo's yearly cycle: province and commune plans with their targets, events (festivals on
19 August, forums "Công an xã lắng nghe ý kiến của nhân dân", launch ceremonies, reviews), and
the institutions' launch and movement class, so the "Chỉ tiêu & Báo cáo" panel has real figures.

Seeded; every row is marked ``is_demo`` (institution_year rows go with their demo institution).
Events agree with the yearly facts already generated (a village festival event only where
``unit_year.festival_held``); nothing is dated after ``until``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from data.demo.plan import Plan
from data.demo.sql import copy_frame, execute, read_frame

CLASSES = ("xuat_sac", "kha", "trung_binh", "yeu")
# Seed 001's targets, as the province's plan sets them every year.
PROVINCE_TARGETS = {"institutions_safe": 80, "launched": 80, "class_kha_or_better": 80, "models_kept": 100,
                    "new_models": 1, "festival": 100, "forums": 2}
FESTIVAL_DAY = (8, 19)


def _plans(conn: Connection, rng: np.random.Generator, provinces: list[str], communes: pd.DataFrame,
           years: list[int], until: dt.date) -> int:
    rows, targets = [], []
    for y in years:
        for province in provinces:
            rows.append({"unit_level": "province", "unit_code": province, "year": y,
                         "title": "Kế hoạch công tác trọng tâm xây dựng phong trào toàn dân bảo vệ ANTQ "
                                  f"năm {y}",
                         "doc_number": f"{int(rng.integers(10, 90))}/KH-BCĐ138",
                         "issued_on": dt.date(y, 1, 20),
                         "signer": "Trưởng Ban Chỉ đạo 138 tỉnh (demo)", "created_by": "demo_planner"})
            targets += [(("province", province, y), code, value) for code, value in PROVINCE_TARGETS.items()]
    # A quarter of the communes raise some targets for the current year (seed 001 is such a plan).
    raising = communes.iloc[np.sort(rng.choice(len(communes), max(1, len(communes) // 4), replace=False))]
    for c in raising.itertuples():
        y = until.year
        rows.append({"unit_level": "commune", "unit_code": c.code, "year": y,
                     "title": f"Kế hoạch công tác trọng tâm xây dựng phong trào toàn dân bảo vệ ANTQ "
                              f"năm {y} – {c.name}",
                     "doc_number": f"{int(rng.integers(1, 40)):02d}/KH-BCĐ", "issued_on": dt.date(y, 3, 7),
                     "signer": "Trưởng Ban Chỉ đạo 138 xã (demo)", "created_by": "demo_planner"})
        targets.append((("commune", c.code, y), "new_models", int(rng.integers(1, 3))))
        targets.append((("commune", c.code, y), "forums", int(rng.integers(2, 4))))
        if rng.random() < 0.5:
            targets.append((("commune", c.code, y), "institutions_safe", 90))
    plans = pd.DataFrame(rows).assign(is_demo=True)
    copy_frame(conn, "plan", plans)
    ids = read_frame(conn, "SELECT id, unit_level, unit_code, year FROM plan WHERE is_demo")
    key = {(r.unit_level, r.unit_code, int(r.year)): int(r.id) for r in ids.itertuples()}
    pt = pd.DataFrame([{"plan_id": key[k], "target_code": code, "threshold": v} for k, code, v in targets])
    copy_frame(conn, "plan_target", pt.drop_duplicates(["plan_id", "target_code"], keep="last"))
    return len(plans)


def _institution_facts(conn: Connection, rng: np.random.Generator) -> None:
    """Launch and movement class for the demo institutions' yearly rows (seed 001 counts them)."""
    rows = read_frame(conn, """SELECT y.institution_id, y.year FROM institution_year y
        JOIN institution s ON s.id = y.institution_id WHERE s.is_demo ORDER BY s.external_id, y.year""")
    if rows.empty:
        return
    n = len(rows)
    rows["launched"] = rng.random(n) < 0.82
    rows["movement_class"] = np.array(CLASSES)[rng.choice(4, n, p=[0.2, 0.55, 0.2, 0.05])]
    execute(conn, "CREATE TEMP TABLE demo_iy (institution_id int, year int, launched bool, "
                  "movement_class text) ON COMMIT DROP")
    copy_frame(conn, "demo_iy", rows)
    execute(conn, """UPDATE institution_year y SET launched = d.launched, movement_class = d.movement_class
        FROM demo_iy d WHERE d.institution_id = y.institution_id AND d.year = y.year""")


def _events(conn: Connection, rng: np.random.Generator, communes: pd.DataFrame, years: list[int],
            until: dt.date) -> int:
    villages = read_frame(conn, """SELECT v.id, v.code, v.name, v.parent_id AS commune_id, uy.year,
            uy.festival_held, uy.launched
        FROM admin_unit v JOIN unit_year uy ON uy.unit_id = v.id
        WHERE v.level = 'village' AND v.is_demo ORDER BY v.code, uy.year""")
    insts = read_frame(conn, """SELECT s.id, s.name, s.commune_id, s.village_id, y.year, y.festival_held
        FROM institution s JOIN institution_year y ON y.institution_id = s.id
        WHERE s.is_demo ORDER BY s.external_id, y.year""")
    rows = []

    def add(kind: str, title: str, day: dt.date, commune_id: int, village_id=None, institution_id=None,
            place: str | None = None, notes: str | None = None, attachments: list[str] | None = None):
        if day > until:
            return
        rows.append({"external_id": f"demo-event-{len(rows) + 1:06d}", "kind": kind, "title": title,
                     "held_on": day, "commune_id": commune_id, "village_id": village_id,
                     "institution_id": institution_id, "place": place,
                     "participants": int(rng.integers(30, 400)), "notes": notes,
                     "attachments": "{" + ",".join(f'"{a}"' for a in (attachments or [])) + "}"})

    for y in years:
        fest = dt.date(y, *FESTIVAL_DAY)
        for c in communes.itertuples():
            # launch ceremony at the start of the year, at the commune
            add("launch", f"Lễ phát động phong trào toàn dân bảo vệ ANTQ năm {y} – {c.name}",
                dt.date(y, 2, int(rng.integers(10, 28))), c.id, place=f"Hội trường UBND {c.full_name}",
                attachments=[f"ke-hoach-phat-dong-{y}.pdf"])
            # forums "Công an xã lắng nghe ý kiến của nhân dân": 0..3 a year
            for k in range(min(3, int(rng.poisson(1.7)))):
                day = dt.date(y, 1, 1) + dt.timedelta(days=int(rng.integers(30, 300)))
                add("forum", f"Diễn đàn \"Công an xã lắng nghe ý kiến của nhân dân\" lần {k + 1} năm {y}",
                    day, c.id, place=f"Nhà văn hóa {c.name}",
                    notes="Ý kiến của nhân dân được ghi nhận và trả lời tại diễn đàn (dữ liệu mẫu).",
                    attachments=[f"bien-ban-dien-dan-{y}-{k + 1}.docx"])
            # the year's review (sơ kết 6 tháng / tổng kết năm)
            add("review", f"Sơ kết 6 tháng phong trào toàn dân bảo vệ ANTQ năm {y}", dt.date(y, 5, 5), c.id,
                place=f"UBND {c.full_name}")
            add("review", f"Tổng kết phong trào toàn dân bảo vệ ANTQ năm {y}", dt.date(y, 11, 3), c.id,
                place=f"UBND {c.full_name}", attachments=[f"bao-cao-tong-ket-{y}.docx"])
        # festivals where the yearly facts say one was held (about half are also recorded as events)
        held = villages[(villages["year"] == y) & villages["festival_held"].fillna(False).astype(bool)]
        for v in held.itertuples():
            if rng.random() < 0.5:
                add("festival", f"Ngày hội toàn dân bảo vệ ANTQ năm {y} – {v.name}", fest, v.commune_id,
                    village_id=v.id, place=f"Nhà văn hóa {v.name}",
                    attachments=[f"anh-ngay-hoi-{v.code}-{y}.jpg"])
        held_i = insts[(insts["year"] == y) & insts["festival_held"].fillna(False).astype(bool)]
        for s in held_i.itertuples():
            if rng.random() < 0.3:
                add("festival", f"Ngày hội toàn dân bảo vệ ANTQ năm {y} – {s.name}", fest, s.commune_id,
                    village_id=s.village_id, institution_id=s.id, place=s.name)
    frame = pd.DataFrame(rows).assign(is_demo=True, created_by="demo_committee")
    for col in ("village_id", "institution_id"):
        frame[col] = frame[col].astype("Int64")
    return copy_frame(conn, "movement_event", frame)


def _reviews(conn: Connection, communes: pd.DataFrame, until: dt.date) -> int:
    """This year's review of every demo commune's models, opened on ``until`` with the proposals
    of geo.review and no decision yet: the committee confirms them in the panel (the demo's
    model statuses, and so its coverage story, stay as generated)."""
    import json

    from geo.review import propose

    items = []
    for c in communes.itertuples():
        proposals = propose(conn, c.code, until)
        rid = read_frame(conn, """INSERT INTO model_review (commune_id, commune_code, year, kind,
                reviewed_on, created_by, is_demo)
            VALUES (%(cid)s, %(code)s, %(y)s, 'tong_ket', %(on)s, 'demo_committee', true) RETURNING id""",
                         {"cid": c.id, "code": c.code, "y": until.year, "on": until})["id"].iloc[0]
        for p in proposals.to_dict("records"):
            items.append({"review_id": int(rid), "model_id": int(p["model_id"]), "proposal": p["proposal"],
                          "reason_vi": p["reason_vi"], "reason_en": p["reason_en"],
                          "ratings": json.dumps(p["ratings"], ensure_ascii=False)})
    return copy_frame(conn, "model_review_item", pd.DataFrame(items))


def create_year_plans(conn: Connection, communes: pd.DataFrame, plan: Plan, provinces: list[str], seed: int,
                      until: dt.date, years: list[int]) -> dict[str, int]:
    """Plans (each province's, and raised ones for a quarter of the communes), institution facts
    and events for the demo; returns counts for the manifest."""
    rng = np.random.default_rng([seed, 11])
    years = [y for y in years if dt.date(y, 1, 1) <= until]
    # A festival not yet held this year is not recorded as held (the generator fills every year).
    if until < dt.date(until.year, *FESTIVAL_DAY):
        execute(conn, "UPDATE unit_year SET festival_held = NULL WHERE is_demo AND year = %(y)s",
                {"y": until.year})
        execute(conn, "UPDATE institution_year y SET festival_held = NULL FROM institution s "
                      "WHERE s.id = y.institution_id AND s.is_demo AND y.year = %(y)s", {"y": until.year})
    communes = communes.sort_values("code").reset_index(drop=True)
    plans = _plans(conn, rng, provinces, communes, years, until)
    _institution_facts(conn, rng)
    events = _events(conn, rng, communes, years, until)
    reviews = _reviews(conn, communes, until)
    return {"plans": plans, "events": events, "review_items": reviews}
