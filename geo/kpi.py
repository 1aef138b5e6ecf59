"""KPIs: the year's targets against what the registry says, per commune and village, on any date.

Public functions
----------------
- ``target_defs(bind)`` -> list[TargetDef] (the catalogue, ordered)
- ``kpis(bind, on, level='commune', province_code=None, commune_code=None, year=None)``
  -> long DataFrame, one row per unit and target
- ``unit_summary(df)`` -> one row per unit: met, on_track, at_risk, missed, no_data, assessed
- ``province_rollup(df)`` -> one row per target over the communes of ``df``
- ``records(bind, on, level, code, target, year=None)`` -> the rows a figure was computed from
- ``kpi_sql(level, unit_where, dates)``: the whole computation as one SELECT (the map layer's
  source in ``layers.catalogue`` uses it with ``:today``); ``status_sql(...)``: the status rule

What each built-in target counts (all within the year of the target, up to the date ``on``):

- institutions_safe: members = institutions in the unit; counted = ``institution_year.antt_safe``.
- launched: members = the unit's villages and institutions; counted = ``launched`` in
  ``unit_year``/``institution_year``, or a launch point launched/reviewed in the year, or a
  ``launch`` event in the year.
- class_kha_or_better: villages and institutions; counted = movement class xuat_sac or kha.
- festival: villages and institutions; counted = ``festival_held``, or a ``festival`` event.
- models_kept: models active on 31 December before the year whose latest rating before the
  year is tot or kha ("effective"); counted = still active on ``on``.
- new_models: models founded in the year (a count).
- forums: ``forum`` events of the commune in the year (a count).

Percent targets: actual = 100 × counted / members (None when there are no members: status
``no_data``). Count targets: actual = the count. A village's figures are over the members
inside it; forums and new models are commune targets. Targets users add have no metric: their
actual is the latest ``target_value`` recorded on or before ``on`` for the unit and year.

Thresholds: a commune's own plan, else its province's plan, else the catalogue default (the
``threshold_source`` column says which). Villages take their commune's thresholds.

The status rule (pro-rated by the share of the target's period elapsed):
  ``fraction`` = days from 1 January to ``on`` (inclusive) / days from 1 January to the target's
  due day (31 December, or 19 August for the festival), clipped to 0..1.
  - ``no_data``: no actual (no members, or no value recorded);
  - at least / more than (ge, gt): the threshold reached → ``met``; else the due day passed →
    ``missed``; else actual ≥ threshold × fraction → ``on_track``; else ``at_risk``;
  - at most / less than (le, lt): judged only when the due day has passed (``met``/``missed``);
    before that, within the limit and ≤ threshold × fraction → ``on_track``, else ``at_risk``.

Placement: institutions, models and launch points count in the units valid on ``on`` that hold
them (``geo.placement``), events in their commune (through unit_lineage when it was merged).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from geo._db import Bind, connect, frame, valid_on
from geo.placement import event_commune_sql, point_unit_sql

STATUSES = ("met", "on_track", "at_risk", "missed", "no_data")
DIRECTIONS = ("ge", "gt", "le", "lt")
GOOD_CLASSES = "('xuat_sac', 'kha')"
EFFECTIVE_RATINGS = "('tot', 'kha')"


@dataclass(frozen=True)
class TargetDef:
    code: str
    name_vi: str
    name_en: str
    measure: str
    unit_vi: str
    unit_en: str
    direction: str
    default_threshold: float
    metric: str | None
    applies_to: str
    due: str
    position: int
    builtin: bool

    def due_date(self, year: int) -> date:
        month, day = (int(p) for p in self.due.split("-"))
        try:
            return date(year, month, day)
        except ValueError:  # 29 February in a common year, 31 in a short month
            return date(year, month, 28)


def target_defs(bind: Bind) -> list[TargetDef]:
    df = frame(bind, """SELECT code, name_vi, name_en, measure, unit_vi, unit_en, direction,
        default_threshold, metric, applies_to, due, position, builtin
        FROM target_def ORDER BY position, code""")
    return [TargetDef(**{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()})
            for r in df.to_dict("records")]


def progress_fraction(on: date, year: int, due: date) -> float:
    """Share of [1 January, due] elapsed on ``on`` (inclusive), 0..1 — the same formula as the
    SQL of ``kpi_sql``, for Python callers (a report's wording)."""
    start = date(year, 1, 1)
    span = (due - start).days + 1
    return float(min(1.0, max(0.0, ((on - start).days + 1) / span)))


def status_sql(actual: str, threshold: str, direction: str, fraction: str, closed: str) -> str:
    """SQL CASE: the status rule of the module docstring over the given SQL expressions."""
    sat = (f"(CASE {direction} WHEN 'ge' THEN {actual} >= {threshold} "
           f"WHEN 'gt' THEN {actual} > {threshold} WHEN 'le' THEN {actual} <= {threshold} "
           f"ELSE {actual} < {threshold} END)")
    expected = f"({threshold} * {fraction})"
    return f"""(CASE WHEN {actual} IS NULL THEN 'no_data'
        WHEN {direction} IN ('ge', 'gt') THEN
            CASE WHEN {sat} THEN 'met' WHEN {closed} THEN 'missed'
                 WHEN {actual} >= {expected} THEN 'on_track' ELSE 'at_risk' END
        WHEN {closed} THEN CASE WHEN {sat} THEN 'met' ELSE 'missed' END
        WHEN {sat} AND {actual} <= {expected} THEN 'on_track' ELSE 'at_risk' END)"""


@dataclass(frozen=True)
class Dates:
    """SQL expressions of the dates a KPI query uses, built from two parameters: the date the
    figures are taken on and the plan year (a map layer passes ``:today`` for both)."""

    on_param: str = ":on"
    year_param: str = ":year"

    @property
    def on(self) -> str:
        return f"CAST({self.on_param} AS date)"

    @property
    def year(self) -> str:
        return f"CAST({self.year_param} AS integer)"

    @property
    def y0(self) -> str:
        return f"make_date({self.year}, 1, 1)"

    @property
    def prev(self) -> str:
        return f"(make_date({self.year}, 1, 1) - 1)"

    def due(self, due_col: str) -> str:
        """The due date of a 'MM-DD' column in the plan year (29 Feb in a common year → 28)."""
        month = f"split_part({due_col}, '-', 1)::int"
        day = f"split_part({due_col}, '-', 2)::int"
        last = f"extract(day FROM (make_date({self.year}, {month}, 1) + interval '1 month - 1 day'))::int"
        return f"make_date({self.year}, {month}, LEAST({day}, {last}))"


def _active(alias: str, on: str) -> str:
    """SQL: model ALIAS is active on date ON (the rule of geo._db.ACTIVE_SQL)."""
    return (f"{alias}.founded_on <= {on} AND NOT ({alias}.status IN ('suspended', 'dissolved') "
            f"AND COALESCE({alias}.status_since, {alias}.founded_on) <= {on})")


def scope_sql(province_code: str | None, commune_code: str | None) -> str:
    """Conditions on communes (alias u) binding :province_code / :commune_code."""
    scope = ""
    if province_code is not None:
        scope += " AND u.province_code = :province_code"
    if commune_code is not None:
        scope += " AND u.code = :commune_code"
    return scope


def members_sql(unit_where: str = "", dates: Dates = Dates()) -> str:
    """WITH-clauses ending in ``members``: one row per record a built-in figure counts.

    ``unit_where``: extra conditions on the communes (alias u), e.g. the scope. Columns of
    members: metric, commune_id, village_id, record_type ('institution', 'village', 'model',
    'event'), record_id, counted, evidence (text[]: why it counts)."""
    on, year, y0, prev = dates.on, dates.year, dates.y0, dates.prev
    # A scope (a province, a commune) reads only the points in its box. Without one the box is the
    # whole country: the filter then removes nothing, and because its bounds are a parameter the
    # planner guessed a handful of rows and placed each of 62,000 models and 13,000 institutions by
    # per-row index probes instead of one hashed set (national KPIs: 2.2 s -> see bench_targets).
    def in_box(alias: str) -> str:
        return (f"{alias}.geom && (SELECT ST_SetSRID(ST_Extent(geom), 4326) FROM admin_unit "
                f"WHERE id IN (SELECT id FROM c)) AND " if unit_where.strip() else "")

    valid = f"u.valid_from <= {on} AND (u.valid_to IS NULL OR {on} < u.valid_to)"
    return f"""
    c AS MATERIALIZED (
        SELECT u.id, u.code, u.name, u.province_code FROM admin_unit u
        WHERE u.level = 'commune' AND {valid}{unit_where}
    ),
    v AS MATERIALIZED (
        SELECT u.id, u.code, u.name, u.parent_id AS commune_id FROM admin_unit u
        WHERE u.level = 'village' AND {valid} AND u.parent_id IN (SELECT id FROM c)
    ),
    s AS MATERIALIZED (
        SELECT x.* FROM (
            SELECT s.id, {point_unit_sql('s', 'commune', on)} AS commune_id,
                   {point_unit_sql('s', 'village', on)} AS village_id
            FROM institution s WHERE {in_box('s')}true) x
        WHERE x.commune_id IN (SELECT id FROM c)
    ),
    m AS MATERIALIZED (
        SELECT x.* FROM (
            SELECT m.id, m.founded_on, m.status, m.status_since,
                   {point_unit_sql('m', 'commune', on)} AS commune_id,
                   {point_unit_sql('m', 'village', on)} AS village_id
            FROM security_model m WHERE {in_box('m')}m.founded_on <= {on}) x
        WHERE x.commune_id IN (SELECT id FROM c)
    ),
    e AS MATERIALIZED (
        SELECT x.* FROM (
            SELECT e.id, e.kind, e.held_on, e.institution_id, e.village_id,
                   {event_commune_sql('e', on)} AS commune_id
            FROM movement_event e WHERE e.held_on BETWEEN {y0} AND {on}) x
        WHERE x.commune_id IN (SELECT id FROM c)
    ),
    lp AS MATERIALIZED (
        SELECT l.id, l.village_id FROM launch_point l
        WHERE l.status IN ('launched', 'reviewed') AND l.launch_date BETWEEN {y0} AND {on}
          AND l.village_id IN (SELECT id FROM v)
    ),
    -- the first evidence per village / institution, grouped once (not looked up per row)
    lp_v AS (SELECT village_id, min(id) AS id FROM lp GROUP BY 1),
    ev_v AS (SELECT village_id, min(id) FILTER (WHERE kind = 'launch') AS launch_id,
                    min(id) FILTER (WHERE kind = 'festival') AS festival_id
             FROM e WHERE institution_id IS NULL AND village_id IS NOT NULL GROUP BY 1),
    ev_s AS (SELECT institution_id, min(id) FILTER (WHERE kind = 'launch') AS launch_id,
                    min(id) FILTER (WHERE kind = 'festival') AS festival_id
             FROM e WHERE institution_id IS NOT NULL GROUP BY 1),
    vf AS MATERIALIZED (  -- villages with their yearly facts and the evidence from events
        SELECT v.id, v.commune_id, uy.launched, uy.movement_class, uy.festival_held,
               lp_v.id AS launch_point_id, ev_v.launch_id AS launch_event_id,
               ev_v.festival_id AS festival_event_id
        FROM v LEFT JOIN unit_year uy ON uy.unit_id = v.id AND uy.year = {year}
        LEFT JOIN lp_v ON lp_v.village_id = v.id LEFT JOIN ev_v ON ev_v.village_id = v.id
    ),
    sf AS MATERIALIZED (  -- institutions with their yearly facts and events
        SELECT s.id, s.commune_id, s.village_id, y.antt_safe, y.launched, y.movement_class,
               y.festival_held, ev_s.launch_id AS launch_event_id, ev_s.festival_id AS festival_event_id
        FROM s LEFT JOIN institution_year y ON y.institution_id = s.id AND y.year = {year}
        LEFT JOIN ev_s ON ev_s.institution_id = s.id
    ),
    raw AS (
        SELECT 'institutions_safe' AS metric, commune_id, village_id, 'institution' AS record_type,
               id AS record_id, NULL::boolean AS ok,
               ARRAY[CASE WHEN antt_safe THEN 'institution_year:' || {year} END] AS ev
        FROM sf
        UNION ALL
        SELECT 'launched', commune_id, id, 'village', id, NULL,
               ARRAY[CASE WHEN launched THEN 'unit_year:' || {year} END,
                     'launch_point:' || launch_point_id, 'event:' || launch_event_id]
        FROM vf
        UNION ALL
        SELECT 'launched', commune_id, village_id, 'institution', id, NULL,
               ARRAY[CASE WHEN launched THEN 'institution_year:' || {year} END,
                     'event:' || launch_event_id]
        FROM sf
        UNION ALL
        SELECT 'class_kha_or_better', commune_id, id, 'village', id, NULL,
               ARRAY[CASE WHEN movement_class IN {GOOD_CLASSES}
                          THEN 'unit_year:' || {year} || ':' || movement_class END]
        FROM vf
        UNION ALL
        SELECT 'class_kha_or_better', commune_id, village_id, 'institution', id, NULL,
               ARRAY[CASE WHEN movement_class IN {GOOD_CLASSES}
                          THEN 'institution_year:' || {year} || ':' || movement_class END]
        FROM sf
        UNION ALL
        SELECT 'festival', commune_id, id, 'village', id, NULL,
               ARRAY[CASE WHEN festival_held THEN 'unit_year:' || {year} END,
                     'event:' || festival_event_id]
        FROM vf
        UNION ALL
        SELECT 'festival', commune_id, village_id, 'institution', id, NULL,
               ARRAY[CASE WHEN festival_held THEN 'institution_year:' || {year} END,
                     'event:' || festival_event_id]
        FROM sf
        UNION ALL
        SELECT 'models_kept', m.commune_id, m.village_id, 'model', m.id, {_active('m', on)},
               ARRAY['rating:' || r.rating || '@' || r.rated_on,
                     'status:' || m.status || coalesce('@' || m.status_since, '')]
        FROM m CROSS JOIN LATERAL (
            SELECT rating, rated_on FROM model_rating mr WHERE mr.model_id = m.id AND mr.rated_on < {y0}
            ORDER BY mr.rated_on DESC, mr.id DESC LIMIT 1) r
        WHERE {_active('m', prev)} AND r.rating IN {EFFECTIVE_RATINGS}
        UNION ALL
        SELECT 'new_models', commune_id, village_id, 'model', id, true, ARRAY['founded_on:' || founded_on]
        FROM m WHERE founded_on >= {y0}
        UNION ALL
        SELECT 'forums', commune_id, village_id, 'event', id, true, ARRAY['event:' || id]
        FROM e WHERE kind = 'forum'
    ),
    members AS (
        SELECT metric, commune_id, village_id, record_type, record_id,
               array_remove(ev, NULL) AS evidence,
               coalesce(ok, cardinality(array_remove(ev, NULL)) > 0) AS counted
        FROM raw
    )"""


def kpi_sql(level: str = "commune", unit_where: str = "", dates: Dates = Dates()) -> str:
    """One SELECT of every (unit, target): the figures, the threshold in force and the status.

    Columns: KPI_COLUMNS plus ``position`` (the catalogue order). ``unit_where`` restricts the
    communes (alias u); villages are those of the communes kept."""
    if level not in ("commune", "village"):
        raise ValueError("level must be 'commune' or 'village'")
    on, year = dates.on, dates.year
    key = "commune_id" if level == "commune" else "village_id"
    if level == "commune":
        units = "SELECT c.id AS unit_id, c.code, c.name, c.code AS commune_code, c.province_code FROM c"
        applies = ""
    else:
        units = ("SELECT v.id AS unit_id, v.code, v.name, c.code AS commune_code, c.province_code "
                 "FROM v JOIN c ON c.id = v.commune_id")
        applies = " AND d.applies_to = 'both'"
    due = dates.due("d.due")
    fraction = f"LEAST(1.0, GREATEST(0.0, (({on} - {dates.y0}) + 1)::float8 / (({due} - {dates.y0}) + 1)))"
    status = status_sql("actual", "threshold", "direction", "fraction", "closed")
    return f"""WITH {members_sql(unit_where, dates)},
    figures AS (
        SELECT metric, {key} AS unit_id, count(*) FILTER (WHERE counted) AS num, count(*) AS den
        FROM members WHERE {key} IS NOT NULL GROUP BY 1, 2
    ),
    units AS ({units}),
    thr AS (
        SELECT c.code AS commune_code, d.code AS target, d.measure, d.direction, d.metric, d.position,
               coalesce(cp.threshold, pp.threshold, d.default_threshold) AS threshold,
               CASE WHEN cp.threshold IS NOT NULL THEN 'commune'
                    WHEN pp.threshold IS NOT NULL THEN 'province' ELSE 'default' END AS threshold_source,
               {due} AS due, {fraction} AS fraction, {on} >= {due} AS closed
        FROM c CROSS JOIN target_def d
        LEFT JOIN plan cpl ON cpl.unit_level = 'commune' AND cpl.unit_code = c.code AND cpl.year = {year}
        LEFT JOIN plan_target cp ON cp.plan_id = cpl.id AND cp.target_code = d.code
        LEFT JOIN plan ppl ON ppl.unit_level = 'province' AND ppl.unit_code = c.province_code
                          AND ppl.year = {year}
        LEFT JOIN plan_target pp ON pp.plan_id = ppl.id AND pp.target_code = d.code
        WHERE (d.builtin OR cp.threshold IS NOT NULL OR pp.threshold IS NOT NULL){applies}
    ),
    manual AS (
        SELECT DISTINCT ON (target_code, unit_code) target_code, unit_code, value
        FROM target_value WHERE unit_level = '{level}' AND year = {year} AND recorded_on <= {on}
        ORDER BY target_code, unit_code, recorded_on DESC, id DESC
    ),
    r AS (
        SELECT u.unit_id, u.code, u.name, u.commune_code, u.province_code, t.target, t.measure,
               t.direction, t.threshold, t.threshold_source, t.due, t.fraction, t.closed, t.position,
               CASE WHEN t.metric IS NOT NULL THEN coalesce(f.num, 0) END AS numerator,
               CASE WHEN t.metric IS NOT NULL AND t.measure = 'percent' THEN coalesce(f.den, 0) END
                   AS denominator,
               CASE WHEN t.metric IS NULL THEN mv.value
                    WHEN t.measure = 'percent' THEN CASE WHEN f.den > 0 THEN 100.0 * f.num / f.den END
                    ELSE coalesce(f.num, 0)::float8 END AS actual
        FROM units u JOIN thr t ON t.commune_code = u.commune_code
        LEFT JOIN figures f ON f.metric = t.metric AND f.unit_id = u.unit_id
        LEFT JOIN manual mv ON mv.target_code = t.target AND mv.unit_code = u.code
    )
    SELECT unit_id, '{level}' AS level, code, name, commune_code, province_code, target, measure,
           direction, numerator, denominator, actual, threshold, threshold_source,
           threshold * fraction AS expected, fraction, due, {status} AS status, position
    FROM r"""


def effective_date(on: date, year: int) -> date:
    """The date figures are taken on: ``on``, but not past the year's last day."""
    return min(on, date(year, 12, 31))


KPI_COLUMNS = ["unit_id", "level", "code", "name", "commune_code", "province_code", "target",
               "measure", "direction", "numerator", "denominator", "actual", "threshold",
               "threshold_source", "expected", "fraction", "due", "status"]


def kpis(bind: Bind, on: date, level: str = "commune", province_code: str | None = None,
         commune_code: str | None = None, year: int | None = None) -> pd.DataFrame:
    """Actual against target for every unit of LEVEL valid on ``on`` in the scope (long frame).

    Columns: KPI_COLUMNS. ``numerator``/``denominator``: counted members / members (count
    targets: the count and None; targets without a metric: None, None); ``actual``: percent or
    count (NaN = no data); ``expected``: the pro-rated threshold; ``fraction``: share of the
    target's period elapsed; ``due``: its due date."""
    year = year or on.year
    if not 2000 <= year <= 2100:
        raise ValueError("year must be between 2000 and 2100 / năm phải trong khoảng 2000-2100")
    sql = kpi_sql(level, scope_sql(province_code, commune_code)) + " ORDER BY code, position, target"
    df = frame(bind, sql, {"on": effective_date(on, year), "year": year,
                           "province_code": province_code, "commune_code": commune_code})
    if df.empty:
        return pd.DataFrame(columns=KPI_COLUMNS)
    df["actual"] = df["actual"].astype(float)
    for col in ("numerator", "denominator"):  # counts as Python ints, None where there is none
        vals = df[col].to_numpy(dtype=float, na_value=np.nan)
        known = ~np.isnan(vals)
        out = np.full(len(vals), None, dtype=object)
        out[known] = vals[known].astype(np.int64).tolist()
        df[col] = pd.Series(out, index=df.index, dtype=object)
    return df[KPI_COLUMNS]


def unit_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per unit: how many targets are met, on track, at risk, missed, without data; ``assessed`` =
    targets with data; ``met_share`` = met / assessed."""
    cols = ["unit_id", "level", "code", "name", "commune_code", "province_code"]
    if df.empty:
        return pd.DataFrame(columns=cols + list(STATUSES) + ["targets", "assessed", "met_share"])
    counts = pd.crosstab(df["unit_id"], df["status"]).reindex(columns=list(STATUSES), fill_value=0)
    base = df.drop_duplicates("unit_id").set_index("unit_id")[cols[1:]]
    out = base.join(counts).reset_index()
    out["targets"] = out[list(STATUSES)].sum(axis=1)
    out["assessed"] = out["targets"] - out["no_data"]
    out["met_share"] = (out["met"] / out["assessed"].where(out["assessed"] > 0)).astype(object)
    out["met_share"] = out["met_share"].where(out["met_share"].notna(), None)
    return out


def rank(summary: pd.DataFrame) -> pd.DataFrame:
    """Units ranked: most targets met, then fewest missed, then most on track, then code."""
    out = summary.sort_values(["met", "missed", "on_track", "code"],
                              ascending=[False, True, False, True]).reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return out


def province_rollup(df: pd.DataFrame) -> pd.DataFrame:
    """One row per target over the communes of ``df``: summed numerator/denominator (percent
    targets: the province share), the communes in each status."""
    if df.empty:
        return pd.DataFrame(columns=["target", "measure", "numerator", "denominator", "actual",
                                     "communes", *STATUSES])
    rows = []
    for target, g in df.groupby("target", sort=False):
        measure = g["measure"].iloc[0]
        num = int(g["numerator"].dropna().sum())
        den = g["denominator"].dropna()
        den_sum = int(den.sum()) if len(den) else None
        if measure == "percent" and den_sum:
            actual = 100.0 * num / den_sum
        elif measure == "percent":
            actual = None
        else:
            actual = float(g["actual"].sum(min_count=1)) if g["actual"].notna().any() else None
        counts = g["status"].value_counts()
        rows.append({"target": target, "measure": measure, "numerator": num, "denominator": den_sum,
                     "actual": actual, "communes": len(g),
                     **{s: int(counts.get(s, 0)) for s in STATUSES}})
    return pd.DataFrame(rows)


def records(bind: Bind, on: date, level: str, code: str, target: str,
            year: int | None = None) -> pd.DataFrame:
    """The records the figure of TARGET for unit (LEVEL, CODE) was computed from: record_type,
    record_id, name, village_code, counted, evidence. Targets without a metric: their recorded
    values (record_type 'target_value')."""
    year = year or on.year
    asof = effective_date(on, year)
    defs = {d.code: d for d in target_defs(bind)}
    if target not in defs:
        raise KeyError(target)
    d = defs[target]
    params = {"on": asof, "year": year}
    with connect(bind) as conn:
        unit = frame(conn, f"""SELECT u.id, c.code AS commune_code FROM admin_unit u
            JOIN admin_unit c ON c.id = CASE WHEN u.level = 'commune' THEN u.id ELSE u.parent_id END
            WHERE u.level = :level AND u.code = :code AND {valid_on('u')}""",
                     {**params, "level": level, "code": code})
        if unit.empty:
            raise LookupError(code)
        if d.metric is None:
            return frame(conn, """SELECT 'target_value' AS record_type, id AS record_id,
                    coalesce(note, '') AS name, NULL AS village_code,
                    recorded_on <= :on AS counted, ARRAY['value:' || value, 'recorded_on:' || recorded_on]
                    AS evidence
                FROM target_value WHERE target_code = :t AND unit_level = :level AND unit_code = :code
                  AND year = :year ORDER BY recorded_on DESC, id DESC""",
                         {**params, "t": target, "level": level, "code": code})
        key = "commune_id" if level == "commune" else "village_id"
        params["commune_code"] = str(unit["commune_code"].iloc[0])
        return frame(conn, f"""WITH {members_sql(scope_sql(None, params['commune_code']))}
            SELECT mb.record_type, mb.record_id,
                   coalesce(s.name, vu.name, sm.name, ev.title) AS name,
                   vv.code AS village_code, mb.counted, mb.evidence
            FROM members mb
            LEFT JOIN institution s ON mb.record_type = 'institution' AND s.id = mb.record_id
            LEFT JOIN admin_unit vu ON mb.record_type = 'village' AND vu.id = mb.record_id
            LEFT JOIN security_model sm ON mb.record_type = 'model' AND sm.id = mb.record_id
            LEFT JOIN movement_event ev ON mb.record_type = 'event' AND ev.id = mb.record_id
            LEFT JOIN admin_unit vv ON vv.id = mb.village_id
            WHERE mb.metric = :metric AND mb.{key} = :uid
            ORDER BY mb.counted DESC, mb.record_type, name, mb.record_id""",
                     {**params, "metric": d.metric, "uid": int(unit["id"].iloc[0])})
