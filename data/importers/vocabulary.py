"""The incident category vocabulary: every word a file may use for a category, in one place.

Why: police exports name categories in many ways: the project's code (``crime/theft``), the
Vietnamese or English name, with or without diacritics, the offence as the Penal Code names it
("Trộm cắp tài sản"), its article ("Điều 173", "Đ.173 BLHS"), or an abbreviation ("TNGT",
"CYGTT"). They all resolve here, and an unknown word gets the closest known ones. The codes and
names are those of the ``incident_category`` catalogue (migration 0002; a test keeps the two
equal); categories an administrator adds to the table resolve by code and name too.
``antt import incidents --categories`` prints this vocabulary.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache

from antt.text import fold


@dataclass(frozen=True)
class Category:
    code: str
    name_vi: str
    name_en: str
    synonyms: tuple[str, ...] = ()     # as users write them (matched without diacritics)
    articles: tuple[int, ...] = ()     # Penal Code 2015 (Bộ luật Hình sự) articles


CATEGORIES: tuple[Category, ...] = (
    Category("crime", "Tội phạm", "Crime",
             ("hình sự", "vụ án hình sự", "án hình sự", "tội phạm hình sự", "criminal offence")),
    Category("crime/murder", "Giết người", "Murder",
             ("án mạng", "homicide", "killing"), (123,)),
    Category("crime/injury", "Cố ý gây thương tích", "Intentional injury",
             ("cố ý gây thương tích hoặc gây tổn hại cho sức khỏe của người khác",
              "gây thương tích", "CYGTT", "đánh người gây thương tích", "assault", "injury",
              "grievous bodily harm"), (134,)),
    Category("crime/disorder", "Gây rối trật tự công cộng", "Public disorder",
             ("gây rối", "gây rối TTCC", "GRTTCC", "đánh nhau", "hỗn chiến", "disorder",
              "affray", "brawl", "fighting"), (318,)),
    Category("crime/theft", "Trộm cắp tài sản", "Theft",
             ("trộm cắp", "trộm", "ăn trộm", "trộm xe", "trộm xe máy", "trộm cắp xe máy",
              "larceny", "stealing", "burglary"), (173,)),
    Category("crime/robbery", "Cướp, cướp giật tài sản", "Robbery and snatching",
             ("cướp tài sản", "cướp giật tài sản", "cướp giật", "cướp", "robbery", "snatching",
              "bag snatching", "mugging"), (168, 171)),
    Category("crime/fraud", "Lừa đảo chiếm đoạt tài sản", "Fraud",
             ("lừa đảo", "lừa đảo CĐTS", "LĐCĐTS", "scam", "swindle"), (174,)),
    Category("crime/fraud/online", "Lừa đảo qua điện thoại, mạng", "Phone and online scams",
             ("lừa đảo qua mạng", "lừa đảo qua điện thoại", "lừa đảo trực tuyến",
              "lừa đảo công nghệ cao", "lừa đảo trên không gian mạng",
              "sử dụng mạng máy tính, mạng viễn thông, phương tiện điện tử thực hiện hành vi "
              "chiếm đoạt tài sản", "online scam", "phone scam", "online fraud", "cyber fraud",
              "telephone scam"), (290,)),
    Category("crime/drugs", "Ma túy", "Drugs",
             ("tội phạm ma túy", "tàng trữ trái phép chất ma túy", "vận chuyển trái phép chất ma túy",
              "mua bán trái phép chất ma túy", "tổ chức sử dụng trái phép chất ma túy",
              "chứa chấp việc sử dụng trái phép chất ma túy", "sử dụng trái phép chất ma túy",
              "narcotics", "drug", "drug trafficking", "drug possession"),
             (249, 250, 251, 255, 256)),
    Category("crime/gambling", "Đánh bạc", "Gambling",
             ("tổ chức đánh bạc", "gá bạc", "tổ chức đánh bạc hoặc gá bạc", "đánh bạc qua mạng",
              "cờ bạc", "betting"), (321, 322)),
    Category("crime/weapons", "Vũ khí, vật liệu nổ, pháo", "Weapons, explosives, fireworks",
             ("vũ khí", "vũ khí quân dụng", "vũ khí thô sơ", "vật liệu nổ", "pháo", "pháo nổ",
              "công cụ hỗ trợ", "tàng trữ vũ khí", "weapons", "explosives", "fireworks",
              "firearms"), (304, 305, 306)),
    Category("violation", "Vi phạm pháp luật khác", "Other violations",
             ("vi phạm hành chính", "VPHC", "vi phạm", "vi phạm khác", "khác", "other",
              "violation", "administrative violation")),
    Category("fire", "Cháy, nổ", "Fire and explosion",
             ("cháy nổ", "vụ cháy nổ", "fire or explosion", "PCCC")),
    Category("fire/fire", "Cháy", "Fire",
             ("hỏa hoạn", "vụ cháy", "đám cháy", "cháy nhà", "blaze")),
    Category("fire/explosion", "Nổ", "Explosion", ("vụ nổ", "nổ bình gas", "blast")),
    Category("traffic", "Tai nạn giao thông", "Traffic accident",
             ("TNGT", "tai nạn", "va chạm giao thông", "tai nạn giao thông đường bộ",
              "vi phạm quy định về tham gia giao thông đường bộ", "road accident",
              "traffic collision", "road traffic accident"), (260,)),
)

_ARTICLE = re.compile(r"^(?:dieu|d)\s*(\d{1,3})(?:\s*(?:blhs|bo luat hinh su))?$|^(\d{1,3})\s*blhs$")


def key(text: str) -> str:
    """How words are compared: folded (no diacritics, lower case), punctuation as spaces.
    'Crime/Theft' == 'crime theft'; 'Trộm cắp tài sản' == 'trom cap tai san'."""
    return re.sub(r"[^a-z0-9]+", " ", fold(str(text))).strip()


def words(cat: Category) -> list[str]:
    """Every word that names CAT, best first: code, names, synonyms, articles."""
    out = [cat.code, cat.name_vi, cat.name_en, *cat.synonyms]
    out += [f"Điều {a}" for a in cat.articles]
    return out


@lru_cache
def _lookup(extra: tuple[tuple[str, str, str], ...] = ()) -> dict[str, str]:
    """key -> code. Codes first, then names, then synonyms: a code is never shadowed."""
    cats = list(CATEGORIES)
    known = {c.code for c in cats}
    cats += [Category(code, vi, en) for code, vi, en in extra if code not in known]
    table: dict[str, str] = {}
    for rank in range(3):
        for c in cats:
            items = ([c.code] if rank == 0 else [c.name_vi, c.name_en] if rank == 1
                     else list(c.synonyms))
            for w in items:
                table.setdefault(key(w), c.code)
    return table


@lru_cache
def _articles() -> dict[int, str]:
    return {a: c.code for c in CATEGORIES for a in c.articles}


def resolve(text: object, extra: tuple[tuple[str, str, str], ...] = ()) -> str | None:
    """The category code TEXT names, or None. EXTRA: (code, name_vi, name_en) rows of the
    database catalogue that this module does not list (added by an administrator)."""
    k = key(str(text))
    if not k:
        return None
    hit = _lookup(extra).get(k)
    if hit is not None:
        return hit
    m = _ARTICLE.match(k)
    if m:
        return _articles().get(int(m.group(1) or m.group(2)))
    return None


def closest(text: object, n: int = 3, extra: tuple[tuple[str, str, str], ...] = ()) -> list[str]:
    """The N category codes whose words are nearest to TEXT (always N: the nearest, however far)."""
    k = key(str(text))
    table = _lookup(extra)
    scored = sorted(((difflib.SequenceMatcher(None, k, w).ratio(), code) for w, code in table.items()),
                    reverse=True)
    out: list[str] = []
    for _, code in scored:
        if code not in out:
            out.append(code)
        if len(out) == n:
            break
    return out


def label(code: str) -> str:
    """'crime/theft (Trộm cắp tài sản / Theft)'."""
    cat = next((c for c in CATEGORIES if c.code == code), None)
    return f"{code} ({cat.name_vi} / {cat.name_en})" if cat else code
