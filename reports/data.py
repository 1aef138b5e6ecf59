"""The content of a 6-month or yearly report: every table and sentence computed from the registry.

``build_report(bind, level, code, kind, year, start=None, end=None, sees_points=False,
incident_annex=False, maps=True)`` -> Report. The DOCX, XLSX and HTML writers only lay it out.

Reporting periods (seed 001, III.1: "06 tháng trước ngày 07/5, 01 năm trước 05/11"): both start
on 1 November of the year before; the 6-month report covers to 30 April (sent before 7 May),
the yearly report to 31 October (sent before 5 November). Any start/end may be given instead.
Units, models and institutions are those valid on the period's last day; incidents, models,
institutions and launch points are placed in those units by location (``geo.placement``), events
through ``unit_lineage`` (an event held in a commune merged later counts in its successor), and
incidents are compared with the same period a year earlier. Targets are the plan year's (the year
of the last day), as of that day (``geo.kpi``).

Roles: a report for anyone but police and admin holds aggregates only — incident counts of 1 or 2
are hidden (like every aggregate of the API) and there is no incident annex; police and admin
may ask for the annex (the period's incidents, one per line).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from antt.settings import get_settings
from geo import kpi
from geo._db import Bind, connect, frame
from geo.coverage import commune_coverage
from geo.incident_counts import category_counts, unit_counts
from geo.placement import event_commune_sql, incident_unit_sql, point_unit_sql

KINDS = {"h1": ("6 tháng đầu năm", "first six months"), "year": ("năm", "year")}
DEADLINES = {"h1": (5, 7), "year": (11, 5)}  # (month, day) the report is due before
PERIOD_END = {"h1": (4, 30), "year": (10, 31)}
CLASS_VI = {"xuat_sac": "Xuất sắc", "kha": "Khá", "trung_binh": "Trung bình", "yeu": "Yếu"}
RATING_VI = {"tot": "Tốt", "kha": "Khá", "trung_binh": "Trung bình", "yeu": "Yếu", None: "Chưa xếp loại"}
STATUS_VI = {"met": "Đạt", "on_track": "Đúng tiến độ", "at_risk": "Có nguy cơ không đạt",
             "missed": "Không đạt", "no_data": "Chưa có số liệu"}
INST_VI = {"agency": "Cơ quan", "enterprise": "Doanh nghiệp", "school": "Nhà trường"}
EVENT_VI = {"festival": "Ngày hội toàn dân bảo vệ ANTQ", "forum": "Diễn đàn \"Công an xã lắng nghe ý kiến "
            "của nhân dân\"", "launch": "Lễ phát động phong trào", "review": "Hội nghị sơ kết, tổng kết",
            "other": "Hoạt động khác"}
LAUNCH_VI = {"planned": "Dự kiến", "launched": "Đã phát động", "reviewed": "Đã sơ kết", "cancelled": "Đã hủy"}
Progress = Callable[[float, str], None]  # (fraction done, "tiếng Việt / English")
MAP_WEIGHT = 4.0  # a map costs about four table sections (bench_targets, province roll-up)
HIDDEN = "< 3"  # what a suppressed count shows in a report
WRITER_NOTE = ("[Phần này do cán bộ soạn thảo hoàn thiện — hệ thống không tự viết nội dung đánh giá. "
               "/ To be written by the drafting officer — not generated.]")


def default_period(kind: str, year: int) -> tuple[dt.date, dt.date]:
    """The reporting period of a 6-month ('h1') or yearly ('year') report of YEAR."""
    if kind not in KINDS:
        raise ValueError("kind must be 'h1' or 'year'")
    return dt.date(year - 1, 11, 1), dt.date(year, *PERIOD_END[kind])


def deadline(kind: str, year: int) -> dt.date:
    return dt.date(year, *DEADLINES[kind])


@dataclass
class Table:
    key: str
    title: str
    columns: list[tuple[str, str]]  # (key, header)
    rows: list[dict[str, Any]]
    note: str | None = None
    number_formats: dict[str, str] = field(default_factory=dict)  # key -> 'int', 'pct', 'float', 'date'


@dataclass
class Report:
    level: str
    code: str
    name: str
    full_name: str
    province_code: str
    province_name: str
    kind: str
    year: int
    start: dt.date
    end: dt.date
    deadline: dt.date
    sees_points: bool
    suppress_below: int
    paragraphs: dict[str, list[str]]
    tables: dict[str, Table]
    maps: list[tuple[str, bytes]] = field(default_factory=list)
    annex: Table | None = None
    generated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    # unit outlines read for one map and reused by the next (reports.maps); not content
    outlines: dict[tuple[str, tuple[int, ...]], Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def title(self) -> str:
        period = KINDS[self.kind][0]
        return (f"Kết quả thực hiện công tác xây dựng phong trào toàn dân bảo vệ an ninh Tổ quốc "
                f"{period} {self.year}" if self.kind == "h1" else
                f"Kết quả thực hiện công tác xây dựng phong trào toàn dân bảo vệ an ninh Tổ quốc "
                f"năm {self.year}")

    @property
    def issuer(self) -> tuple[str, str]:
        """(the body above, the issuing body) for the document's top-left block (ND 30/2020)."""
        if self.level == "commune":
            return (f"ỦY BAN NHÂN DÂN {self.full_name.upper()}", "BAN CHỈ ĐẠO 138")
        return (f"ỦY BAN NHÂN DÂN {self.province_name.upper()}", "BAN CHỈ ĐẠO 138")

    @property
    def symbol(self) -> str:
        return "/BC-BCĐ138"

    @property
    def place(self) -> str:
        return self.name if self.level == "commune" else self.province_name

    @property
    def recipients(self) -> list[str]:
        if self.level == "commune":
            return ["Ban Chỉ đạo 138 tỉnh (qua Công an tỉnh)", "Thường trực Đảng ủy xã", "TT HĐND, UBND xã",
                    "Các thành viên BCĐ 138 xã", "Lưu: BCĐ (CAX)"]
        return ["Bộ Công an (qua V05)", "Thường trực Tỉnh ủy", "UBND tỉnh", "UBND các xã, phường",
                "Lưu: VT, BCĐ 138"]

    @property
    def signer(self) -> tuple[str, str]:
        return ("TM. BAN CHỈ ĐẠO 138", "TRƯỞNG BAN")


def _hide(n: Any, limit: int) -> Any:
    """A count as a report shows it to a role without points: 1..limit-1 hidden."""
    if n is None or pd.isna(n):
        return None
    n = int(n)
    return HIDDEN if 0 < n < limit else n


def _pct(change_pct: Any) -> Any:
    return None if change_pct is None or pd.isna(change_pct) else round(float(change_pct), 1)


def _area_params(level: str, code: str) -> tuple[str | None, str | None]:
    return (code, None) if level == "province" else (None, code)


def _incidents(conn, r: Report, limit: int) -> None:
    prov, com = _area_params(r.level, r.code)
    cats = category_counts(conn, r.start, r.end, r.end, prov, com)
    rows = []
    order = cats.assign(_root=cats["category_code"].map(lambda c: "~" if c == "*" else c))
    for c in order.sort_values("_root").to_dict("records"):
        hidden = not r.sees_points and (0 < c["count"] < limit or 0 < c["count_last_year"] < limit)
        show = (lambda n: n) if r.sees_points else (lambda n: _hide(n, limit))  # noqa: E731
        prefix = {0: "", 1: "", 2: "- ", 3: "+ "}.get(c["depth"], "+ ")
        rows.append({"category": prefix + c["name_vi"],
                     "code": c["category_code"],
                     "count": show(c["count"]), "count_last_year": show(c["count_last_year"]),
                     "change": None if hidden else int(c["change"]),
                     "change_pct": None if hidden else _pct(c["change_pct"]),
                     "youth": show(c["youth"])})
    note = None if r.sees_points else (f"Số liệu dưới {limit} vụ được ẩn (\"{HIDDEN}\") theo quy định bảo vệ "
                                       "thông tin; tỷ lệ tăng/giảm chỉ tính khi cả hai kỳ đều được hiển thị.")
    r.tables["incidents"] = Table(
        "incidents", "Bảng 1. Tình hình vụ việc theo loại, so với cùng kỳ năm trước",
        [("category", "Loại vụ việc"), ("count", "Kỳ này"), ("count_last_year", "Cùng kỳ năm trước"),
         ("change", "Tăng (+)/giảm (−)"), ("change_pct", "Tỷ lệ (%)"), ("youth", "Có thanh thiếu niên")],
        rows, note, {"change_pct": "float"})
    total = cats[cats["category_code"] == "*"].iloc[0]
    level = "village" if r.level == "commune" else "commune"
    units = unit_counts(conn, r.start, r.end, r.end, level, prov, com)
    urows = []
    for u in units.to_dict("records"):
        hidden = not r.sees_points and (0 < u["count"] < limit or 0 < u["count_last_year"] < limit)
        show = (lambda n: n) if r.sees_points else (lambda n: _hide(n, limit))  # noqa: E731
        urows.append({"code": u["code"], "name": u["name"], "count": show(u["count"]),
                      "count_last_year": show(u["count_last_year"]),
                      "change": None if hidden else int(u["change"]),
                      "change_pct": None if hidden else _pct(u["change_pct"])})
    r.tables["incidents_by_unit"] = Table(
        "incidents_by_unit",
        "Bảng 2. Vụ việc theo " + ("thôn, tổ dân phố" if level == "village" else "xã, phường"),
        [("code", "Mã"), ("name", "Tên"), ("count", "Kỳ này"), ("count_last_year", "Cùng kỳ năm trước"),
         ("change", "Tăng/giảm"), ("change_pct", "Tỷ lệ (%)")], urows, note, {"change_pct": "float"})
    # the narrative: what a reader needs first, in the report's words
    n, last = int(total["count"]), int(total["count_last_year"])
    if r.sees_points or (n == 0 or n >= limit) and (last == 0 or last >= limit):
        trend = ("không thay đổi" if n == last else
                 f"{'tăng' if n > last else 'giảm'} {abs(n - last)} vụ"
                 + (f" ({abs(n - last) * 100.0 / last:.1f}%)".replace(".", ",") if last else ""))
        sentence = (f"Trong kỳ báo cáo (từ {r.start:%d/%m/%Y} đến {r.end:%d/%m/%Y}), trên địa bàn "
                    f"xảy ra {n} vụ việc về an ninh, trật tự, {trend} so với cùng kỳ năm trước ({last} vụ).")
    else:
        sentence = (f"Trong kỳ báo cáo (từ {r.start:%d/%m/%Y} đến {r.end:%d/%m/%Y}), số vụ việc trên địa bàn "
                    f"dưới {limit} vụ (số liệu cụ thể không hiển thị với tài khoản này).")
    crime = cats[cats["category_code"] == "crime"].iloc[0]
    extra = []
    if r.sees_points or not 0 < int(crime["count"]) < limit:
        extra.append(f"tội phạm {int(crime['count'])} vụ")
    if r.sees_points or not 0 < int(total["youth"]) < limit:
        extra.append(f"có thanh thiếu niên tham gia {int(total['youth'])} vụ")
    r.paragraphs["incidents"] = [sentence + (f" Trong đó: {'; '.join(extra)}." if extra else ""),
                                 "Chi tiết theo loại và theo địa bàn tại Bảng 1, Bảng 2; bản đồ mật độ "
                                 "vụ việc và điểm nóng trong kỳ tại Hình 1."]


def _models(conn, r: Report, scope: str, params: dict) -> None:
    df = frame(conn, f"""
        WITH m AS (
            SELECT m.*, {point_unit_sql('m', 'commune', ':end')} AS cid FROM security_model m
            WHERE m.geom && (SELECT ST_Extent(geom) FROM admin_unit u WHERE {scope}) AND m.founded_on <= :end
        ), mm AS (SELECT * FROM m WHERE cid IN (SELECT u.id FROM admin_unit u WHERE {scope})),
        act AS (
            SELECT mm.*, (mm.founded_on < :start AND NOT (mm.status IN ('suspended', 'dissolved')
                          AND coalesce(mm.status_since, mm.founded_on) < :start)) AS at_start,
                   NOT (mm.status IN ('suspended', 'dissolved') AND coalesce(mm.status_since,
                       mm.founded_on) <= :end)
                       AS at_end,
                   (SELECT rating FROM model_rating r WHERE r.model_id = mm.id AND r.rated_on <= :end
                    ORDER BY r.rated_on DESC, r.id DESC LIMIT 1) AS rating
            FROM mm)
        SELECT count(*) FILTER (WHERE at_start) AS at_start,
               count(*) FILTER (WHERE founded_on BETWEEN :start AND :end) AS new,
               count(*) FILTER (WHERE at_start AND at_end) AS kept,
               count(*) FILTER (WHERE status = 'dissolved' AND status_since BETWEEN :start AND
                   :end) AS dissolved,
               count(*) FILTER (WHERE status = 'suspended' AND status_since BETWEEN :start AND
                   :end) AS suspended,
               (SELECT count(*) FROM model_status_event e WHERE e.model_id IN (SELECT id FROM mm)
                  AND e.decision = 'replicate' AND e.on_date BETWEEN :start AND :end) AS replicated,
               (SELECT count(*) FROM launch_point l WHERE l.source_model_id IN (SELECT id FROM mm)
                  AND l.status <> 'cancelled' AND l.launch_date >= :start) AS replicas_planned,
               (SELECT count(*) FROM mm WHERE recognition <> 'none') AS recognised,
               count(*) FILTER (WHERE at_end) AS at_end,
               count(*) FILTER (WHERE at_end AND rating = 'tot') AS tot,
               count(*) FILTER (WHERE at_end AND rating = 'kha') AS kha,
               count(*) FILTER (WHERE at_end AND rating = 'trung_binh') AS trung_binh,
               count(*) FILTER (WHERE at_end AND rating = 'yeu') AS yeu,
               count(*) FILTER (WHERE at_end AND rating IS NULL) AS unrated
        FROM act""", params).iloc[0]
    s = {k: int(v) for k, v in df.items()}
    r.tables["models"] = Table("models", "Bảng 3. Mô hình tự quản, tự phòng ngừa, tự bảo vệ ANTT", [
        ("item", "Chỉ số"), ("value", "Số lượng")], [
        {"item": "Mô hình hoạt động đầu kỳ", "value": s["at_start"]},
        {"item": "Mô hình xây dựng mới trong kỳ", "value": s["new"]},
        {"item": "Mô hình duy trì (hoạt động đầu và cuối kỳ)", "value": s["kept"]},
        {"item": "Mô hình được quyết định nhân rộng trong kỳ", "value": s["replicated"]},
        {"item": "Điểm dự kiến nhân rộng mô hình", "value": s["replicas_planned"]},
        {"item": "Mô hình giải thể trong kỳ", "value": s["dissolved"]},
        {"item": "Mô hình tạm ngừng hoạt động trong kỳ", "value": s["suspended"]},
        {"item": "Mô hình được ghi nhận (Bộ Công an, BCĐ 138 tỉnh)", "value": s["recognised"]},
        {"item": "Mô hình hoạt động cuối kỳ", "value": s["at_end"]}])
    shares = [{"rating": RATING_VI[k if k != "unrated" else None], "value": s[k],
               "share": round(100.0 * s[k] / s["at_end"], 1) if s["at_end"] else None}
              for k in ("tot", "kha", "trung_binh", "yeu", "unrated")]
    r.tables["model_ratings"] = Table(
        "model_ratings", "Bảng 4. Xếp loại mô hình đang hoạt động (cuối kỳ)",
        [("rating", "Xếp loại"), ("value", "Số mô hình"), ("share", "Tỷ lệ (%)")], shares,
        number_formats={"share": "float"})
    by_type = frame(conn, f"""
        SELECT t.name_vi AS type, count(*) AS value FROM security_model m JOIN model_type t ON
            t.code = m.type_code
        WHERE {point_unit_sql('m', 'commune', ':end')} IN (SELECT u.id FROM admin_unit u WHERE {scope})
          AND m.geom && (SELECT ST_Extent(geom) FROM admin_unit u WHERE {scope})
          AND m.founded_on <= :end
          AND NOT (m.status IN ('suspended', 'dissolved') AND coalesce(m.status_since, m.founded_on) <= :end)
        GROUP BY 1 ORDER BY 2 DESC, 1""", params)
    r.tables["model_types"] = Table("model_types", "Bảng 5. Mô hình đang hoạt động theo loại",
                                    [("type", "Loại mô hình"), ("value", "Số mô hình")],
                                    by_type.to_dict("records"))
    r.paragraphs["models"] = [
        f"Cuối kỳ có {s['at_end']} mô hình đang hoạt động (đầu kỳ {s['at_start']}); xây dựng mới {s['new']} "
        f"mô hình, duy trì {s['kept']} mô hình, nhân rộng {s['replicated']} mô hình, "
        f"giải thể {s['dissolved']} mô hình. Xếp loại: Tốt {s['tot']}, Khá {s['kha']}, "
        f"Trung bình {s['trung_binh']}, Yếu {s['yeu']}, chưa xếp loại {s['unrated']}."]


def _coverage(conn, r: Report) -> pd.DataFrame:
    prov, com = _area_params(r.level, r.code)
    return commune_coverage(conn, r.end, radius_m=None, province_code=prov, commune_code=com)


def _fire_and_institutions(conn, r: Report, cov: pd.DataFrame, scope: str, params: dict) -> None:
    groups, households = int(cov["fire_groups"].sum()), int(cov["fire_households"].sum())
    known = cov["households"].dropna() if "households" in cov else pd.Series(dtype=float)
    share = (100.0 * households / known.sum()) if len(known) and known.sum() else None
    r.tables["fire_groups"] = Table("fire_groups", "Bảng 6. Tổ liên gia an toàn phòng cháy, chữa cháy",
                                    [("item", "Chỉ số"), ("value", "Số lượng")], [
                                        {"item": "Số tổ liên gia", "value": groups},
                                        {"item": "Số hộ tham gia", "value": households},
                                        {"item": "Tỷ lệ hộ tham gia (%)",
                                         "value": None if share is None else round(share, 1)}])
    inst = frame(conn, f"""
        SELECT s.kind, count(*) AS total, count(*) FILTER (WHERE y.antt_safe) AS safe,
               count(*) FILTER (WHERE y.festival_held) AS festival
        FROM institution s LEFT JOIN institution_year y ON y.institution_id = s.id AND y.year = :year
        WHERE s.geom && (SELECT ST_Extent(geom) FROM admin_unit u WHERE {scope})
          AND {point_unit_sql('s', 'commune', ':end')} IN (SELECT u.id FROM admin_unit u WHERE {scope})
        GROUP BY 1 ORDER BY 1""", params)
    rows = [{"kind": INST_VI.get(k["kind"], k["kind"]), "total": int(k["total"]), "safe": int(k["safe"]),
             "share": round(100.0 * k["safe"] / k["total"], 1) if k["total"] else None}
            for k in inst.to_dict("records")]
    tot, safe = sum(x["total"] for x in rows), sum(x["safe"] for x in rows)
    rows.append({"kind": "Tổng số", "total": tot, "safe": safe,
                 "share": round(100.0 * safe / tot, 1) if tot else None})
    r.tables["institutions"] = Table(
        "institutions",
        f"Bảng 7. Cơ quan, doanh nghiệp, nhà trường đạt tiêu chuẩn \"An toàn về ANTT\" năm {r.year}",
        [("kind", "Loại"), ("total", "Tổng số"), ("safe", "Đạt chuẩn"), ("share", "Tỷ lệ (%)")], rows,
        number_formats={"share": "float"})
    r.paragraphs["fire_institutions"] = [
        f"Toàn địa bàn có {groups} tổ liên gia an toàn PCCC với {households} hộ tham gia"
        + (f" ({share:.1f}% số hộ)." if share is not None else ".")
        + f" Có {safe}/{tot} cơ quan, doanh nghiệp, nhà trường đạt tiêu chuẩn \"An toàn về ANTT\" "
          f"năm {r.year}."]


def _classification(conn, r: Report, scope: str, params: dict) -> None:
    rows = frame(conn, f"""
        SELECT 'Thôn, tổ dân phố' AS unit, uy.movement_class AS cls, count(*) AS n
        FROM admin_unit v LEFT JOIN unit_year uy ON uy.unit_id = v.id AND uy.year = :year
        WHERE v.level = 'village' AND v.valid_from <= :end AND (v.valid_to IS NULL OR :end < v.valid_to)
          AND v.parent_id IN (SELECT u.id FROM admin_unit u WHERE {scope})
        GROUP BY 1, 2
        UNION ALL
        SELECT 'Cơ quan, doanh nghiệp, nhà trường', y.movement_class, count(*)
        FROM institution s LEFT JOIN institution_year y ON y.institution_id = s.id AND y.year = :year
        WHERE s.geom && (SELECT ST_Extent(geom) FROM admin_unit u WHERE {scope})
          AND {point_unit_sql('s', 'commune', ':end')} IN (SELECT u.id FROM admin_unit u WHERE {scope})
        GROUP BY 1, 2
        UNION ALL
        SELECT 'Xã, phường', uy.movement_class, count(*)
        FROM admin_unit u LEFT JOIN unit_year uy ON uy.unit_id = u.id AND uy.year = :year
        WHERE {scope} GROUP BY 1, 2""", params)
    out = []
    for unit, g in rows.groupby("unit", sort=False):
        counts = {c: int(g.loc[g["cls"] == c, "n"].sum()) for c in CLASS_VI}
        counts["none"] = int(g.loc[g["cls"].isna(), "n"].sum())
        total = sum(counts.values())
        good = counts["xuat_sac"] + counts["kha"]
        out.append({"unit": unit, **{CLASS_VI[c]: counts[c] for c in CLASS_VI},
                    "Chưa phân loại": counts["none"], "total": total,
                    "good_share": round(100.0 * good / total, 1) if total else None})
    r.tables["classification"] = Table(
        "classification", f"Bảng 8. Phân loại phong trào năm {r.year} (Quyết định 510/QĐ-BCA-V05)",
        [("unit", "Đơn vị"), *[(v, v) for v in CLASS_VI.values()], ("Chưa phân loại", "Chưa phân loại"),
         ("total", "Tổng số"), ("good_share", "Khá trở lên (%)")], out,
        number_formats={"good_share": "float"})


def _events_and_launches(conn, r: Report, scope: str, params: dict) -> None:
    ev = frame(conn, f"""
        SELECT e.kind, count(*) AS n, coalesce(sum(e.participants), 0) AS participants
        FROM movement_event e WHERE e.held_on BETWEEN :start AND :end
          AND {event_commune_sql('e', ':end')} IN (SELECT u.id FROM admin_unit u WHERE {scope})
        GROUP BY 1""", params)
    by = {k["kind"]: k for k in ev.to_dict("records")}
    event_rows = [{"kind": EVENT_VI[k], "n": int(by[k]["n"]) if k in by else 0,
                   "participants": int(by[k]["participants"]) if k in by else 0} for k in EVENT_VI]
    r.tables["events"] = Table("events", "Bảng 9. Ngày hội, diễn đàn, phát động, sơ kết/tổng kết trong kỳ",
                               [("kind", "Hoạt động"), ("n", "Số lượt"),
                                ("participants", "Số người tham dự")], event_rows)
    lp = frame(conn, f"""
        SELECT l.name, v.name AS village, l.theme, l.launch_date, l.status
        FROM launch_point l LEFT JOIN admin_unit v ON v.id = l.village_id
        WHERE l.launch_date BETWEEN :start AND (:end + 366)
          AND (l.launch_date <= :end OR l.status = 'planned')
          AND {point_unit_sql('l', 'commune', ':end')} IN (SELECT u.id FROM admin_unit u WHERE {scope})
        ORDER BY l.launch_date, l.name""", params)
    r.tables["launch_points"] = Table(
        "launch_points", "Bảng 10. Điểm phát động phong trào (trong kỳ và dự kiến)",
        [("name", "Điểm phát động"), ("village", "Thôn"), ("theme", "Chủ đề"), ("launch_date", "Ngày"),
         ("status", "Trạng thái")],
        [{**x, "status": LAUNCH_VI.get(x["status"], x["status"])} for x in lp.to_dict("records")],
        number_formats={"launch_date": "date"})
    n_of = {k: int(by[k]["n"]) if k in by else 0 for k in EVENT_VI}
    r.paragraphs["events"] = [
        f"Trong kỳ tổ chức {n_of['festival']} lượt Ngày hội toàn dân bảo vệ ANTQ, {n_of['forum']} lượt "
        f"diễn đàn \"Công an xã lắng nghe ý kiến của nhân dân\", {n_of['launch']} lễ phát động phong trào; "
        f"{int((lp['launch_date'] <= r.end).sum()) if len(lp) else 0} điểm phát động trong kỳ, "
        f"{int((lp['status'] == 'planned').sum()) if len(lp) else 0} điểm dự kiến."]


def _kpis(conn, r: Report) -> pd.DataFrame:
    prov, com = _area_params(r.level, r.code)
    df = kpi.kpis(conn, r.end, province_code=prov, commune_code=com, year=r.year)
    defs = {d.code: d for d in kpi.target_defs(conn)}
    if r.level == "commune":
        rows = [{"target": defs[x["target"]].name_vi,
                 "threshold": _fmt_target(defs[x["target"]], x["threshold"]),
                 "actual": _fmt_actual(defs[x["target"]], x["actual"], x["numerator"], x["denominator"]),
                 "status": STATUS_VI[x["status"]]} for x in df.to_dict("records")]
        cols = [("target", "Chỉ tiêu"), ("threshold", "Kế hoạch"), ("actual", "Thực hiện"),
                ("status", "Đánh giá")]
    else:
        roll = kpi.province_rollup(df)
        rows = [{"target": defs[x["target"]].name_vi,
                 "actual": _fmt_actual(defs[x["target"]], x["actual"], x["numerator"], x["denominator"]),
                 "met": x["met"], "on_track": x["on_track"], "at_risk": x["at_risk"], "missed": x["missed"],
                 "no_data": x["no_data"]} for x in roll.to_dict("records")]
        cols = [("target", "Chỉ tiêu"), ("actual", "Toàn tỉnh"), ("met", "Số xã đạt"),
                ("on_track", "Đúng tiến độ"), ("at_risk", "Có nguy cơ"), ("missed", "Không đạt"),
                ("no_data", "Chưa có số liệu")]
    r.tables["kpis"] = Table(
        "kpis", f"Bảng 11. Kết quả thực hiện chỉ tiêu năm {r.year} (tính đến {r.end:%d/%m/%Y})", cols, rows,
        "Đánh giá theo tiến độ: chỉ tiêu chưa đạt được so với mức kế hoạch tính theo tỷ lệ thời gian "
        "đã qua của năm (đến hạn của chỉ tiêu).")
    summary = kpi.unit_summary(df)
    met, total = int(summary["met"].sum()), int(summary["targets"].sum())
    r.paragraphs["kpis"] = [f"Tính đến {r.end:%d/%m/%Y}: {met}/{total} chỉ tiêu đạt"
                            + (f" ({len(summary)} xã, phường)" if r.level == "province" else "") + "."]
    return df


def _fmt_target(d: kpi.TargetDef, value: float) -> str:
    word = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}[d.direction]
    unit = "%" if d.measure == "percent" else f" {d.unit_vi}"
    return f"{word} {value:g}{unit}"


def _fmt_actual(d: kpi.TargetDef, actual: Any, num: Any, den: Any) -> str:
    if actual is None or pd.isna(actual):
        return "—"
    if d.measure == "percent":
        return f"{actual:.1f}% ({num}/{den})" if den is not None else f"{actual:.1f}%"
    return f"{actual:g} {d.unit_vi}"


def _ranking(conn, r: Report, kpis: pd.DataFrame, limit: int) -> None:
    summary = kpi.rank(kpi.unit_summary(kpis))
    inc = unit_counts(conn, r.start, r.end, r.end, "commune", r.code, None).set_index("code")
    rows = []
    for s in summary.to_dict("records"):
        i = inc.loc[s["code"]] if s["code"] in inc.index else None
        cnt = None if i is None else (int(i["count"]) if r.sees_points else _hide(i["count"], limit))
        rows.append({"rank": int(s["rank"]), "code": s["code"], "name": s["name"], "met": int(s["met"]),
                     "targets": int(s["targets"]), "missed": int(s["missed"]), "incidents": cnt})
    r.tables["ranking"] = Table("ranking", "Bảng 12. Xếp hạng các xã, phường theo số chỉ tiêu đạt",
                                [("rank", "Hạng"), ("code", "Mã"), ("name", "Xã, phường"),
                                 ("met", "Chỉ tiêu đạt"), ("targets", "Số chỉ tiêu"), ("missed", "Không đạt"),
                                 ("incidents", "Vụ việc trong kỳ")], rows)


def _annex(conn, r: Report) -> None:
    prov, com = _area_params(r.level, r.code)
    area = ("u.province_code = :province_code" if prov else "u.code = :commune_code")
    df = frame(conn, f"""
        WITH area AS (SELECT u.id FROM admin_unit u WHERE u.level = 'commune' AND u.valid_from <= :end
                      AND (u.valid_to IS NULL OR :end < u.valid_to) AND {area}),
        x AS (SELECT i.*, {incident_unit_sql('i', 'commune', ':end')} AS cid,
                     {incident_unit_sql('i', 'village', ':end')} AS vid
              FROM incident i WHERE i.occurred_at >= :t0 AND i.occurred_at < :t1
                AND i.geom && (SELECT ST_Extent(geom) FROM admin_unit WHERE id IN (SELECT id FROM area)))
        SELECT x.id, (x.occurred_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::timestamp(0) AS occurred_at,
               c.name_vi AS category, v.name AS village, x.youth_involved, x.deaths, x.injuries, x.status,
               round(ST_Y(x.geom)::numeric, 5) AS lat, round(ST_X(x.geom)::numeric, 5) AS lon
        FROM x JOIN incident_category c ON c.code = x.category_code LEFT JOIN admin_unit v ON v.id = x.vid
        WHERE x.cid IN (SELECT id FROM area) ORDER BY x.occurred_at, x.id""",
               {"end": r.end, "province_code": prov, "commune_code": com,
                "t0": dt.datetime.combine(r.start, dt.time(0), tzinfo=dt.timezone(dt.timedelta(hours=7))),
                "t1": dt.datetime.combine(r.end + dt.timedelta(days=1), dt.time(0),
                                          tzinfo=dt.timezone(dt.timedelta(hours=7)))})
    r.annex = Table("annex", "Phụ lục. Danh sách vụ việc trong kỳ (chỉ dành cho lực lượng Công an)",
                    [("id", "Số hiệu"), ("occurred_at", "Thời gian"), ("category", "Loại"),
                     ("village", "Thôn"), ("youth_involved", "Thanh thiếu niên"), ("deaths", "Chết"),
                     ("injuries", "Bị thương"),
                     ("status", "Tình trạng"), ("lat", "Vĩ độ"), ("lon", "Kinh độ")],
                    df.to_dict("records"))


def build_report(bind: Bind, level: str, code: str, kind: str, year: int, start: dt.date | None = None,
                 end: dt.date | None = None, sees_points: bool = False, incident_annex: bool = False,
                 maps: bool = True, progress: Progress | None = None) -> Report:
    """Everything a report says, for a commune or a province (roll-up over its communes).

    PROGRESS (fraction 0..1, bilingual message) is called after each section and each map, so a
    job can show how far a province roll-up has got; the content does not depend on it."""
    if level not in ("commune", "province"):
        raise ValueError("level must be 'commune' or 'province'")
    if incident_annex and not sees_points:
        raise PermissionError("the incident annex is for police and admin only")
    d_start, d_end = default_period(kind, year)
    start, end = start or d_start, end or d_end
    if end < start:
        raise ValueError("end before start / ngày kết thúc trước ngày bắt đầu")
    limit = get_settings().suppress_below
    with connect(bind) as conn:
        unit = frame(conn, """SELECT u.id, u.code, u.name, coalesce(u.full_name, u.name) AS full_name,
                coalesce(u.province_code, u.code) AS province_code,
                (SELECT coalesce(p.full_name, p.name) FROM admin_unit p WHERE p.level = 'province'
                   AND p.code = coalesce(u.province_code, u.code) ORDER BY p.valid_from DESC LIMIT
                       1) AS province_name
            FROM admin_unit u WHERE u.level = :level AND u.code = :code
            ORDER BY (u.valid_from <= :end AND (u.valid_to IS NULL OR :end < u.valid_to)) DESC,
                     u.valid_from DESC LIMIT 1""", {"level": level, "code": code, "end": end})
        if unit.empty:
            raise LookupError(code)
        u = unit.iloc[0]
        r = Report(level, code, str(u["name"]), str(u["full_name"]), str(u["province_code"]),
                   str(u["province_name"] or u["province_code"]), kind, end.year, start, end,
                   deadline(kind, end.year), sees_points, limit, {}, {})
        scope = ("u.level = 'commune' AND u.valid_from <= :end AND (u.valid_to IS NULL OR :end < u.valid_to) "
                 "AND " + ("u.province_code = :code" if level == "province" else "u.code = :code"))
        params = {"start": start, "end": end, "year": r.year, "code": code}
        got: dict[str, pd.DataFrame] = {}  # what a later section reuses
        steps: list[tuple[str, str, Callable[[], Any]]] = [
            ("Vụ việc so với cùng kỳ", "incidents against the same period",
             lambda: _incidents(conn, r, limit)),
            ("Mô hình tự quản", "models", lambda: _models(conn, r, scope, params)),
            ("Độ phủ mô hình", "model coverage", lambda: got.update(coverage=_coverage(conn, r))),
            ("Tổ liên gia, cơ quan đạt chuẩn", "fire groups and institutions",
             lambda: _fire_and_institutions(conn, r, got["coverage"], scope, params)),
            ("Phân loại phong trào", "unit classification", lambda: _classification(conn, r, scope, params)),
            ("Sự kiện, điểm phát động", "events and launch points",
             lambda: _events_and_launches(conn, r, scope, params)),
            ("Chỉ tiêu", "targets", lambda: got.update(kpis=_kpis(conn, r))),
        ]
        if level == "province":
            steps.append(("Xếp hạng các xã", "ranking of the communes",
                          lambda: _ranking(conn, r, got["kpis"], limit)))
        if incident_annex:
            steps.append(("Phụ lục vụ việc", "incident annex", lambda: _annex(conn, r)))
        if maps:
            from reports.maps import coverage_map, incident_map

            captions = ("Hình 1. Mật độ vụ việc và điểm nóng trong kỳ (lục giác)",
                        "Hình 2. Thôn, tổ dân phố có mô hình tự quản đạt yêu cầu" if level == "commune"
                        else "Hình 2. Tỷ lệ thôn có mô hình tự quản theo xã")
            steps.append(("Bản đồ 1/2: vụ việc, điểm nóng", "map 1 of 2: incidents and hot spots",
                          lambda: r.maps.append((captions[0], incident_map(conn, r)))))
            steps.append(("Bản đồ 2/2: độ phủ mô hình", "map 2 of 2: model coverage",
                          lambda: r.maps.append((captions[1], coverage_map(conn, r)))))
        # maps take about as long as all the tables together (bench_targets): weigh them so
        weights = [MAP_WEIGHT if vi.startswith("Bản đồ") else 1.0 for vi, _en, _fn in steps]
        done, total = 0.0, sum(weights)
        for (vi, en, run), weight in zip(steps, weights, strict=True):
            if progress is not None:
                progress(done / total, f"{vi} / {en}")
            run()
            done += weight
        if progress is not None:
            progress(1.0, "Đã tính xong số liệu / figures done")
        r.paragraphs["writer"] = [WRITER_NOTE]
    return r
