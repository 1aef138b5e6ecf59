"""What each point importer reads and how it writes: incidents, models, fire groups,
institutions and launch points.

Why declarative: the pipeline (read -> parse -> validate -> stage -> check -> write) is the same
for every kind (``data.importers.core``); a kind only names its fields, resolves its codes
against the catalogues, and says how the staging table becomes rows (one INSERT ... ON CONFLICT
on ``external_id``, so a re-import updates and never duplicates).
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection

from antt.text import fold
from data.importers import vocabulary
from data.importers.fields import VN_TZ, Field, Parsed
from data.importers.report import ImportReport

EXTERNAL_ID = Field("external_id", required=True,
                    aliases=("ma", "ma_so", "id", "ma_vu_viec", "ma_mo_hinh", "ma_to", "code"))

INCIDENT_STATUS = {
    "reported": "reported", "moi": "reported", "tiep nhan": "reported", "moi tiep nhan": "reported",
    "investigating": "investigating", "dang dieu tra": "investigating",
    "dieu tra": "investigating", "dang xac minh": "investigating",
    "solved": "solved", "da pha an": "solved", "pha an": "solved", "da giai quyet": "solved",
    "closed": "closed", "dong": "closed", "da dong": "closed", "ket thuc": "closed",
}
PRECISION = {
    "exact": "exact", "chinh xac": "exact", "street": "street", "duong": "street",
    "pho": "street", "village": "village", "thon": "village", "to dan pho": "village",
    "commune": "commune", "xa": "commune", "phuong": "commune",
}
MODEL_STATUS = {"active": "active", "hoat dong": "active", "dang hoat dong": "active",
                "suspended": "suspended", "tam dung": "suspended", "tam ngung": "suspended",
                "dissolved": "dissolved", "giai the": "dissolved", "da giai the": "dissolved"}
RECOGNITION = {"none": "none", "khong": "none", "chua": "none",
               "mps": "mps", "bo cong an": "mps", "bca": "mps",
               "provincial_bcd138": "provincial_bcd138", "bcd 138 tinh": "provincial_bcd138",
               "bcd138 tinh": "provincial_bcd138", "tinh": "provincial_bcd138"}
RATING = {"tot": "tot", "good": "tot", "kha": "kha", "fair": "kha",
          "trung binh": "trung_binh", "trung_binh": "trung_binh", "average": "trung_binh",
          "yeu": "yeu", "poor": "yeu", "kem": "yeu"}
INSTITUTION_KIND = {"agency": "agency", "co quan": "agency", "enterprise": "enterprise",
                    "doanh nghiep": "enterprise", "school": "school", "truong": "school",
                    "truong hoc": "school"}
LAUNCH_STATUS = {"planned": "planned", "ke hoach": "planned", "du kien": "planned",
                 "launched": "launched", "da phat dong": "launched",
                 "reviewed": "reviewed", "da danh gia": "reviewed", "da so ket": "reviewed",
                 "cancelled": "cancelled", "huy": "cancelled", "da huy": "cancelled"}


@dataclass(frozen=True)
class Kind:
    """One importer: fields, point rule, code resolution and the writing SQL."""

    name: str
    table: str
    fields: tuple[Field, ...]
    point: str = "required"               # required | optional (host or village gives a place)
    date_field: str | None = None         # units are matched as of this date (else today)
    resolve: Callable[[Connection, Parsed, list[int], ImportReport], None] | None = None
    extra_columns: dict[str, str] = field(default_factory=dict)
    prepare_sql: tuple[str, ...] = ()     # run on the stage before units are assigned
    write_sql: str = ""
    after_sql: tuple[str, ...] = ()


def _lookup(conn: Connection, sql: str) -> dict[str, object]:
    return {str(k): v for k, v in conn.exec_driver_sql(sql).fetchall()}


def _closest(value: str, by_code: dict[str, object], by_name: dict[str, object],
             n: int = 3) -> list[str]:
    """The N codes whose code or folded name is nearest to VALUE."""
    k = fold(value)
    words = [(c, by_code[c]) for c in by_code] + [(name, by_name[name]) for name in by_name]
    scored = sorted(((difflib.SequenceMatcher(None, k, fold(str(w))).ratio(), str(c))
                     for w, c in words), reverse=True)
    out: list[str] = []
    for _, c in scored:
        if c not in out:
            out.append(c)
        if len(out) == n:
            break
    return out


def _resolve_codes(values: list, rows: list[int], parsed: Parsed, report: ImportReport,
                   field_name: str, by_code: dict[str, object], by_name: dict[str, object],
                   what_vi: str, what_en: str) -> list:
    out: list = [None] * len(values)
    for i, v in enumerate(values):
        if v is None:
            continue
        hit = by_code.get(v, by_code.get(v.lower())) if isinstance(v, str) else None
        if hit is None:
            hit = by_name.get(fold(str(v)))
        if hit is None:
            near = ", ".join(_closest(str(v), by_code, by_name))
            report.add(rows[i], field_name, f"{what_vi} không có trong danh mục; gần nhất: {near}",
                       f"Unknown {what_en}; closest: {near}", v)
            parsed.bad_rows.add(i)
        out[i] = hit
    return out


def resolve_categories(conn: Connection, parsed: Parsed, rows: list[int],
                       report: ImportReport) -> None:
    """Category words -> codes through the vocabulary (data.importers.vocabulary); an unknown
    word is an error that lists the closest known categories."""
    cats = conn.exec_driver_sql("SELECT code, name_vi, name_en FROM incident_category").fetchall()
    in_db = {c for c, _, _ in cats}
    extra = tuple(sorted((c, vi, en) for c, vi, en in cats))
    memo: dict[str, str | None] = {}
    out: list = []
    for i, v in enumerate(parsed.values["category"]):
        if v is None:
            out.append(None)
            continue
        if v not in memo:
            code = vocabulary.resolve(v, extra)
            memo[v] = code if code in in_db else None
        code = memo[v]
        if code is None:
            near = "; ".join(vocabulary.label(c) for c in vocabulary.closest(v, 3, extra))
            report.add(rows[i], "category",
                       f"Loại vụ việc không có trong danh mục; gần nhất: {near} "
                       "(xem: antt import incidents --categories)",
                       f"Unknown incident category; closest: {near} "
                       "(see: antt import incidents --categories)", v)
            parsed.bad_rows.add(i)
        out.append(code)
    parsed.values["category"] = out


def resolve_incident(conn: Connection, parsed: Parsed, rows: list[int], report: ImportReport) -> None:
    resolve_categories(conn, parsed, rows, report)
    now = dt.datetime.now(dt.UTC)
    dates: list = []
    for i, when in enumerate(parsed.values["occurred_at"]):
        if when is not None and when > now:
            report.add(rows[i], "occurred_at", "Thời điểm xảy ra ở tương lai",
                       "occurred_at is in the future", when.isoformat())
            parsed.bad_rows.add(i)
        dates.append(None if when is None else when.astimezone(VN_TZ).date())
    parsed.values["on_date"] = dates


def _hosts(conn: Connection) -> tuple[dict[str, object], dict[str, object]]:
    villages = _lookup(conn, "SELECT code, id FROM admin_unit WHERE level = 'village' "
                             "AND valid_from <= current_date "
                             "AND (valid_to IS NULL OR current_date < valid_to)")
    institutions = _lookup(conn, "SELECT external_id, id FROM institution "
                                 "WHERE external_id IS NOT NULL")
    return villages, institutions


def resolve_model(conn: Connection, parsed: Parsed, rows: list[int], report: ImportReport) -> None:
    types = conn.exec_driver_sql("SELECT code, name_vi, name_en, host_kind FROM model_type").fetchall()
    host_kind_of = {c: hk for c, _, _, hk in types}
    by_name = {fold(vi): c for c, vi, _, _ in types} | {fold(en): c for c, _, en, _ in types}
    codes = _resolve_codes(parsed.values["type_code"], rows, parsed, report, "type_code",
                           {c: c for c in host_kind_of}, by_name, "Loại mô hình", "model type")
    parsed.values["type_code"] = codes
    villages, institutions = _hosts(conn)
    v_ids, i_ids, kinds = [], [], []
    for i, host in enumerate(parsed.values["host"]):
        vid = iid = None
        kind = "village"
        if host is not None:
            if host in villages:
                vid = villages[host]
            elif host in institutions:
                iid, kind = institutions[host], "institution"
            else:
                report.add(rows[i], "host", "Không tìm thấy nơi áp dụng (mã thôn hoặc mã cơ quan)",
                           "Unknown host (village code or institution id)", host)
                parsed.bad_rows.add(i)
        allowed = host_kind_of.get(codes[i]) if codes[i] else None
        if allowed in ("village", "institution") and host is not None and allowed != kind:
            where_vi = "thôn" if allowed == "village" else "cơ quan"
            report.add(rows[i], "host", f"Loại mô hình {codes[i]} phải gắn với {where_vi}",
                       f"Model type {codes[i]} must be hosted by a {allowed}", host)
            parsed.bad_rows.add(i)
        if allowed == "institution" and host is None:
            report.add(rows[i], "host", f"Loại mô hình {codes[i]} cần mã cơ quan (host)",
                       f"Model type {codes[i]} needs an institution host", None)
            parsed.bad_rows.add(i)
        v_ids.append(vid)
        i_ids.append(iid)
        kinds.append(kind)
    for i, (rating, rated_on) in enumerate(zip(parsed.values["rating"], parsed.values["rated_on"],
                                               strict=True)):
        if rating is not None and rated_on is None:
            report.add(rows[i], "rated_on", "Có xếp loại nhưng thiếu ngày xếp loại",
                       "A rating needs rated_on", None)
            parsed.bad_rows.add(i)
    parsed.values["host_village_id"] = v_ids
    parsed.values["institution_id"] = i_ids
    parsed.values["host_kind"] = kinds


def resolve_launch(conn: Connection, parsed: Parsed, rows: list[int], report: ImportReport) -> None:
    villages, _ = _hosts(conn)
    ids = []
    for i, code in enumerate(parsed.values["village_code"]):
        vid = None
        if code is not None:
            vid = villages.get(code)
            if vid is None:
                report.add(rows[i], "village_code", "Mã thôn không tồn tại", "Unknown village code",
                           code)
                parsed.bad_rows.add(i)
        ids.append(vid)
    parsed.values["host_village_id"] = ids


INCIDENTS = Kind(
    name="incidents", table="incident", date_field="occurred_at", resolve=resolve_incident,
    fields=(
        EXTERNAL_ID,
        Field("category", required=True, aliases=("loai", "loai_vu_viec", "category_code",
                                                  "danh_muc", "loai_vu")),
        Field("occurred_at", "datetime", required=True,
              aliases=("ngay", "thoi_gian", "ngay_xay_ra", "thoi_diem", "date", "time")),
        Field("precision", "enum", aliases=("do_chinh_xac",), choices=PRECISION),
        Field("deaths", "int", aliases=("so_nguoi_chet", "nguoi_chet", "tu_vong", "chet"),
              minimum=0),
        Field("injuries", "int", aliases=("so_nguoi_bi_thuong", "bi_thuong", "nguoi_bi_thuong"),
              minimum=0),
        Field("youth_involved", "bool", aliases=("thanh_thieu_nien", "youth", "ttn")),
        Field("status", "enum", aliases=("trang_thai", "tinh_trang"), choices=INCIDENT_STATUS),
        Field("source", aliases=("nguon",)),
        Field("description", aliases=("mo_ta", "noi_dung", "tom_tat")),
    ),
    write_sql="""
        INSERT INTO incident AS t (external_id, category_code, occurred_at, precision, deaths,
            injuries, youth_involved, status, source, description, commune_id, village_id,
            commune_now_id, village_now_id, geom)
        SELECT external_id, category, occurred_at, coalesce(precision, 'exact'),
               coalesce(deaths, 0), coalesce(injuries, 0), coalesce(youth_involved, false),
               coalesce(status, 'reported'), source, description, commune_id, village_id,
               commune_now_id, village_now_id, geom
        FROM import_stage ORDER BY row_no
        ON CONFLICT (external_id) DO UPDATE SET
            category_code = EXCLUDED.category_code, occurred_at = EXCLUDED.occurred_at,
            precision = EXCLUDED.precision, deaths = EXCLUDED.deaths,
            injuries = EXCLUDED.injuries, youth_involved = EXCLUDED.youth_involved,
            status = EXCLUDED.status, source = EXCLUDED.source,
            description = EXCLUDED.description, commune_id = EXCLUDED.commune_id,
            village_id = EXCLUDED.village_id, commune_now_id = EXCLUDED.commune_now_id,
            village_now_id = EXCLUDED.village_now_id, geom = EXCLUDED.geom,
            version = t.version + 1, updated_at = now()
        RETURNING (xmax = 0)
    """,
)

MODELS = Kind(
    name="models", table="security_model", point="optional", resolve=resolve_model,
    extra_columns={"host_village_id": "integer", "institution_id": "integer", "host_kind": "text"},
    fields=(
        EXTERNAL_ID,
        Field("type_code", required=True, aliases=("loai", "loai_mo_hinh", "ma_loai", "type")),
        Field("name", required=True, aliases=("ten", "ten_mo_hinh")),
        Field("host", aliases=("noi_ap_dung", "ma_thon", "ma_co_quan", "don_vi", "village_code")),
        Field("founded_on", "date", required=True, aliases=("ngay_thanh_lap", "thanh_lap", "ngay")),
        Field("status", "enum", aliases=("trang_thai",), choices=MODEL_STATUS),
        Field("status_since", "date", aliases=("tu_ngay",)),
        Field("recognition", "enum", aliases=("cong_nhan", "ghi_nhan"), choices=RECOGNITION),
        Field("recognized_on", "date", aliases=("ngay_cong_nhan", "ngay_ghi_nhan")),
        Field("rating", "enum", aliases=("xep_loai", "danh_gia"), choices=RATING),
        Field("rated_on", "date", aliases=("ngay_xep_loai", "ngay_danh_gia")),
        Field("rated_by", aliases=("nguoi_xep_loai", "don_vi_xep_loai")),
    ),
    prepare_sql=(
        # No coordinates: the model stands at its host (the institution, or inside the village).
        """UPDATE import_stage s SET geom = i.geom FROM institution i
           WHERE s.geom IS NULL AND i.id = s.institution_id""",
        """UPDATE import_stage s SET geom = ST_PointOnSurface(u.geom), village_id = u.id
           FROM admin_unit u WHERE s.geom IS NULL AND u.id = s.host_village_id""",
        "UPDATE import_stage SET village_id = host_village_id WHERE host_village_id IS NOT NULL",
    ),
    write_sql="""
        INSERT INTO security_model AS t (external_id, type_code, name, host_kind, institution_id,
            commune_id, village_id, founded_on, status, status_since, recognition,
            recognized_on, geom)
        SELECT external_id, type_code, name, host_kind, institution_id, commune_id, village_id,
               founded_on, coalesce(status, 'active'), status_since,
               coalesce(recognition, 'none'), recognized_on, geom
        FROM import_stage ORDER BY row_no
        ON CONFLICT (external_id) DO UPDATE SET
            type_code = EXCLUDED.type_code, name = EXCLUDED.name,
            host_kind = EXCLUDED.host_kind, institution_id = EXCLUDED.institution_id,
            commune_id = EXCLUDED.commune_id, village_id = EXCLUDED.village_id,
            founded_on = EXCLUDED.founded_on, status = EXCLUDED.status,
            status_since = EXCLUDED.status_since, recognition = EXCLUDED.recognition,
            recognized_on = EXCLUDED.recognized_on, geom = EXCLUDED.geom,
            version = t.version + 1, updated_at = now()
        RETURNING (xmax = 0)
    """,
    after_sql=(
        """INSERT INTO model_rating (model_id, rating, rated_on, rated_by)
           SELECT m.id, s.rating, s.rated_on, s.rated_by
           FROM import_stage s JOIN security_model m ON m.external_id = s.external_id
           WHERE s.rating IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM model_rating r WHERE r.model_id = m.id
               AND r.rated_on = s.rated_on AND r.rating = s.rating)""",
    ),
)

FIRE_GROUPS = Kind(
    name="fire-groups", table="fire_group",
    fields=(
        EXTERNAL_ID,
        Field("name", required=True, aliases=("ten", "ten_to")),
        Field("leader", aliases=("to_truong", "truong_to", "nguoi_phu_trach")),
        Field("households", "int", required=True, aliases=("so_ho", "ho"), minimum=1),
        Field("founded_on", "date", required=True, aliases=("ngay_thanh_lap", "thanh_lap", "ngay")),
    ),
    write_sql="""
        INSERT INTO fire_group AS t (external_id, name, leader, households, founded_on,
            commune_id, village_id, geom)
        SELECT external_id, name, leader, households, founded_on, commune_id, village_id, geom
        FROM import_stage ORDER BY row_no
        ON CONFLICT (external_id) DO UPDATE SET
            name = EXCLUDED.name, leader = EXCLUDED.leader, households = EXCLUDED.households,
            founded_on = EXCLUDED.founded_on, commune_id = EXCLUDED.commune_id,
            village_id = EXCLUDED.village_id, geom = EXCLUDED.geom,
            version = t.version + 1, updated_at = now()
        RETURNING (xmax = 0)
    """,
)

INSTITUTIONS = Kind(
    name="institutions", table="institution",
    fields=(
        EXTERNAL_ID,
        Field("kind", "enum", required=True, aliases=("loai", "loai_hinh"), choices=INSTITUTION_KIND),
        Field("name", required=True, aliases=("ten", "ten_don_vi")),
        Field("year", "int", aliases=("nam",), minimum=2000, maximum=2100),
        Field("antt_safe", "bool", aliases=("dat_chuan", "an_toan_antt", "dat_an_toan")),
        Field("festival_held", "bool", aliases=("ngay_hoi", "to_chuc_ngay_hoi")),
    ),
    write_sql="""
        INSERT INTO institution AS t (external_id, kind, name, commune_id, village_id, geom)
        SELECT external_id, kind, name, commune_id, village_id, geom
        FROM import_stage ORDER BY row_no
        ON CONFLICT (external_id) DO UPDATE SET
            kind = EXCLUDED.kind, name = EXCLUDED.name, commune_id = EXCLUDED.commune_id,
            village_id = EXCLUDED.village_id, geom = EXCLUDED.geom,
            version = t.version + 1, updated_at = now()
        RETURNING (xmax = 0)
    """,
    after_sql=(
        """INSERT INTO institution_year (institution_id, year, antt_safe, festival_held)
           SELECT i.id, s.year, s.antt_safe, s.festival_held
           FROM import_stage s JOIN institution i ON i.external_id = s.external_id
           WHERE s.year IS NOT NULL
           ON CONFLICT (institution_id, year) DO UPDATE SET
               antt_safe = coalesce(EXCLUDED.antt_safe, institution_year.antt_safe),
               festival_held = coalesce(EXCLUDED.festival_held, institution_year.festival_held)""",
    ),
)

LAUNCH_POINTS = Kind(
    name="launch-points", table="launch_point", point="optional", resolve=resolve_launch,
    extra_columns={"host_village_id": "integer"},
    fields=(
        EXTERNAL_ID,
        Field("name", required=True, aliases=("ten", "ten_diem")),
        Field("theme", required=True, aliases=("chu_de", "noi_dung")),
        Field("launch_date", "date", required=True, aliases=("ngay_phat_dong", "ngay")),
        Field("status", "enum", aliases=("trang_thai",), choices=LAUNCH_STATUS),
        Field("notes", aliases=("ghi_chu",)),
        Field("village_code", aliases=("ma_thon",)),
    ),
    prepare_sql=(
        "UPDATE import_stage SET village_id = host_village_id WHERE host_village_id IS NOT NULL",
        """UPDATE import_stage s SET commune_id = u.parent_id FROM admin_unit u
           WHERE s.geom IS NULL AND u.id = s.host_village_id""",
    ),
    write_sql="""
        INSERT INTO launch_point AS t (external_id, name, theme, launch_date, status, notes,
            commune_id, village_id, geom)
        SELECT external_id, name, theme, launch_date, coalesce(status, 'planned'), notes,
               commune_id, village_id, geom
        FROM import_stage ORDER BY row_no
        ON CONFLICT (external_id) DO UPDATE SET
            name = EXCLUDED.name, theme = EXCLUDED.theme, launch_date = EXCLUDED.launch_date,
            status = EXCLUDED.status, notes = EXCLUDED.notes, commune_id = EXCLUDED.commune_id,
            village_id = EXCLUDED.village_id, geom = EXCLUDED.geom,
            version = t.version + 1, updated_at = now()
        RETURNING (xmax = 0)
    """,
)

POINT_KINDS: dict[str, Kind] = {k.name: k for k in (INCIDENTS, MODELS, FIRE_GROUPS,
                                                      INSTITUTIONS, LAUNCH_POINTS)}
