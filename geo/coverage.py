"""Coverage of the movement per village and per commune on a date, and the uncovered lists.

Public functions
----------------
- ``village_coverage(bind, on, rule=CoverageRule(), province_code=None, commune_code=None)``
- ``commune_coverage(bind, on, rule=CoverageRule(), radius_m=500 | None, province_code=None,
  commune_code=None, population_fallback=True)``
- ``commune_coverage_rolled_up(bind, on, rule=CoverageRule(), radius_m=500, province_code=None)``
- ``uncovered_villages(bind, on, rule, period=None, province_code=None, commune_code=None)``
- ``uncovered_communes(bind, on, rule, radius_m=None, period=None, province_code=None)``

Definitions (documented in geo/README.md):
- A model is *active* on D when founded_on <= D and not (status in suspended/dissolved and
  COALESCE(status_since, founded_on) <= D): a suspension without a date counts from founding.
- Its rating on D is the latest model_rating with rated_on <= D (ties: highest id); none = unrated.
- A village is *covered* when it hosts at least ``rule.min_count`` active models of
  ``rule.model_types`` (None = all types) rated ``rule.min_rating`` or better. Unrated models never
  qualify unless ``rule.min_rating`` is None.
- A commune's coverage is its share of covered villages; a commune with no villages on D is
  covered when it hosts qualifying models itself. It is *uncovered* below ``rule.commune_min_share``.
- Population within R: the union of R-metre buffers around active models is built in
  EPSG:3405; each village's population is weighted by the share of its area inside that union
  (areal weighting: people assumed spread evenly over the village); circles are 32-gons (area
  0.64 % under the true circle). A commune without village population figures uses its own
  population and area share. The overlays come from geo.reach, which keeps each answer under a
  hash of its inputs, so only communes whose models or outlines changed are overlaid again.

The heavy lifting happens in one SQL statement per call; Python only shapes the frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
from sqlalchemy import text

from geo._db import ACTIVE_SQL, Bind, connect, frame, valid_on
from geo.filters import IncidentFilter
from geo.placement import unit_expr
from geo.reach import unit_reach

RATING_RANK = {"tot": 4, "kha": 3, "trung_binh": 2, "yeu": 1}
RATINGS = tuple(RATING_RANK)


@dataclass(frozen=True)
class CoverageRule:
    """When a village counts as covered, and when a commune does."""

    min_rating: str | None = "trung_binh"
    model_types: tuple[str, ...] | None = None
    min_count: int = 1
    commune_min_share: float = 0.8

    def __post_init__(self) -> None:
        if self.min_rating is not None and self.min_rating not in RATING_RANK:
            raise ValueError(f"min_rating must be one of {RATINGS} or None")
        if self.min_count < 1:
            raise ValueError("min_count must be >= 1")
        if not 0 <= self.commune_min_share <= 1:
            raise ValueError("commune_min_share must be within [0, 1]")

    def params(self) -> dict:
        return {
            "min_rank": RATING_RANK[self.min_rating] if self.min_rating else 0,
            "types": list(self.model_types) if self.model_types else None,
            "min_count": self.min_count,
        }


# Active models on :on with their latest rating and whether they qualify under the rule.
ACTIVE_MODELS = """
active_models AS MATERIALIZED (
    SELECT m.id, m.type_code, m.village_id, m.commune_id, m.geom, r.rating,
           COALESCE(r.rating = ANY(:ratings_ok), false) OR :min_rank = 0 AS rated_ok,
           (CAST(:types AS text[]) IS NULL OR m.type_code = ANY(CAST(:types AS text[]))) AS type_ok
    FROM security_model m
    {RATING_JOIN}
    WHERE {ACTIVE_SQL} AND {SCOPE}
)"""
# The latest rating on :on. For a few communes, one index probe per model; for the whole
# country, one sorted pass over model_rating is ~5x faster than 60,000 probes.
RATING_PROBE = """LEFT JOIN LATERAL (
        SELECT mr.rating FROM model_rating mr
        WHERE mr.model_id = m.id AND mr.rated_on <= :on
        ORDER BY mr.rated_on DESC, mr.id DESC LIMIT 1
    ) r ON true"""
RATING_PASS = """LEFT JOIN (
        SELECT DISTINCT ON (mr.model_id) mr.model_id, mr.rating FROM model_rating mr
        WHERE mr.rated_on <= :on ORDER BY mr.model_id, mr.rated_on DESC, mr.id DESC
    ) r ON r.model_id = m.id"""


def scope_communes(province_code: str | None, commune_code: str | None) -> str:
    """SQL list of the commune ids in scope (for ``x.commune_id IN (...)``), or None = all."""
    if province_code is None and commune_code is None:
        return ""
    cond = "province_code = :province_code" if province_code is not None else "code = :commune_code"
    if province_code is not None and commune_code is not None:
        cond += " AND code = :commune_code"
    return (f"SELECT id FROM admin_unit WHERE level = 'commune' AND {cond} "
            "AND valid_from <= :on AND (valid_to IS NULL OR :on < valid_to)")


def active_models_cte(scope: str) -> str:
    """The active_models CTE limited to models of the communes in scope (all when empty)."""
    return ACTIVE_MODELS.replace("{ACTIVE_SQL}", ACTIVE_SQL).replace(
        "{SCOPE}", f"m.commune_id IN ({scope})" if scope else "TRUE").replace(
        "{RATING_JOIN}", RATING_PROBE if scope else RATING_PASS)


def _model_stats(unit_col: str) -> str:
    """Per-unit model counts by rating and by type, as SQL over active_models."""
    return f"""
    SELECT {unit_col} AS unit_id,
           count(*) AS models_active,
           count(*) FILTER (WHERE rated_ok AND type_ok) AS models_qualifying,
           count(*) FILTER (WHERE rating = 'tot') AS rated_tot,
           count(*) FILTER (WHERE rating = 'kha') AS rated_kha,
           count(*) FILTER (WHERE rating = 'trung_binh') AS rated_trung_binh,
           count(*) FILTER (WHERE rating = 'yeu') AS rated_yeu,
           count(*) FILTER (WHERE rating IS NULL) AS unrated
    FROM active_models WHERE {unit_col} IS NOT NULL GROUP BY {unit_col}"""


def _type_stats(unit_col: str) -> str:
    return f"""
    SELECT unit_id, jsonb_object_agg(type_code, n ORDER BY type_code) AS models_by_type FROM (
        SELECT {unit_col} AS unit_id, type_code, count(*) AS n FROM active_models
        WHERE {unit_col} IS NOT NULL GROUP BY 1, 2) t GROUP BY unit_id"""


def _institution_stats(unit_col: str, scope: str = "") -> str:
    where = f" AND s.commune_id IN ({scope})" if scope else ""
    return f"""
    SELECT s.{unit_col} AS unit_id, count(*) AS institutions,
           count(*) FILTER (WHERE iy.antt_safe) AS institutions_safe,
           count(*) FILTER (WHERE iy.festival_held) AS institutions_festival
    FROM institution s
    LEFT JOIN institution_year iy ON iy.institution_id = s.id AND iy.year = :year
    WHERE s.{unit_col} IS NOT NULL{where} GROUP BY s.{unit_col}"""


def _fire_stats(unit_col: str, scope: str = "") -> str:
    where = f" AND commune_id IN ({scope})" if scope else ""
    return f"""
    SELECT {unit_col} AS unit_id, sum(households) AS fire_households, count(*) AS fire_groups
    FROM fire_group WHERE founded_on <= :on AND {unit_col} IS NOT NULL{where} GROUP BY {unit_col}"""


def _scope(alias: str, province_code: str | None, commune_code: str | None, commune_alias: str) -> str:
    parts = []
    if province_code is not None:
        parts.append(f"{alias}.province_code = :province_code")
    if commune_code is not None:
        parts.append(f"{commune_alias}.code = :commune_code")
    return (" AND " + " AND ".join(parts)) if parts else ""


def _base_params(on: date, rule: CoverageRule, **extra) -> dict:
    p = rule.params()
    ok = [r for r, k in RATING_RANK.items() if k >= p["min_rank"]]
    return {"on": on, "year": on.year, "ratings_ok": ok, **p, **extra}


def _share(num: pd.Series, den: pd.Series) -> pd.Series:
    """num/den as floats, None where the denominator is missing or zero (never a fake 0)."""
    den = pd.to_numeric(den, errors="coerce").astype("float64")
    out = pd.to_numeric(num, errors="coerce").astype("float64") / den.where(den > 0)
    return out.astype(object).where(out.notna(), None)


def village_coverage(bind: Bind, on: date, rule: CoverageRule = CoverageRule(),
                     province_code: str | None = None, commune_code: str | None = None) -> pd.DataFrame:
    """One row per village valid on ``on``: models by rating/type, covered flag, fire-group
    household share, institutions certified "An toàn về ANTT", 19/8 festival held."""
    scope = scope_communes(province_code, commune_code)
    sql = f"""
    WITH {active_models_cte(scope)},
    v AS (
        SELECT v.id, v.code, v.name, c.id AS commune_id, c.code AS commune_code, c.name AS commune_name,
               v.population, v.households
        FROM admin_unit v JOIN admin_unit c ON c.id = v.parent_id
        WHERE v.level = 'village' AND {valid_on('v')}
          {_scope('v', province_code, commune_code, 'c')}
    )
    SELECT v.*, COALESCE(ms.models_active, 0) AS models_active,
           COALESCE(ms.models_qualifying, 0) AS models_qualifying,
           COALESCE(ms.rated_tot, 0) AS rated_tot, COALESCE(ms.rated_kha, 0) AS rated_kha,
           COALESCE(ms.rated_trung_binh, 0) AS rated_trung_binh, COALESCE(ms.rated_yeu, 0) AS rated_yeu,
           COALESCE(ms.unrated, 0) AS unrated,
           COALESCE(ts.models_by_type, '{{}}'::jsonb) AS models_by_type,
           COALESCE(ms.models_qualifying, 0) >= :min_count AS covered,
           COALESCE(fs.fire_households, 0) AS fire_households, COALESCE(fs.fire_groups, 0) AS fire_groups,
           COALESCE(ins.institutions, 0) AS institutions,
           COALESCE(ins.institutions_safe, 0) AS institutions_safe,
           COALESCE(ins.institutions_festival, 0) AS institutions_festival,
           uy.festival_held, uy.movement_class
    FROM v
    LEFT JOIN ({_model_stats('village_id')}) ms ON ms.unit_id = v.id
    LEFT JOIN ({_type_stats('village_id')}) ts ON ts.unit_id = v.id
    LEFT JOIN ({_fire_stats('village_id', scope)}) fs ON fs.unit_id = v.id
    LEFT JOIN ({_institution_stats('village_id', scope)}) ins ON ins.unit_id = v.id
    LEFT JOIN unit_year uy ON uy.unit_id = v.id AND uy.year = :year
    ORDER BY v.commune_code, v.code
    """
    params = _base_params(on, rule, province_code=province_code, commune_code=commune_code)
    df = frame(bind, sql, params)
    df["fire_household_share"] = _share(df["fire_households"], df["households"])
    df["institutions_safe_share"] = _share(df["institutions_safe"], df["institutions"])
    return df


def commune_coverage(bind: Bind, on: date, rule: CoverageRule = CoverageRule(),
                     radius_m: float | None = 500.0, province_code: str | None = None,
                     commune_code: str | None = None, population_fallback: bool = True) -> pd.DataFrame:
    """One row per commune valid on ``on``: covered-village share, models by rating/type, the
    share of population and area within ``radius_m`` metres of an active model (EPSG:3405),
    fire-group household share, certified-institution share and the festival flag.

    ``radius_m=None`` skips the geometric part (its columns are then None): the counts alone are
    cheap for the whole country, the buffer overlays are not.

    Population: the commune's own figure, else the sum of its villages', else (when
    ``population_fallback`` and ``on`` is in the 2025 era) the 2009-census population of the
    pre-2025 communes areally interpolated into it (geo.eras.interpolate); ``population_source``
    says which."""
    if radius_m is not None and radius_m <= 0:
        raise ValueError("radius_m must be > 0")
    with_r = radius_m is not None
    scope = scope_communes(province_code, commune_code)
    sql = f"""
    WITH {active_models_cte(scope)},
    c AS MATERIALIZED (
        SELECT c.id, c.code, c.name, c.province_code, c.population, c.households
        FROM admin_unit c WHERE c.level = 'commune' AND {valid_on('c')}
          {_scope('c', province_code, commune_code, 'c')}
    ),
    vs AS (
        SELECT v.parent_id AS commune_id, count(*) AS villages,
               count(*) FILTER (WHERE COALESCE(ms.models_qualifying, 0) >= :min_count) AS villages_covered,
               sum(v.population) AS village_population, sum(v.households) AS village_households
        FROM admin_unit v
        JOIN c ON c.id = v.parent_id
        LEFT JOIN ({_model_stats('village_id')}) ms ON ms.unit_id = v.id
        WHERE v.level = 'village' AND {valid_on('v')}
        GROUP BY v.parent_id
    )
    SELECT c.id, c.code, c.name, c.province_code,
           COALESCE(c.population, vs.village_population) AS population,
           CASE WHEN c.population IS NOT NULL THEN 'commune'
                WHEN vs.village_population IS NOT NULL THEN 'villages' END AS population_source,
           COALESCE(c.households, vs.village_households) AS households,
           COALESCE(vs.villages, 0) AS villages, COALESCE(vs.villages_covered, 0) AS villages_covered,
           COALESCE(ms.models_active, 0) AS models_active,
           COALESCE(ms.models_qualifying, 0) AS models_qualifying,
           COALESCE(ms.rated_tot, 0) AS rated_tot, COALESCE(ms.rated_kha, 0) AS rated_kha,
           COALESCE(ms.rated_trung_binh, 0) AS rated_trung_binh, COALESCE(ms.rated_yeu, 0) AS rated_yeu,
           COALESCE(ms.unrated, 0) AS unrated,
           COALESCE(ts.models_by_type, '{{}}'::jsonb) AS models_by_type,
           vs.village_population,
           COALESCE(fs.fire_households, 0) AS fire_households, COALESCE(fs.fire_groups, 0) AS fire_groups,
           COALESCE(ins.institutions, 0) AS institutions,
           COALESCE(ins.institutions_safe, 0) AS institutions_safe,
           COALESCE(ins.institutions_festival, 0) AS institutions_festival,
           uy.festival_held, uy.movement_class
    FROM c
    LEFT JOIN vs ON vs.commune_id = c.id
    LEFT JOIN ({_model_stats('commune_id')}) ms ON ms.unit_id = c.id
    LEFT JOIN ({_type_stats('commune_id')}) ts ON ts.unit_id = c.id
    LEFT JOIN ({_fire_stats('commune_id', scope)}) fs ON fs.unit_id = c.id
    LEFT JOIN ({_institution_stats('commune_id', scope)}) ins ON ins.unit_id = c.id
    LEFT JOIN unit_year uy ON uy.unit_id = c.id AND uy.year = :year
    ORDER BY c.code
    """
    params = _base_params(on, rule, province_code=province_code, commune_code=commune_code)
    df = frame(bind, sql, params)
    _fill_population(bind, df, on, population_fallback)
    with_villages = df["villages"] > 0
    df["covered_share"] = _share(df["villages_covered"], df["villages"])
    df["covered"] = [
        (share is not None and share >= rule.commune_min_share) if has_v else q >= rule.min_count
        for share, has_v, q in zip(df["covered_share"], with_villages, df["models_qualifying"], strict=True)
    ]
    if with_r:
        _add_reach(bind, df, on, float(radius_m), province_code, commune_code)
        # Areal weighting of village populations; else the commune's own figure x area share.
        vpop = pd.to_numeric(df["village_population"], errors="coerce")
        use_villages = vpop.notna() & (vpop > 0)
        pop_within = df["village_population_within_r"].astype("float64").where(use_villages)
        commune_pop = pd.to_numeric(df["population"], errors="coerce")
        fallback = commune_pop * df["area_within_r_share"].astype("float64")
        within = pop_within.where(use_villages, fallback)
        df["population_within_r_share"] = _share(within, vpop.where(use_villages, commune_pop))
        df["population_within_r"] = within.astype(object).where(within.notna(), None)
    else:
        df["population_within_r"] = None
        df["population_within_r_share"] = None
        df["area_within_r_share"] = None
    df["fire_household_share"] = _share(df["fire_households"], df["households"])
    df["institutions_safe_share"] = _share(df["institutions_safe"], df["institutions"])
    df["radius_m"] = float(radius_m) if with_r else None
    return df.drop(columns=["village_population_within_r"], errors="ignore")


def _add_reach(bind: Bind, df: pd.DataFrame, on: date, radius_m: float, province_code: str | None,
               commune_code: str | None) -> None:
    """Add ``area_within_r_share`` and ``village_population_within_r`` (sum over the commune's
    villages of population x share of the village's area within R) from geo.reach."""
    reach = unit_reach(bind, on, radius_m, province_code=province_code, commune_code=commune_code)
    communes = reach[reach["level"] == "commune"].set_index("unit_id")["area_within_share"]
    df["area_within_r_share"] = df["id"].map(communes).astype("float64").fillna(0.0)
    villages = reach[reach["level"] == "village"]
    weighted = villages["population"].astype("float64") * villages["area_within_share"]
    per_commune = weighted.groupby(villages["commune_id"]).sum(min_count=1)
    df["village_population_within_r"] = df["id"].map(per_commune).astype("float64").fillna(0.0)


ERA_2025 = date(2025, 7, 1)
LAST_OLD_DAY = date(2025, 6, 30)


def _fill_population(bind: Bind, df: pd.DataFrame, on: date, fallback: bool) -> None:
    """Fill communes without a population (own or villages') from the pre-2025 communes (2009
    census) by areal interpolation, if asked and if any old-era figures exist."""
    missing = df["population"].isna()
    if not (fallback and missing.any() and on >= ERA_2025):
        return
    with connect(bind) as conn:
        old = conn.execute(text(
            "SELECT EXISTS (SELECT 1 FROM admin_unit WHERE level = 'commune' AND population > 0 "
            "AND valid_from <= :d AND (valid_to IS NULL OR :d < valid_to))"), {"d": LAST_OLD_DAY}).scalar()
    if not old:
        return
    from geo.eras import interpolate

    est = interpolate(bind, "commune", LAST_OLD_DAY, "commune", on,
                      target_ids=[int(i) for i in df.loc[missing, "id"]])
    got = dict(zip(est["id"], est["estimate"], strict=True))
    for idx in df.index[missing]:
        value = got.get(df.at[idx, "id"])
        if value is not None:
            df.at[idx, "population"] = float(value)
            df.at[idx, "population_source"] = "interpolated_2009"


def _default_period(on: date) -> IncidentFilter:
    return IncidentFilter(start=on - timedelta(days=364), end=on)




def _rank_by_need(bind: Bind, df: pd.DataFrame, level: str, on: date,
                  period: IncidentFilter) -> pd.DataFrame:
    """Attach incidents per 1,000 residents, youth incidents and the trend, then sort by need.
    Incidents of any date count in the unit of ``on``'s map holding them (geo.placement)."""
    unit = unit_expr(bind, level, on)
    cur_where, cur_params = period.sql("i", "f_")
    last_where, last_params = period.last_year().sql("i", "l_")
    sql = f"""
    SELECT {unit} AS unit_id,
           count(*) FILTER (WHERE {cur_where}) AS incidents,
           count(*) FILTER (WHERE {cur_where} AND i.youth_involved) AS youth_incidents,
           count(*) FILTER (WHERE {last_where}) AS incidents_last_year
    FROM incident i WHERE {unit} = ANY(:unit_ids) AND (({cur_where}) OR ({last_where}))
    GROUP BY 1"""
    ids = [int(x) for x in df["id"]]
    counts = frame(bind, sql, {"unit_ids": ids, "on": on, **cur_params, **last_params})
    out = df.merge(counts, how="left", left_on="id", right_on="unit_id").drop(columns=["unit_id"])
    for col in ("incidents", "youth_incidents", "incidents_last_year"):
        out[col] = out[col].fillna(0).astype(int)
    pop = pd.to_numeric(out["population"], errors="coerce").astype("float64")
    rate = out["incidents"] * 1000.0 / pop.where(pop > 0)
    out["incidents_per_1000"] = rate.astype(object).where(rate.notna(), None)
    out["change"] = out["incidents"] - out["incidents_last_year"]
    pct = out["change"] * 100.0 / out["incidents_last_year"].where(out["incidents_last_year"] > 0)
    out["change_pct"] = pct.astype(object).where(pct.notna(), None)
    out["_rate"] = rate.fillna(-1.0)
    out = out.sort_values(["_rate", "youth_incidents", "change", "code"],
                          ascending=[False, False, False, True], kind="stable")
    out = out.drop(columns=["_rate"]).reset_index(drop=True)
    out.insert(0, "need_rank", range(1, len(out) + 1))
    return out


def uncovered_villages(bind: Bind, on: date, rule: CoverageRule = CoverageRule(),
                       period: IncidentFilter | None = None, province_code: str | None = None,
                       commune_code: str | None = None) -> pd.DataFrame:
    """Villages not covered on ``on``, ranked by need: incidents per 1,000 residents in
    ``period`` (default: the 365 days ending on ``on``), then youth incidents, then the change
    against the same period last year. Villages without population sort after those with one."""
    cov = village_coverage(bind, on, rule, province_code=province_code, commune_code=commune_code)
    unc = cov[~cov["covered"].astype(bool)].reset_index(drop=True)
    return _rank_by_need(bind, unc, "village", on, period or _default_period(on))


def uncovered_communes(bind: Bind, on: date, rule: CoverageRule = CoverageRule(),
                       radius_m: float | None = None, period: IncidentFilter | None = None,
                       province_code: str | None = None) -> pd.DataFrame:
    """Communes whose covered-village share is below ``rule.commune_min_share`` on ``on``,
    ranked by need like ``uncovered_villages``. The population/area within ``radius_m`` columns
    are only filled when a radius is given (overlays memoised by geo.reach: ~15 ms per changed commune)."""
    cov = commune_coverage(bind, on, rule, radius_m=radius_m, province_code=province_code)
    unc = cov[~cov["covered"].astype(bool)].reset_index(drop=True)
    return _rank_by_need(bind, unc, "commune", on, period or _default_period(on))


# Count columns of commune_coverage that add up across units (shares are recomputed after).
ADDITIVE = ["villages", "villages_covered", "models_active", "models_qualifying", "rated_tot", "rated_kha",
            "rated_trung_binh", "rated_yeu", "unrated", "population", "households", "village_population",
            "population_within_r", "fire_households", "fire_groups", "institutions", "institutions_safe",
            "institutions_festival"]


def commune_coverage_rolled_up(bind: Bind, on: date, rule: CoverageRule = CoverageRule(),
                               radius_m: float = 500.0, province_code: str | None = None) -> pd.DataFrame:
    """Coverage of the (pre-2025) communes valid on ``on``, rolled up into 2025 communes through
    ``unit_lineage``: counts are apportioned (partial splits by area_share, see geo.eras.roll_up)
    and the shares recomputed from the rolled-up counts. ``attrs['unmatched']`` lists old codes
    without lineage. Area shares are not rolled up (they need the old geometry)."""
    from geo.eras import roll_up

    cov = commune_coverage(bind, on, rule, radius_m=radius_m, province_code=province_code)
    old = cov[["code", *ADDITIVE]].copy()
    for col in ADDITIVE:
        old[col] = pd.to_numeric(old[col], errors="coerce")
    rolled_idx = roll_up(bind, old, ADDITIVE)
    rolled = rolled_idx.reset_index()
    rolled["covered_share"] = _share(rolled["villages_covered"], rolled["villages"])
    rolled["covered"] = [s is not None and s >= rule.commune_min_share for s in rolled["covered_share"]]
    rolled["population_within_r_share"] = _share(rolled["population_within_r"], rolled["village_population"])
    rolled["fire_household_share"] = _share(rolled["fire_households"], rolled["households"])
    rolled["institutions_safe_share"] = _share(rolled["institutions_safe"], rolled["institutions"])
    rolled.attrs["unmatched"] = rolled_idx.attrs["unmatched"]
    rolled.attrs["as_of"] = on.isoformat()
    return rolled
