"""Text helpers for Vietnamese names: the search form without diacritics."""

from __future__ import annotations

import re
import unicodedata

_KIND_PREFIXES = (
    "thành phố", "tỉnh", "quận", "huyện", "thị xã", "thị trấn", "phường", "xã", "đặc khu",
    "thôn", "xóm", "ấp", "bản", "làng", "tổ dân phố", "khu phố", "khu",
)


def fold(text: str) -> str:
    """Lower-case, strip diacritics (đ -> d) and collapse spaces: 'Tân Kỳ' -> 'tan ky'."""
    text = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    return re.sub(r"\s+", " ", text).strip().lower()


def strip_kind(name: str) -> str:
    """'Xã Tân Kỳ' -> 'Tân Kỳ': the bare name users type."""
    low = name.lower()
    for prefix in sorted(_KIND_PREFIXES, key=len, reverse=True):
        if low.startswith(prefix + " "):
            return name[len(prefix) + 1 :].strip()
    return name.strip()


def kind_of(full_name: str) -> str | None:
    """The unit kind named at the start of a full name ('Xã Tân Kỳ' -> 'xã')."""
    low = full_name.lower()
    for prefix in sorted(_KIND_PREFIXES, key=len, reverse=True):
        if low.startswith(prefix + " "):
            return prefix
    return None
