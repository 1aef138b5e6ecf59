"""Vietnamese names for generated places and people (demo only)."""

from __future__ import annotations

import numpy as np

SYNTHETIC_LABEL = "(dữ liệu giả lập / synthetic)"

# Hamlet names common across the Red River delta; numbered ones are added when these run out.
HAMLET_WORDS = [
    "Đông", "Đoài", "Nam", "Bắc", "Trung", "Thượng", "Hạ", "Tiền", "Hậu", "An Lạc", "Phú Xuân",
    "Vĩnh Phúc", "Tân Lập", "Hòa Bình", "Bình Minh", "Phúc Lâm", "Thịnh Vượng", "Cầu Đá",
    "Chợ Cũ", "Đình", "Ngọc Lâm", "Kim Sơn", "Hưng Long", "Quang Trung",
]
SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Ngô", "Dương"]
MIDDLE = ["Văn", "Thị", "Đức", "Minh", "Thu", "Quang", "Ngọc", "Hữu"]
GIVEN = ["An", "Bình", "Cường", "Dũng", "Hà", "Hải", "Hằng", "Hùng", "Lan", "Long", "Mai", "Nam",
         "Phong", "Quân", "Sơn", "Tâm", "Thảo", "Trung", "Tuấn", "Yến"]


def village_names(commune_kind: str | None, n: int, rng: np.random.Generator) -> list[str]:
    """N distinct village full names fitting the commune's kind (tổ dân phố in wards)."""
    if commune_kind == "phường":
        style = rng.choice(["Tổ dân phố", "Khu phố"], p=[0.8, 0.2])
        return [f"{style} {i}" for i in range(1, n + 1)]
    names: list[str] = []
    words = list(rng.permutation(HAMLET_WORDS))
    numbered = rng.random() < 0.35  # some communes number their hamlets ("Xóm 3")
    for i in range(n):
        if numbered or i >= len(words):
            names.append(f"Xóm {i + 1}")
        else:
            names.append(f"Thôn {words[i]}")
    return names


def person_names(n: int, rng: np.random.Generator) -> list[str]:
    return [f"{SURNAMES[a]} {MIDDLE[b]} {GIVEN[c]}" for a, b, c in zip(
        rng.integers(0, len(SURNAMES), n), rng.integers(0, len(MIDDLE), n),
        rng.integers(0, len(GIVEN), n), strict=True)]
