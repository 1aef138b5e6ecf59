"""The review of models (sơ kết / tổng kết): every model of a commune with its rating history
and a proposal — replicate, keep, strengthen or dissolve — with the reason in words.

Public functions
----------------
- ``propose(bind, commune_code, on)`` -> DataFrame, one row per model of the commune that is
  active or suspended on ``on``: model_id, name, type_code, type_name, village_code,
  village_name, founded_on, status, status_since, recognition, ratings (list of
  {rating, rated_on}, oldest first), proposal, reason_vi, reason_en
- ``proposal_for(...)``: the rule for one model (pure; tested on its own)

The rule (seed 002, 2.3: "nhân rộng mô hình phát huy tác dụng tốt, nâng cao chất lượng hoạt
động của mô hình trung bình, loại bỏ mô hình hoạt động kém"), first match wins:
1. suspended on ``on`` → dissolve (inactive);
2. the last two ratings both 'yeu' → dissolve (poor two reviews running);
3. no rating in the two years before ``on`` and founded more than two years before → dissolve
   (inactive: nothing shows it works);
4. never rated, founded within two years → keep (new, not yet reviewed);
5. latest rating 'tot' → replicate; 'kha' → keep; 'trung_binh' → strengthen;
   'yeu' (once) → strengthen, and the reason says a second 'yeu' will propose dissolving it.
Placement: models count in the commune valid on ``on`` that holds them (``geo.placement``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd

from geo._db import Bind, frame
from geo.placement import point_unit_sql

INACTIVE_DAYS = 730
RATING_VI = {"tot": "Tốt", "kha": "Khá", "trung_binh": "Trung bình", "yeu": "Yếu"}
RATING_EN = {"tot": "good", "kha": "fair", "trung_binh": "average", "yeu": "poor"}
DECISION_LABELS = {
    "replicate": ("Nhân rộng", "Replicate"), "keep": ("Duy trì", "Keep"),
    "strengthen": ("Củng cố, nâng cao chất lượng", "Strengthen"), "dissolve": ("Giải thể", "Dissolve"),
}


def _d(day: date) -> str:
    return day.strftime("%d/%m/%Y")


@dataclass(frozen=True)
class Proposal:
    proposal: str
    reason_vi: str
    reason_en: str


def proposal_for(status: str, status_since: date | None, founded_on: date, recognition: str,
                 ratings: list[tuple[str, date]], on: date) -> Proposal:
    """The rule of the module docstring for one model; ``ratings`` oldest first, all <= on."""
    if status == "suspended":
        since = _d(status_since or founded_on)
        return Proposal("dissolve", f"Ngừng hoạt động từ {since}; đề nghị giải thể.",
                        f"Inactive (suspended) since {since}; proposed for dissolution.")
    if len(ratings) >= 2 and ratings[-1][0] == ratings[-2][0] == "yeu":
        d1, d2 = _d(ratings[-2][1]), _d(ratings[-1][1])
        return Proposal("dissolve", f"Xếp loại Yếu hai kỳ liên tiếp ({d1}, {d2}); đề nghị giải thể.",
                        f"Rated poor in two reviews running ({d1}, {d2}); proposed for dissolution.")
    recent = [r for r in ratings if r[1] > on - timedelta(days=INACTIVE_DAYS)]
    if not recent and founded_on <= on - timedelta(days=INACTIVE_DAYS):
        last = f"lần cuối {_d(ratings[-1][1])}" if ratings else "chưa từng được xếp loại"
        last_en = f"last on {_d(ratings[-1][1])}" if ratings else "never rated"
        return Proposal("dissolve", f"Không có kết quả đánh giá hoạt động trong 2 năm ({last}); "
                                    "coi là không hoạt động, đề nghị giải thể.",
                        f"No activity rating in two years ({last_en}); treated as inactive, "
                        "proposed for dissolution.")
    if not ratings:
        return Proposal("keep", f"Mô hình mới thành lập {_d(founded_on)}, chưa đến kỳ xếp loại; duy trì.",
                        f"New model founded {_d(founded_on)}, not yet rated; keep.")
    rating, rated_on = ratings[-1]
    when = _d(rated_on)
    if rating == "tot":
        extra_vi = {"mps": "; được Bộ Công an ghi nhận", "provincial_bcd138": "; được BCĐ 138 tỉnh ghi nhận"}
        extra_en = {"mps": "; recognised by the Ministry of Public Security",
                    "provincial_bcd138": "; recognised by the provincial Steering Committee 138"}
        return Proposal("replicate",
                        f"Xếp loại Tốt ({when}){extra_vi.get(recognition, '')}; đề nghị nhân rộng.",
                        f"Rated good ({when}){extra_en.get(recognition, '')}; proposed for replication.")
    if rating == "kha":
        return Proposal("keep", f"Xếp loại Khá ({when}); duy trì hoạt động.",
                        f"Rated fair ({when}); keep it running.")
    if rating == "trung_binh":
        return Proposal("strengthen", f"Xếp loại Trung bình ({when}); cần củng cố, nâng cao chất lượng.",
                        f"Rated average ({when}); needs strengthening.")
    return Proposal("strengthen",
                    f"Xếp loại Yếu ({when}); cần củng cố — nếu kỳ sau vẫn Yếu sẽ đề xuất giải thể.",
                    f"Rated poor ({when}); needs strengthening — a second poor rating will propose "
                    "dissolution.")


def propose(bind: Bind, commune_code: str, on: date) -> pd.DataFrame:
    """Every model of the commune active or suspended on ``on``, with its proposal."""
    df = frame(bind, f"""
        WITH c AS (SELECT id FROM admin_unit WHERE level = 'commune' AND code = :code
                   AND valid_from <= :on AND (valid_to IS NULL OR :on < valid_to)),
        m AS (
            SELECT x.* FROM (
                SELECT m.id, m.name, m.type_code, m.founded_on, m.status, m.status_since, m.recognition,
                       {point_unit_sql('m', 'commune')} AS commune_id, {point_unit_sql('m', 'village')} AS vid
                FROM security_model m
                WHERE m.geom && (SELECT ST_Extent(geom) FROM admin_unit WHERE id IN (SELECT id FROM c))
                  AND m.founded_on <= :on) x
            WHERE x.commune_id IN (SELECT id FROM c)
              -- dissolved by then: out of the review (it has nothing left to decide)
              AND NOT (x.status = 'dissolved' AND coalesce(x.status_since, x.founded_on) <= :on)
        )
        SELECT m.id AS model_id, m.name, m.type_code, t.name_vi AS type_name, v.code AS village_code,
               v.name AS village_name, m.founded_on,
               CASE WHEN m.status = 'suspended' AND coalesce(m.status_since, m.founded_on) <= :on
                    THEN 'suspended' ELSE 'active' END AS status,
               m.status_since, m.recognition,
               coalesce((SELECT json_agg(json_build_object('rating', r.rating, 'rated_on', r.rated_on)
                                         ORDER BY r.rated_on, r.id)
                         FROM model_rating r WHERE r.model_id = m.id AND r.rated_on <= :on), '[]')
                   AS ratings
        FROM m JOIN model_type t ON t.code = m.type_code LEFT JOIN admin_unit v ON v.id = m.vid
        ORDER BY v.code NULLS LAST, m.name, m.id""", {"code": commune_code, "on": on})
    if df.empty:
        return df.assign(proposal=[], reason_vi=[], reason_en=[])
    out: list[dict[str, Any]] = []
    for r in df.to_dict("records"):
        ratings = [(x["rating"], date.fromisoformat(x["rated_on"])) for x in r["ratings"]]
        p = proposal_for(r["status"], r["status_since"], r["founded_on"], r["recognition"], ratings, on)
        out.append({**r, "ratings": [{"rating": a, "rated_on": b.isoformat()} for a, b in ratings],
                    "proposal": p.proposal, "reason_vi": p.reason_vi, "reason_en": p.reason_en})
    return pd.DataFrame(out)
