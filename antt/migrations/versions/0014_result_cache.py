"""``result_cache``: analysis responses shared by all workers, never stale.

Why: whole-country and province analyses (coverage per commune, KDE heatmaps, Gi* hot spots)
take seconds and were computed again on every request even when no data had changed; the
heatmap's PNG recomputed the density its ``heatmap.json`` had just computed. Built like
``tile_cache`` (migration 0007): UNLOGGED (no WAL, emptied after a crash, not sent to
replicas: only ever read and written on the primary), keyed by a hash of everything the answer
depends on (endpoint, query, the caller's role class and scope, today's date) under the data
version of the tables the analysis reads, so a write makes older entries unreachable; older
versions of a group are deleted when a newer one is stored, and the oldest entries go past
ANTT_RESULT_CACHE_MB (api/resultcache.py, layers/resultcache.py).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

SQL = """
CREATE UNLOGGED TABLE IF NOT EXISTS result_cache (
    key        uuid PRIMARY KEY,    -- md5 of endpoint, query, role class, scope, day, ..., version
    grp        text NOT NULL,       -- endpoint and the tables its version covers
    version    bigint NOT NULL,     -- antt_data_version of those tables
    media_type text NOT NULL,
    body       bytea NOT NULL,
    headers    jsonb NOT NULL DEFAULT '{}'::jsonb,  -- the response's own headers (X-Bounds, ...)
    size_bytes integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS result_cache_created_idx ON result_cache (created_at);
CREATE INDEX IF NOT EXISTS result_cache_grp_idx ON result_cache (grp, version);
"""


def upgrade() -> None:
    op.execute(SQL)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS result_cache")
