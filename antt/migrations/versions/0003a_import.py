"""Importer support.

* launch_point.external_id: a re-import of launch points updates, never duplicates.
* admin_unit_parts_refresh(): same behaviour as 0001, faster. 0001 wrote
  ``SELECT NEW.id, (ST_Dump(ST_Subdivide(NEW.geom, 255))).geom``; inside PL/pgSQL that form
  took ~60 ms per Hải Phòng commune (7 s for 114), the set-returning call in FROM takes ~5 ms
  (measured: 4.25 s -> 0.62 s for 114 full-resolution communes), which is what makes loading
  3,321 full-resolution communes fit in a minute.
* The admin_unit_part refresh fires on UPDATE only when the geometry really changed
  (``OLD.geom IS DISTINCT FROM NEW.geom``, exact coordinate equality in PostGIS 3), so a
  second import of the same boundaries does not subdivide 3,321 communes again.
* assign_units(): 0003c's body, plus: when the writer says it has already assigned commune and
  village set-based (``SET LOCAL antt.units_assigned = 'on'``, transaction-scoped), the trigger
  returns at once. Without this, every row whose point lies in no village still paid one
  unit_at() call (a NULL village_id means "assign me"): measured ~0.5 ms per row, i.e. about
  half of a 100,000-incident import. Runs after 0003c (depends_on) so it keeps 0003c's fix.

Revision ID: 0003a
Revises: 0003c
Create Date: 2026-11-22
"""

from alembic import op

revision = "0003a"
down_revision = "0003c"
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


ASSIGN_UNITS_BODY = """
CREATE OR REPLACE FUNCTION assign_units() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    on_date date := current_date;
BEGIN
    IF NEW.geom IS NULL {skip} THEN
        RETURN NEW;
    END IF;
    IF TG_TABLE_NAME = 'incident' THEN
        on_date := (NEW.occurred_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date;
    END IF;
    IF TG_OP = 'INSERT' OR NEW.geom IS DISTINCT FROM OLD.geom THEN
        IF TG_OP = 'UPDATE' OR NEW.commune_id IS NULL THEN
            NEW.commune_id := unit_at(NEW.geom, 'commune', on_date);
        END IF;
        IF TG_OP = 'UPDATE' OR NEW.village_id IS NULL THEN
            NEW.village_id := unit_at(NEW.geom, 'village', on_date);
        END IF;
    END IF;
    RETURN NEW;
END $$;
"""
SKIP = "OR current_setting('antt.units_assigned', true) = 'on'"


def upgrade() -> None:
    op.execute("ALTER TABLE launch_point ADD COLUMN external_id text UNIQUE")
    op.execute(FAST_REFRESH)
    op.execute(ASSIGN_UNITS_BODY.format(skip=SKIP))
    op.execute("DROP TRIGGER admin_unit_parts ON admin_unit")
    op.execute("CREATE TRIGGER admin_unit_parts AFTER INSERT ON admin_unit "
               "FOR EACH ROW EXECUTE FUNCTION admin_unit_parts_refresh()")
    op.execute("CREATE TRIGGER admin_unit_parts_update AFTER UPDATE OF geom ON admin_unit "
               "FOR EACH ROW WHEN (OLD.geom IS DISTINCT FROM NEW.geom) "
               "EXECUTE FUNCTION admin_unit_parts_refresh()")


def downgrade() -> None:
    op.execute("DROP TRIGGER admin_unit_parts_update ON admin_unit")
    op.execute("DROP TRIGGER admin_unit_parts ON admin_unit")
    op.execute("CREATE TRIGGER admin_unit_parts AFTER INSERT OR UPDATE OF geom ON admin_unit "
               "FOR EACH ROW EXECUTE FUNCTION admin_unit_parts_refresh()")
    op.execute(ASSIGN_UNITS_BODY.format(skip=""))
    op.execute(SLOW_REFRESH)
    op.execute("ALTER TABLE launch_point DROP COLUMN external_id")
