"""Analysis responses from the shared result cache (layers/resultcache.py), never stale.

Why: a whole-country coverage map, a province's KDE heatmap or its Gi* hot spots take
seconds, and were computed again on every request although the data under them had not
changed. `cached(...)` wraps an analysis endpoint:

- The key: md5 of the endpoint, its query items sorted by name (repeated names keep their
  order), the caller's role class (exact points or aggregates only) and scope (level and
  code), today's date in Asia/Ho_Chi_Minh (parameters default to today), the settings that
  change answers (suppression limit, public cell floor) and a fingerprint of the analysis
  code (a deployment that changes an analysis does not serve the old one's answers) — under
  the data version of the tables the analysis reads (named per endpoint below, each one a
  tracked table: `layers.versions.tracked_tables`; if one is not, the answer is not cached).
  Equal keys mean equal responses, for any caller and worker: the police's answers (the
  unsuppressed counts, the heatmap drawn from the points) are never shared with other roles.
- A hit costs one round trip on the primary (the version and the entry together); on a
  replica, the version is read there and the entry on the primary. An unreachable cache is
  skipped, never an error. Only 200 answers are stored, and never one that wrote an audit
  row (`api.audit.record` marks the connection): audited reads must reach the audit log on
  every request.
- `ETag` is the versioned key, known before any work: a matching If-None-Match gets 304
  after that one lookup. `Cache-Control` stays what the endpoint had (`private, no-cache`
  and `Vary: Authorization, Cookie`: answers depend on the account; the heatmap PNG
  `no-store`). `X-Result-Cache: hit|miss` says whether the answer was computed.
- An analysis may store more than its own answer under the same version (`Context.also`):
  heatmap.json stores the PNG its `png_url` will ask for, so the image costs one lookup.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from antt.db import is_replica
from antt.settings import get_settings
from api.audit import AUDITED
from api.deps import Principal
from api.readroute import autocommit_connection, cache_lookup
from layers import resultcache
from layers.resultcache import Entry
from layers.versions import (
    etag_matches,
    etag_of,
    statement_digest,
    tracked_tables,
    versioned_key,
)

PRIVATE = "private, no-cache"  # depends on the account; revalidated on each use (ETag)
NO_STORE = "no-store"
VARY = "Authorization, Cookie"
CACHE_HEADER = "X-Result-Cache"
MB = 1024 * 1024

# The tables each kind of analysis reads. Always admin_unit (every unit, area and placement;
# unit_at()/unit_now() hide their reads from the SQL) and unit_lineage (geo.placement,
# geo.eras: incidents of any date in today's units, 2009 populations interpolated).
UNITS = ("admin_unit", "unit_lineage")
# Incident analyses (heatmaps, Gi*, DBSCAN, trends, emerging hot spots): the incidents and
# the category list their filter is checked against.
INCIDENTS = (*UNITS, "incident", "incident_category")
# geo.coverage + geo.reach (reach_cache is a memo of security_model and admin_unit, which
# are here) and the model type list the rule is checked against.
COVERAGE = (*UNITS, "security_model", "model_rating", "model_type", "fire_group", "institution",
            "institution_year", "unit_year")
# The uncovered units ranked by need: coverage, then incidents per 1,000 residents.
UNCOVERED = (*COVERAGE, "incident", "incident_category")

# The code whose behaviour an answer depends on: a change to any of these files changes
# every key (read once per process).
_CODE = ("api/analytics.py", "api/resultcache.py", "layers/filters.py", "layers/sql.py", "geo")


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    root = Path(__file__).resolve().parent.parent
    h = hashlib.md5(usedforsecurity=False)
    for name in _CODE:
        path = root / name
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def role_class(principal: Principal) -> str:
    """What changes an answer about the role: exact points (police, admin) or aggregates."""
    return "points" if principal.sees_points else "aggregates"


def canonical(items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Query items sorted by name; values of a repeated name keep their order (the last
    one is the one read)."""
    return sorted(items, key=lambda kv: kv[0])


def request_digest(name: str, items: Iterable[tuple[str, str]], principal: Principal,
                   today: dt.date) -> str:
    """Everything but the data version that changes the answer of `name` to these items."""
    s = get_settings()
    return statement_digest("result", name, canonical(items), role_class(principal),
                            principal.scope_level, principal.scope_code, today.isoformat(),
                            s.suppress_below, s.min_public_hex_m, code_fingerprint())


@dataclass
class Context:
    """What an analysis may know of the cache while it computes (see `also`)."""

    principal: Principal
    today: dt.date
    version: int | None = None  # None: not cached (disabled, or a table without a version)
    extra: list[tuple[str, str, Entry]] = field(default_factory=list)  # (name, digest, entry)

    @property
    def storing(self) -> bool:
        return self.version is not None

    def also(self, name: str, items: Iterable[tuple[str, str]], entry: Entry) -> None:
        """Store `entry` as the answer of endpoint `name` to `items` (same caller, same
        tables, same version), with the analysis' own answer."""
        if self.storing:
            self.extra.append((name, request_digest(name, items, self.principal, self.today), entry))


def json_entry(content: Any, media_type: str = "application/json",
               headers: dict[str, str] | None = None) -> Entry:
    """A JSON answer as FastAPI would send it (JSONResponse: compact, UTF-8); a pydantic
    model serialised by pydantic itself (model_dump_json: the whole country's coverage, 22 MB,
    in 0.3 s, where model_dump + jsonable_encoder + json.dumps took 6 s; the same values)."""
    if isinstance(content, BaseModel):
        return Entry(content.model_dump_json(by_alias=True).encode(), media_type, headers or {})
    return Entry(JSONResponse(jsonable_encoder(content)).body, media_type, headers or {})


def _lookup(conn: Connection, digest: str, tables: tuple[str, ...],
            use_cache: bool) -> tuple[int, Entry | None]:
    """The data version and the entry under it (api.readroute.cache_lookup)."""
    version, payload = cache_lookup(conn, tables, digest, use_cache, resultcache.TABLE)
    return version, resultcache.entry_of(payload)


def fetch(conn: Connection, key: str) -> Entry | None:
    """The entry under a versioned `key`, for a caller that read the version itself (inside
    its own transaction: on the primary the lookup runs in a savepoint, so an unavailable
    cache cannot abort it; from a replica, on a short primary connection)."""
    if not is_replica(conn.engine):
        try:
            with conn.begin_nested():
                return resultcache.get_or_raise(conn, key)
        except DBAPIError:
            return None
    try:
        with autocommit_connection() as primary:
            return resultcache.get(primary, key)
    except DBAPIError:
        return None


def store(conn: Connection, version: int, entries: list[tuple[str, str, Entry]],
           max_bytes: int) -> None:
    """Store on the primary: the request's own connection (committed: an analysis writes
    nothing else) or, from a replica, a short autocommit one. Failures are skipped."""
    if not is_replica(conn.engine):
        for key, group, entry in entries:
            if not resultcache.put(conn, key, group, version, entry, max_bytes):
                continue
            try:
                conn.commit()
            except DBAPIError:
                resultcache.reset(conn)
        return
    try:
        with autocommit_connection() as primary:
            for key, group, entry in entries:
                resultcache.put(primary, key, group, version, entry, max_bytes)
    except DBAPIError:
        pass


def _respond(entry: Entry, headers: dict[str, str]) -> Response:
    return Response(entry.body, media_type=entry.media_type, headers=entry.headers | headers)


def cached(request: Request, principal: Principal, conn: Connection, today: dt.date, name: str,
           tables: tuple[str, ...], build: Callable[[Context], Entry],
           cache_control: str = PRIVATE) -> Response:
    """The answer of analysis `name` (which reads `tables`) to `request` by `principal` on
    `today` (Asia/Ho_Chi_Minh): from the shared cache, or `build(context)` stored there.
    Errors raised by `build` are never stored."""
    max_bytes = int(get_settings().result_cache_mb * MB)
    ctx = Context(principal, today)
    headers = {"Cache-Control": cache_control, "Vary": VARY}
    versioned = set(tables) <= tracked_tables(conn)
    asked = request.headers.get("if-none-match")
    digest = request_digest(name, request.query_params.multi_items(), principal, ctx.today)
    if versioned:
        version, entry = _lookup(conn, digest, tables, max_bytes > 0)
        headers["ETag"] = etag_of(versioned_key(digest, version))
        if etag_matches(asked, headers["ETag"]):
            return Response(status_code=304, headers=headers)
        if entry is not None:
            return _respond(entry, headers | {CACHE_HEADER: "hit"})
        headers[CACHE_HEADER] = "miss"
        if max_bytes > 0:
            ctx.version = version
    conn.info.pop(AUDITED, None)
    entry = build(ctx)
    if not versioned:  # no data version: an ETag of the bytes, and no shared cache
        headers["ETag"] = etag_of(hashlib.md5(entry.body, usedforsecurity=False).hexdigest())
        if etag_matches(asked, headers["ETag"]):
            return Response(status_code=304, headers=headers)
    elif ctx.version is not None and not conn.info.pop(AUDITED, False):
        tables_id = ",".join(sorted(tables))
        store(conn, ctx.version, [(versioned_key(d, ctx.version), f"{n}:{tables_id}", e)
                                   for n, d, e in [(name, digest, entry), *ctx.extra]], max_bytes)
    return _respond(entry, headers)
