"""Importer support.

* launch_point.external_id: a re-import of launch points updates, never duplicates.
* admin_unit_parts_refresh(): same behaviour as 0001, faster. 0001 wrote
  ``SELECT NEW.id, (ST_Dump(ST_Subdivide(NEW.geom, 255))).geom``; inside PL/pgSQL that form
  took ~60 ms per Hải Phòng commune (7 s for 114), the set-returning call in FROM takes ~5 ms
  (measured: 4.25 s -> 0.62 s for 114 full-resolution communes), which is what makes loading
  3,321 full-resolution communes fit in a minute.

Revision ID: 0003a
Revises: 0002
Create Date: 2026-11-22
"""

from alembic import op

revision = "0003a"
down_revision = "0002"
branch_labels = None
depends_on = None

FAST_REFRESH = """
CREATE OR REPLACE FUNCTION admin_unit_parts_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM admin_unit_part WHERE unit_id = NEW.id;
    IF NEW.geom IS NOT NULL THEN
        INSERT INTO admin_unit_part (unit_id, geom)
        SELECT NEW.id, part FROM ST_Subdivide(NEW.geom, 255) AS part;
    END IF;
    RETURN NULL;
END $$;
"""

SLOW_REFRESH = """
CREATE OR REPLACE FUNCTION admin_unit_parts_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM admin_unit_part WHERE unit_id = NEW.id;
    IF NEW.geom IS NOT NULL THEN
        INSERT INTO admin_unit_part (unit_id, geom)
        SELECT NEW.id, (ST_Dump(ST_Subdivide(NEW.geom, 255))).geom;
    END IF;
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute("ALTER TABLE launch_point ADD COLUMN external_id text UNIQUE")
    op.execute(FAST_REFRESH)


def downgrade() -> None:
    op.execute(SLOW_REFRESH)
    op.execute("ALTER TABLE launch_point DROP COLUMN external_id")
