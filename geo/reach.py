"""How much of each commune and village lies within R metres of an active model, memoised.

Public functions
----------------
- ``unit_reach(bind, on, radius_m, province_code=None, commune_code=None)``
- ``warm(bind, on, radius_m=DEFAULT_RADIUS_M)`` fills the memo for every commune (after imports)

The overlay is exact up to the 32-gon circles: the union of R-metre buffers of the active models
near a commune is built in EPSG:3405, cut into small pieces (``ST_Subdivide``), and each
full-resolution outline is intersected with the pieces its box touches. That costs ~10 ms per
commune (~35 s for the whole country), yet its answer depends only on

- the unit's outline (its row version, ``xmin``, changes whenever the row is rewritten),
- R, and
- the ids and positions of the active models whose point lies in the commune's box grown by R,

so the answer is kept in ``reach_cache`` under the md5 of exactly those inputs. A later call
hashes the inputs again (cheap: one index probe per commune) and overlays only the communes
whose hash is new. Nothing is ever invalidated by hand: a moved, added, suspended or
re-dated model, an edited outline or another R simply gives another key. A village's key is
its commune's key plus its own id and row version, since the commune's union is what it is cut
with (every model within R of the village lies in the commune's grown box).

A first statement hashes and looks up; a second, for the communes with a miss only, hashes
again and overlays in the same statement, so every overlay matches its key (one snapshot).
Many misses (after an import) are split over a few connections run in parallel. New entries
are then written in their own short transaction (``ON CONFLICT DO
NOTHING``: two callers computing the same key agree). Entries beyond the newest
``KEEP_PER_UNIT`` of a unit and radius are dropped.

Working out the keys is itself 0.5-0.9 s for the whole country (3,321 index probes for the
models, every commune outline read for its box, 29,757 village keys). A lookup's answer depends
only on the units and the models (and on the date, R and the scope), so each process also keeps
the last ``FRAMES_MAX`` whole answers under the data version of those two tables (migration
0007), read in the lookup's own statement, with the database's identity. Coverage asked again
with another rule, another simplification (each zoom of the page) or after an edit of ratings,
fire groups or institutions then skips it; any write to units or models changes the version.
A caller whose open transaction has written something neither reads nor fills it.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pandas as pd
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from antt.crs import METRIC_SRID
from antt.db import primary_of
from geo._db import ACTIVE_SQL, Bind, connect, frame, valid_on

log = logging.getLogger(__name__)

# 1 degree is at least 100 km anywhere in Vietnam (cos 23.5 deg x 111.3 km = 102 km), so growing
# a box by R/100000 degrees never misses a point within R metres (index prefilter only).
METRES_PER_DEGREE_FLOOR = 100_000.0
KEEP_PER_UNIT = 8
DEFAULT_RADIUS_M = 500.0  # the API's default R
# Overlaying many communes (after an import) is split over this many connections.
WORKERS = max(1, min(4, os.cpu_count() or 1))
PARALLEL_MIN_COMMUNES = 64
# Connections opened beside the caller's (parallel overlays, memo writes), per process. The API
# admits 24 requests at once, each holding one of its pool's 30 connections (api/admission.py);
# these 4 keep the total under 30. Parallel overlays take spare permits without waiting (none
# spare: the caller's connection does it all); a memo write waits for one. Nobody waits while
# holding a permit, so they cannot deadlock.
SIDE_CONNECTIONS = threading.BoundedSemaphore(4)

# The answers of whole lookups, by (database, data version, date, R, scope): see the module doc.
# The whole country's is ~5 MB.
FRAMES_MAX = 8
_FRAMES: OrderedDict[tuple, pd.DataFrame] = OrderedDict()
_FRAMES_LOCK = threading.Lock()
# What a lookup's answer depends on: this database (a recreated one, or a new cluster, starts
# its versions again) and the data version of the units and the models.
INPUTS_SQL = ("SELECT (SELECT system_identifier FROM pg_control_system())::text || '/' || "
              "(SELECT oid FROM pg_database WHERE datname = current_database())::text || '/' || "
              "antt_data_version(ARRAY['admin_unit', 'security_model'])::text")


def _scope(province_code: str | None, commune_code: str | None) -> str:
    parts = []
    if province_code is not None:
        parts.append("c.province_code = :province_code")
    if commune_code is not None:
        parts.append("c.code = :commune_code")
    return (" AND " + " AND ".join(parts)) if parts else ""


def _set_hash(alias: str, lane: int) -> str:
    """SQL: a 64-bit hash of the set of (id, x, y) of the rows ``alias`` in a group.

    Each row's hash chains the exact doubles of its point with its id (no text: writing 140,000
    points as text for md5 took 0.3 s of the national key); the rows are combined by XOR, which
    needs no order, so the group is hashed without a sort. Two lanes with different seeds make
    128 bits, as many as the md5 key they feed: an accidental collision of two different sets is
    a 2^-128 chance, not a matter of which positions are chosen."""
    row = (f"hashfloat8extended(ST_X({alias}.geom), hashfloat8extended(ST_Y({alias}.geom), "
           f"hashint8extended({alias}.id, {lane})))")
    return f"COALESCE(bit_xor({row}), 0)"


def _sql(scope: str, compute: bool = True) -> str:
    """The lookup (and, with ``compute``, the overlays of the misses) for communes in scope."""
    return f"""
    WITH c AS MATERIALIZED (
        -- the box stored in the outline's header (postgis_getbbox reads only that slice of the
        -- value: 18 ms for the country's communes, where ST_Envelope decompressed every
        -- outline in 60-145 ms); float4, rounded outwards, so it holds the outline
        SELECT c.id, c.xmin::text AS ver, c.population,
               ST_SetSRID(ST_Expand(postgis_getbbox(c.geom), :r_deg)::geometry, 4326) AS box
        FROM admin_unit c WHERE c.level = 'commune' AND {valid_on('c')}{scope}
    ),
    ck AS MATERIALIZED (  -- the commune's key: its version, R and the set of model positions
        SELECT c.id, c.population, k.models,
               md5(concat_ws('/', c.id, c.ver, :r, k.models, k.h1, k.h2))::uuid AS key
        FROM c JOIN (
            SELECT c.id, count(m.id) AS models, {_set_hash('m', 0)} AS h1, {_set_hash('m', 1)} AS h2
            FROM c LEFT JOIN security_model m ON m.geom && c.box AND {ACTIVE_SQL}
            GROUP BY c.id
        ) k ON k.id = c.id
    ),
    u AS MATERIALIZED (
        SELECT ck.id AS unit_id, 'commune' AS level, ck.id AS commune_id, ck.population, ck.models,
               ck.key
        FROM ck
        UNION ALL
        SELECT v.id, 'village', ck.id, v.population, ck.models,
               md5(concat_ws('/', ck.key, v.id, v.xmin::text))::uuid
        FROM ck JOIN admin_unit v ON v.parent_id = ck.id
        WHERE v.level = 'village' AND {valid_on('v')}
    ),
    looked AS MATERIALIZED (
        SELECT u.*, rc.area_m2, rc.area_within_m2
        FROM u LEFT JOIN reach_cache rc ON rc.unit_id = u.unit_id AND rc.key = u.key
    ),
    todo AS MATERIALIZED (  -- units with models near them and no entry under their key
        SELECT looked.unit_id, looked.commune_id FROM looked
        WHERE looked.models > 0 AND looked.area_m2 IS NULL AND {'true' if compute else 'false'}
    ),
    -- one buffer of the commune's multipoint (GEOS unions as it buffers, far faster than
    -- ST_Union of circles), only for communes with a miss, of the keyed models that can reach
    -- the outline at all (R/100000 degrees >= R metres: a superset, decided by keyed inputs)
    buf AS MATERIALIZED (
        SELECT c.id, ST_Buffer(ST_Collect(ST_Transform(m.geom, {METRIC_SRID})), :r, 8) AS b
        FROM c JOIN admin_unit cg ON cg.id = c.id
        JOIN security_model m ON m.geom && c.box AND {ACTIVE_SQL} AND ST_DWithin(m.geom, cg.geom, :r_deg)
        WHERE c.id IN (SELECT commune_id FROM todo)
        GROUP BY c.id
    ),
    -- the union cut into small pieces (they partition it, so areas add up): each overlay then
    -- only involves the few pieces whose boxes touch the unit
    parts AS MATERIALIZED (
        SELECT id AS commune_id, ST_Subdivide(b, 96) AS part FROM buf
    ),
    tm AS MATERIALIZED (  -- transform each outline once, not once per piece it meets
        SELECT todo.unit_id, todo.commune_id, ST_Transform(a.geom, {METRIC_SRID}) AS gm
        FROM todo JOIN admin_unit a ON a.id = todo.unit_id
    ),
    computed AS (  -- most pieces lie wholly inside the unit or wholly outside it
        SELECT tm.unit_id, ST_Area(tm.gm) AS area_m2,
               COALESCE(sum(CASE WHEN ST_Covers(tm.gm, p.part) THEN ST_Area(p.part)
                                 WHEN ST_Covers(p.part, tm.gm) THEN ST_Area(tm.gm)
                                 WHEN NOT ST_Intersects(p.part, tm.gm) THEN 0.0
                                 ELSE ST_Area(ST_Intersection(tm.gm, p.part)) END), 0.0) AS area_within_m2
        FROM tm LEFT JOIN parts p ON p.commune_id = tm.commune_id AND p.part && tm.gm
        GROUP BY tm.unit_id, tm.gm
    )
    SELECT looked.unit_id, looked.level, looked.commune_id, looked.population, looked.models,
           looked.key::text AS key, ({INPUTS_SQL}) AS inputs,
           COALESCE(looked.area_m2, computed.area_m2) AS area_m2,
           CASE WHEN looked.models = 0 THEN 0.0
                ELSE COALESCE(looked.area_within_m2, computed.area_within_m2) END AS area_within_m2,
           computed.unit_id IS NOT NULL AS computed
    FROM looked LEFT JOIN computed ON computed.unit_id = looked.unit_id
    ORDER BY looked.commune_id, looked.level, looked.unit_id
    """


def unit_reach(bind: Bind, on: date, radius_m: float, province_code: str | None = None,
               commune_code: str | None = None, workers: int = WORKERS) -> pd.DataFrame:
    """One row per commune valid on ``on`` in scope and per village of those communes:
    ``unit_id, level, commune_id, population, models`` (active models near the commune), ``area_m2``,
    ``area_within_m2`` (area within ``radius_m`` of an active model), ``area_within_share`` and
    ``computed`` (True when overlaid by this call, False when read from the memo).

    ``area_m2`` is NaN for units without any model near them (nothing to overlay; their
    within-R area is 0). When at least ``PARALLEL_MIN_COMMUNES`` communes miss the memo (after
    an import, say) their overlays are split over up to ``workers`` connections (as many as
    ``SIDE_CONNECTIONS`` can spare), provided the caller's transaction has written nothing the
    other connections could not see."""
    if radius_m is None or not math.isfinite(radius_m) or radius_m <= 0:
        raise ValueError("radius_m must be a finite number > 0")
    r = float(radius_m)
    scope = _scope(province_code, commune_code)
    params = {"on": on, "r": r, "r_deg": r / METRES_PER_DEGREE_FLOOR,
              "province_code": province_code, "commune_code": commune_code}
    memo = _sees_what_others_see(bind)
    if memo:
        with connect(bind) as conn:
            inputs = conn.execute(text(INPUTS_SQL)).scalar_one()
        with _FRAMES_LOCK:
            found = _FRAMES.get((inputs, on, r, province_code, commune_code))
            if found is not None:
                _FRAMES.move_to_end((inputs, on, r, province_code, commune_code))
        if found is not None:
            return found.copy()
    df = frame(bind, _sql(scope, compute=False), params)
    missing = sorted(set(df.loc[(df["models"] > 0) & df["area_m2"].isna(), "commune_id"].astype(int)))
    # the inputs this answer was read under (its statement's snapshot): a whole answer from the
    # memo table alone is kept under them
    keep_as = (df["inputs"].iloc[0], on, r, province_code, commune_code) if memo and len(df) and not missing \
        else None
    if missing:
        # overlay the communes with a miss (their statement re-reads their keys: one snapshot each)
        only = scope + " AND c.id = ANY(:ids)"
        spare = 0
        if len(missing) >= PARALLEL_MIN_COMMUNES and workers > 1 and memo:
            while spare < workers and SIDE_CONNECTIONS.acquire(blocking=False):
                spare += 1
        try:
            if spare >= 2:
                engine = bind.engine if isinstance(bind, Connection) else bind
                chunks = [missing[i::spare] for i in range(min(spare, len(missing)))]
                with ThreadPoolExecutor(spare) as pool:
                    parts = list(pool.map(lambda ids: frame(engine, _sql(only), {**params, "ids": ids}),
                                          chunks))
            else:
                parts = [frame(bind, _sql(only), {**params, "ids": missing})]
        finally:
            for _ in range(spare):
                SIDE_CONNECTIONS.release()
        redone = pd.concat(parts, ignore_index=True)
        df = pd.concat([df[~df["commune_id"].isin(missing)], redone], ignore_index=True)
        df = df.astype({"unit_id": "int64", "commune_id": "int64", "models": "int64", "computed": "bool"})
        df = df.sort_values(["commune_id", "level", "unit_id"], ignore_index=True)
    df["area_m2"] = area = df["area_m2"].astype("float64")
    df["area_within_m2"] = within = df["area_within_m2"].astype("float64")
    df["area_within_share"] = (within / area.where(area > 0)).where(df["models"] > 0, 0.0).fillna(0.0)
    df = df.drop(columns="inputs")
    fresh = df[df["computed"]]
    if len(fresh):
        _remember(bind, fresh, r)
    if keep_as is not None:
        with _FRAMES_LOCK:
            _FRAMES[keep_as] = df.copy()
            while len(_FRAMES) > FRAMES_MAX:
                _FRAMES.popitem(last=False)
    return df


def _sees_what_others_see(bind: Bind) -> bool:
    """True unless ``bind`` is a connection whose open transaction has written something."""
    if not isinstance(bind, Connection):
        return True
    return bind.execute(text("SELECT txid_current_if_assigned() IS NULL")).scalar_one()


def _remember(bind: Bind, fresh: pd.DataFrame, radius_m: float) -> None:
    """Store new entries in their own committed transaction (the caller's may be read-only or
    rolled back; the entries are valid whatever happens to it, being keyed by their inputs).
    A failure to store only costs speed next time, so it is logged, not raised. When the caller
    reads from a replica, the entries are written on its primary (a replica refuses writes)."""
    engine = primary_of(bind.engine if isinstance(bind, Connection) else bind)
    ids = [int(u) for u in fresh["unit_id"]]
    values = {"ids": ids, "keys": list(fresh["key"]), "radius_m": radius_m,
              "areas": [float(a) for a in fresh["area_m2"]],
              "within": [float(w) for w in fresh["area_within_m2"]], "keep": KEEP_PER_UNIT}
    if not SIDE_CONNECTIONS.acquire(timeout=30):
        log.warning("reach_cache: %d entries not stored: no spare connection for 30 s", len(ids))
        return
    try:
        with engine.begin() as conn:
            # never wait on the caller's own locks (its transaction is still open)
            conn.execute(text("SET LOCAL lock_timeout = '2s'"))
            conn.execute(text("""
                INSERT INTO reach_cache (unit_id, key, radius_m, area_m2, area_within_m2)
                SELECT u, CAST(k AS uuid), :radius_m, a, w
                FROM unnest(CAST(:ids AS int[]), CAST(:keys AS text[]), CAST(:areas AS float8[]),
                            CAST(:within AS float8[])) AS t(u, k, a, w)
                ON CONFLICT DO NOTHING"""), values)
            conn.execute(text("""
                DELETE FROM reach_cache rc USING (
                    SELECT unit_id, key, row_number() OVER (
                        PARTITION BY unit_id ORDER BY computed_at DESC, key) AS n
                    FROM reach_cache
                    WHERE unit_id = ANY(:ids) AND radius_m = :radius_m
                ) old
                WHERE rc.unit_id = old.unit_id AND rc.key = old.key AND old.n > :keep"""), values)
    except DBAPIError as exc:  # e.g. a read-only replica, or the unit deleted meanwhile
        log.warning("reach_cache: %d entries not stored: %s", len(ids), exc.orig)
    finally:
        SIDE_CONNECTIONS.release()


def warm(bind: Bind, on: date, radius_m: float = DEFAULT_RADIUS_M) -> int:
    """Overlay every unit whose key is new, for the whole country, so that the first coverage
    request after an import does not pay for them; returns how many units were overlaid."""
    return int(unit_reach(bind, on, radius_m)["computed"].sum())
