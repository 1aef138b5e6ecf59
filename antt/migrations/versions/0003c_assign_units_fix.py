"""assign_units(): evaluate NEW.occurred_at only for incidents.

PL/pgSQL plans a CASE expression as a whole, so 0001's
``CASE TG_TABLE_NAME WHEN 'incident' THEN NEW.occurred_at ... END`` failed with
'record "new" has no field "occurred_at"' on every insert into security_model, fire_group,
institution and launch_point. An IF statement is planned only when its branch runs.

Revision ID: 0003c
Revises: 0002
Create Date: 2026-11-22
"""

from alembic import op

revision = "0003c"
down_revision = "0002"
branch_labels = None
depends_on = None

ASSIGN_UNITS = """
CREATE OR REPLACE FUNCTION assign_units() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    on_date date := current_date;
BEGIN
    IF NEW.geom IS NULL THEN
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


def upgrade() -> None:
    op.execute(ASSIGN_UNITS)


def downgrade() -> None:
    # Deliberately no-op: restoring 0001's body would bring the bug back; the fixed body is
    # correct for 0001's tables too.
    pass
