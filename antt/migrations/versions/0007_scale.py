"""Stateless workers: shared state in PostgreSQL (issue 12).

- ``login_failure``: the failed-login window (api/ratelimit.py), one row per failed (or
  pending) attempt and key, so the limit is the same whatever the number of workers or hosts.
- ``antt_accounts`` notifications: any change to ``app_user`` or ``api_key`` (API, CLI, psql)
  sends NOTIFY at commit; every worker listens and drops its short principal cache
  (api/deps.py), so a disabled account or a revoked key is refused at once everywhere.
- Data versions: ``data_version`` + ``data_change``, written by statement-level triggers on
  every table a layer reads. ``antt_data_version(tables)`` is a number that grows with every
  committed write statement on those tables; HTTP ETags and the shared tile cache key on it.
  Writers only INSERT a ``data_change`` row (no shared row is locked, so a long import never
  blocks edits of the same table); now and then a writer folds the committed rows into the
  per-table counter (``FOR UPDATE SKIP LOCKED``: it never waits). A reader sees either a row or
  its folded count, never both nor neither, because the fold deletes and adds in one
  transaction. ``antt_track_changes('table')`` adds the trigger to a new table.
- ``tile_cache``: the server-side vector tile cache shared by all workers. UNLOGGED (no WAL:
  a cache need not survive a crash, and it is not sent to replicas; it is only ever read and
  written on the primary). Keyed by a hash of everything the tile depends on, the data
  version included, so a write makes old entries unreachable; bounded by ANTT_TILE_CACHE_MB.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Every table a layer, an aggregate or an analysis reads (layers/versions.py keeps the same list;
# tests/api/test_versions_caching.py checks the two agree and that every layer's SQL is covered).
TRACKED = ("admin_unit", "unit_lineage", "model_type", "institution", "institution_year",
           "unit_year", "security_model", "model_rating", "fire_group", "incident_category",
           "incident", "launch_point")

SQL = """
CREATE TABLE login_failure (
    id  bigserial PRIMARY KEY,
    key text NOT NULL,                 -- 'user:alice', 'ip:10.0.0.1'
    at  double precision NOT NULL      -- seconds since the epoch (the limiter's clock)
);
CREATE INDEX login_failure_key_idx ON login_failure (key, at);

CREATE FUNCTION antt_accounts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('antt_accounts', TG_TABLE_NAME);  -- delivered at commit, once per tx
    RETURN NULL;
END $$;
CREATE TRIGGER app_user_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON app_user
    FOR EACH STATEMENT EXECUTE FUNCTION antt_accounts_changed();
CREATE TRIGGER api_key_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_key
    FOR EACH STATEMENT EXECUTE FUNCTION antt_accounts_changed();

CREATE TABLE data_version (
    tbl text PRIMARY KEY,
    n   bigint NOT NULL DEFAULT 0      -- committed write statements folded in
);
CREATE TABLE data_change (
    id  bigserial PRIMARY KEY,
    tbl text NOT NULL,
    at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX data_change_tbl_idx ON data_change (tbl);

CREATE FUNCTION antt_fold_changes(t text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM data_version WHERE tbl = t FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN;  -- someone else is folding this table (or it is not tracked): never wait
    END IF;
    WITH gone AS (DELETE FROM data_change WHERE tbl = t RETURNING 1)
    UPDATE data_version SET n = n + (SELECT count(*) FROM gone) WHERE tbl = t;
END $$;

CREATE FUNCTION antt_data_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO data_change (tbl) VALUES (TG_TABLE_NAME);
    IF random() < 0.05 THEN
        PERFORM antt_fold_changes(TG_TABLE_NAME);
    END IF;
    RETURN NULL;
END $$;

-- The version of a set of tables: sum of monotone counters, so it grows on every change.
CREATE FUNCTION antt_data_version(tables text[]) RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT sum(n) FROM data_version WHERE tbl = ANY(tables)), 0)::bigint
         + (SELECT count(*) FROM data_change WHERE tbl = ANY(tables))
$$;

CREATE FUNCTION antt_track_changes(t regclass) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    name text := (SELECT relname FROM pg_class WHERE oid = t);
BEGIN
    INSERT INTO data_version (tbl) VALUES (name) ON CONFLICT DO NOTHING;
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION antt_data_changed()',
                   name || '_data_version', t);
END $$;

CREATE UNLOGGED TABLE tile_cache (
    key            uuid PRIMARY KEY,   -- md5 of layer, z/x/y, role class, scope, query, day, version
    layer          text NOT NULL,
    version        bigint NOT NULL,
    data           bytea NOT NULL,
    features       integer NOT NULL,
    generalisation text NOT NULL,
    size_bytes     integer NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tile_cache_created_idx ON tile_cache (created_at);
CREATE INDEX tile_cache_layer_idx ON tile_cache (layer, version);
"""


def upgrade() -> None:
    op.execute(SQL)
    for table in TRACKED:
        op.execute(f"SELECT antt_track_changes('{table}')")


def downgrade() -> None:
    for table in TRACKED:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_data_version ON {table}")
    op.execute("DROP TRIGGER IF EXISTS app_user_changed ON app_user")
    op.execute("DROP TRIGGER IF EXISTS api_key_changed ON api_key")
    op.execute("DROP TABLE IF EXISTS tile_cache, data_change, data_version, login_failure")
    op.execute("DROP FUNCTION IF EXISTS antt_track_changes(regclass), antt_data_version(text[]), "
               "antt_data_changed(), antt_fold_changes(text), antt_accounts_changed()")
