"""The demo's planted story: hotspot villages and villages left uncovered, chosen by seed.

Analyses (Gi*, coverage) are checked against this plan, which is stored in demo_manifest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

UNCOVERED_SHARE = 0.08
UNCOVERED_REASONS = ("no_model", "poor_rating", "inactive")
HOTSPOT_THEMES = [
    ("Điểm nóng gây rối của thanh thiếu niên / youth disorder hotspot", True),
    ("Điểm nóng trộm cắp quanh chợ / market theft hotspot", False),
    ("Điểm nóng ma túy và cố ý gây thương tích / drugs and assault hotspot", True),
]


@dataclass(frozen=True)
class Hotspot:
    village_id: int
    village_code: str
    village_name: str
    commune_code: str
    commune_name: str
    theme: str
    youth_heavy: bool
    lon: float
    lat: float


@dataclass(frozen=True)
class Uncovered:
    village_id: int
    village_code: str
    village_name: str
    commune_code: str
    commune_name: str
    reason: str


@dataclass(frozen=True)
class Plan:
    hotspots: list[Hotspot]
    uncovered: list[Uncovered]

    @property
    def uncovered_ids(self) -> set[int]:
        return {u.village_id for u in self.uncovered}

    def as_json(self) -> dict:
        return {"hotspots": [asdict(h) for h in self.hotspots],
                "uncovered": [asdict(u) for u in self.uncovered]}


def choose_plan(villages: pd.DataFrame, seed: int) -> Plan:
    """Three hotspot villages in three different communes (the first also left uncovered,
    the story a planner should find), and ~8 % of villages uncovered, at least three."""
    rng = np.random.default_rng([seed, 3])
    n = len(villages)
    # Hotspots: populous villages, one per commune.
    by_pop = villages.sort_values(["population", "code"], ascending=[False, True])
    candidates = by_pop.drop_duplicates("commune_id").head(max(3, len(by_pop) // 4))
    picked = candidates.iloc[rng.choice(len(candidates), size=min(3, len(candidates)), replace=False)]
    hotspots = [Hotspot(int(v.id), v.code, v.name, v.commune_code, v.commune_name, theme, youth,
                        float(v.lon), float(v.lat))
                for v, (theme, youth) in zip(picked.itertuples(), HOTSPOT_THEMES, strict=False)]
    n_uncovered = min(n - 1, max(3, round(UNCOVERED_SHARE * n))) if n > 1 else 0
    forced = [hotspots[0].village_id] if hotspots and n_uncovered else []
    rest = villages[~villages["id"].isin(forced + [h.village_id for h in hotspots[1:]])]
    take = rng.choice(len(rest), size=max(0, n_uncovered - len(forced)), replace=False)
    chosen_ids = forced + rest.iloc[np.sort(take)]["id"].tolist()
    lookup = villages.set_index("id")
    uncovered = []
    for i, vid in enumerate(chosen_ids):
        v = lookup.loc[vid]
        uncovered.append(Uncovered(int(vid), v["code"], v["name"], v["commune_code"],
                                   v["commune_name"], UNCOVERED_REASONS[i % len(UNCOVERED_REASONS)]))
    return Plan(hotspots, uncovered)
