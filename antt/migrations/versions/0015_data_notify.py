"""``antt_data`` notifications: every write to a tracked table tells the API workers at once.

Why: each worker keeps an in-process memo of vector tiles (api/tiles.py, layers/versionwatch.py)
that must not outlive the data under it. The statement-level trigger of every tracked table
(migration 0007, ``antt_data_changed``) now also sends ``pg_notify('antt_data', table)``,
delivered at commit (never for a rolled-back write) and once per table and transaction
(PostgreSQL folds equal notifications of one transaction). Every worker listens and drops the
memo entries over that table.

``antt_data_version(text[])`` becomes plpgsql with the same body: its plan is then prepared
once per session instead of planned on every call (the tile path asks for it on every miss).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

DATA_CHANGED = """
CREATE OR REPLACE FUNCTION antt_data_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO data_change (tbl) VALUES (TG_TABLE_NAME);
    IF random() < 0.05 THEN
        PERFORM antt_fold_changes(TG_TABLE_NAME);
    END IF;{notify}
    RETURN NULL;
END $$;
"""
NOTIFY = """
    PERFORM pg_notify('antt_data', TG_TABLE_NAME);  -- delivered at commit, once per table and tx"""

VERSION_PLPGSQL = """
CREATE OR REPLACE FUNCTION antt_data_version(tables text[]) RETURNS bigint LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN coalesce((SELECT sum(n) FROM data_version WHERE tbl = ANY(tables)), 0)::bigint
         + (SELECT count(*) FROM data_change WHERE tbl = ANY(tables));
END $$;
"""
VERSION_SQL = """
CREATE OR REPLACE FUNCTION antt_data_version(tables text[]) RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT sum(n) FROM data_version WHERE tbl = ANY(tables)), 0)::bigint
         + (SELECT count(*) FROM data_change WHERE tbl = ANY(tables))
$$;
"""


def upgrade() -> None:
    op.execute(DATA_CHANGED.format(notify=NOTIFY))
    op.execute(VERSION_PLPGSQL)


def downgrade() -> None:
    op.execute(DATA_CHANGED.format(notify=""))  # the body of migration 0007
    op.execute(VERSION_SQL)
