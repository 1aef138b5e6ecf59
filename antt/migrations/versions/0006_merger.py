"""Every incident counted across the 2025 merger (issue 13).

An incident keeps the units valid on its date (``commune_id``, ``village_id``: a pre-2025
commune for an incident of 2024) and is also placed, by location, in today's units
(``commune_now_id``, ``village_now_id``). "Today's units" are the open-ended ones
(``valid_to IS NULL``): the current map, whatever the date, so the placement never goes stale
by the mere passage of time; it changes only when units change, and then it is re-filled:

* ``unit_now(p, level, hint)``: ``unit_at``'s tie-break (interior beats boundary, then the
  smallest code) among the open-ended units; ``hint`` (the unit the writer or ``unit_at`` gave
  for the incident's date) is taken as is when it is itself open-ended, which saves the lookup
  for every incident of the current era.
* ``assign_units()`` (the per-row trigger) fills the two columns on insert and when the point
  moves, unless the writer placed the rows set-based (``antt.units_assigned``, 0003a; the
  importer then fills them itself).
* Statement-level triggers on ``admin_unit`` (insert, update of geometry/validity/code/level,
  delete) call ``refresh_incident_places(unit_ids, boxes)``: the incidents inside the changed
  communes and villages (their old and new boxes) or pointing at them are placed again,
  set-based, for both the era columns and the today columns. So loading boundaries or villages
  after the incidents, re-importing them, or replacing the demo keeps every incident placed.
  An era column set by a writer to a unit without geometry is kept unless that unit changed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UNIT_NOW = """
CREATE FUNCTION unit_now(p geometry, unit_level text, hint integer DEFAULT NULL) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT h.id FROM admin_unit h
         WHERE h.id = hint AND h.level = unit_level AND h.valid_to IS NULL),
        (SELECT u.id
         FROM admin_unit_part pt JOIN admin_unit u ON u.id = pt.unit_id
         WHERE u.level = unit_level AND u.valid_to IS NULL AND ST_Intersects(pt.geom, p)
         ORDER BY ST_Contains(pt.geom, p) AND NOT ST_Touches(pt.geom, p) DESC, u.code
         LIMIT 1))
$$;
"""

ASSIGN_UNITS = """
CREATE OR REPLACE FUNCTION assign_units() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    on_date date := current_date;
    moved boolean;
BEGIN
    IF NEW.geom IS NULL OR current_setting('antt.units_assigned', true) = 'on' THEN
        RETURN NEW;
    END IF;
    IF TG_TABLE_NAME = 'incident' THEN
        on_date := (NEW.occurred_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date;
    END IF;
    moved := TG_OP = 'INSERT' OR NEW.geom IS DISTINCT FROM OLD.geom;
    IF moved THEN
        IF TG_OP = 'UPDATE' OR NEW.commune_id IS NULL THEN
            NEW.commune_id := unit_at(NEW.geom, 'commune', on_date);
        END IF;
        IF TG_OP = 'UPDATE' OR NEW.village_id IS NULL THEN
            NEW.village_id := unit_at(NEW.geom, 'village', on_date);
        END IF;
    END IF;
    -- An IF branch is planned only when it runs: other tables have no *_now_id (see 0003c).
    IF moved AND TG_TABLE_NAME = 'incident' THEN
        IF TG_OP = 'UPDATE' OR NEW.commune_now_id IS NULL THEN
            NEW.commune_now_id := unit_now(NEW.geom, 'commune', NEW.commune_id);
        END IF;
        IF TG_OP = 'UPDATE' OR NEW.village_now_id IS NULL THEN
            NEW.village_now_id := unit_now(NEW.geom, 'village', NEW.village_id);
        END IF;
    END IF;
    RETURN NEW;
END $$;
"""

# 0003a's body (restored on downgrade).
ASSIGN_UNITS_0003A = """
CREATE OR REPLACE FUNCTION assign_units() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    on_date date := current_date;
BEGIN
    IF NEW.geom IS NULL OR current_setting('antt.units_assigned', true) = 'on' THEN
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

# Set-based re-placement of the incidents near changed units. unit_ids NULL and boxes NULL:
# every incident (the backfill). One join of the candidates against the subdivided parts of
# every commune and village, then the best unit per incident and column with unit_at's order.
REFRESH = """
CREATE FUNCTION refresh_incident_places(unit_ids integer[], boxes geometry[]) RETURNS bigint
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    n bigint;
BEGIN
    IF unit_ids IS NOT NULL AND cardinality(unit_ids) = 0 THEN
        RETURN 0;
    END IF;
    WITH cand AS MATERIALIZED (
        SELECT i.id, i.geom, (i.occurred_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS d
        FROM incident i WHERE unit_ids IS NULL
        UNION
        SELECT i.id, i.geom, (i.occurred_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
        FROM unnest(boxes) AS b(g) JOIN incident i ON i.geom && b.g
        WHERE unit_ids IS NOT NULL
        UNION
        SELECT i.id, i.geom, (i.occurred_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
        FROM incident i
        WHERE unit_ids IS NOT NULL AND (i.commune_id = ANY(unit_ids) OR i.village_id = ANY(unit_ids)
              OR i.commune_now_id = ANY(unit_ids) OR i.village_now_id = ANY(unit_ids))
    ),
    hits AS MATERIALIZED (
        SELECT x.id, x.uid, x.level, x.code, x.valid_to IS NULL AS is_now,
               x.valid_from <= x.d AND (x.valid_to IS NULL OR x.d < x.valid_to) AS is_era,
               ST_Contains(x.g, x.p) AS inside
        -- OFFSET 0: the point-in-polygon test runs after the level filter, not on the parts
        -- of provinces and districts too (~40 % fewer tests)
        FROM (SELECT c.id, c.geom AS p, c.d, pt.geom AS g, u.id AS uid, u.level, u.code,
                     u.valid_from, u.valid_to
              FROM cand c JOIN admin_unit_part pt ON pt.geom && c.geom
              JOIN admin_unit u ON u.id = pt.unit_id AND u.level IN ('commune', 'village')
              OFFSET 0) x
        WHERE ST_Intersects(x.g, x.p)
    ),
    ce AS (SELECT DISTINCT ON (id) id, uid FROM hits WHERE level = 'commune' AND is_era
           ORDER BY id, inside DESC, code),
    ve AS (SELECT DISTINCT ON (id) id, uid FROM hits WHERE level = 'village' AND is_era
           ORDER BY id, inside DESC, code),
    cn AS (SELECT DISTINCT ON (id) id, uid FROM hits WHERE level = 'commune' AND is_now
           ORDER BY id, inside DESC, code),
    vn AS (SELECT DISTINCT ON (id) id, uid FROM hits WHERE level = 'village' AND is_now
           ORDER BY id, inside DESC, code),
    placed AS (
        SELECT c.id, ce.uid AS ce, ve.uid AS ve, cn.uid AS cn, vn.uid AS vn
        FROM cand c LEFT JOIN ce ON ce.id = c.id LEFT JOIN ve ON ve.id = c.id
        LEFT JOIN cn ON cn.id = c.id LEFT JOIN vn ON vn.id = c.id
    ),
    new AS (
        SELECT i.id,
               coalesce(p.ce, CASE WHEN i.commune_id = ANY(coalesce(unit_ids, '{}')) THEN NULL
                                   ELSE i.commune_id END) AS commune_id,
               coalesce(p.ve, CASE WHEN i.village_id = ANY(coalesce(unit_ids, '{}')) THEN NULL
                                   ELSE i.village_id END) AS village_id,
               p.cn AS commune_now_id, p.vn AS village_now_id
        FROM placed p JOIN incident i ON i.id = p.id
    )
    UPDATE incident i SET commune_id = new.commune_id, village_id = new.village_id,
                          commune_now_id = new.commune_now_id, village_now_id = new.village_now_id
    FROM new
    WHERE i.id = new.id
      AND (i.commune_id, i.village_id, i.commune_now_id, i.village_now_id)
          IS DISTINCT FROM (new.commune_id, new.village_id, new.commune_now_id, new.village_now_id);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
"""

# Only communes and villages place incidents; an update matters when it moves, re-dates,
# re-codes (tie-break) or re-levels a unit.
CHANGED = "u.level IN ('commune', 'village')"

ON_INSERT = f"""
CREATE FUNCTION admin_unit_placed_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM refresh_incident_places(
        ARRAY(SELECT u.id FROM new_units u WHERE {CHANGED}),
        ARRAY(SELECT ST_Envelope(u.geom) FROM new_units u WHERE {CHANGED} AND u.geom IS NOT NULL));
    RETURN NULL;
END $$;
"""

ON_UPDATE = """
CREATE FUNCTION admin_unit_placed_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids integer[];
BEGIN
    ids := ARRAY(
        SELECT n.id FROM new_units n JOIN old_units o ON o.id = n.id
        WHERE (n.level IN ('commune', 'village') OR o.level IN ('commune', 'village'))
          AND (n.geom IS DISTINCT FROM o.geom OR n.valid_from IS DISTINCT FROM o.valid_from
               OR n.valid_to IS DISTINCT FROM o.valid_to OR n.code IS DISTINCT FROM o.code
               OR n.level IS DISTINCT FROM o.level));
    IF cardinality(ids) > 0 THEN
        PERFORM refresh_incident_places(ids, ARRAY(
            SELECT ST_Envelope(o.geom) FROM old_units o WHERE o.id = ANY(ids) AND o.geom IS NOT NULL
            UNION ALL
            SELECT ST_Envelope(n.geom) FROM new_units n WHERE n.id = ANY(ids) AND n.geom IS NOT NULL));
    END IF;
    RETURN NULL;
END $$;
"""

ON_DELETE = f"""
CREATE FUNCTION admin_unit_placed_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM refresh_incident_places(
        ARRAY(SELECT u.id FROM old_units u WHERE {CHANGED}),
        ARRAY(SELECT ST_Envelope(u.geom) FROM old_units u WHERE {CHANGED} AND u.geom IS NOT NULL));
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute("""
        ALTER TABLE incident
            ADD COLUMN commune_now_id integer REFERENCES admin_unit(id) ON DELETE SET NULL,
            ADD COLUMN village_now_id integer REFERENCES admin_unit(id) ON DELETE SET NULL""")
    op.execute("CREATE INDEX incident_commune_now_idx ON incident (commune_now_id, occurred_at)")
    op.execute("CREATE INDEX incident_village_now_idx ON incident (village_now_id, occurred_at)")
    op.execute(UNIT_NOW)
    op.execute(ASSIGN_UNITS)
    op.execute(REFRESH)
    op.execute(ON_INSERT)
    op.execute(ON_UPDATE)
    op.execute(ON_DELETE)
    op.execute("CREATE TRIGGER admin_unit_placed_insert AFTER INSERT ON admin_unit "
               "REFERENCING NEW TABLE AS new_units FOR EACH STATEMENT "
               "EXECUTE FUNCTION admin_unit_placed_insert()")
    op.execute("CREATE TRIGGER admin_unit_placed_update AFTER UPDATE ON admin_unit "
               "REFERENCING OLD TABLE AS old_units NEW TABLE AS new_units FOR EACH STATEMENT "
               "EXECUTE FUNCTION admin_unit_placed_update()")
    op.execute("CREATE TRIGGER admin_unit_placed_delete AFTER DELETE ON admin_unit "
               "REFERENCING OLD TABLE AS old_units FOR EACH STATEMENT "
               "EXECUTE FUNCTION admin_unit_placed_delete()")
    op.execute("SELECT refresh_incident_places(NULL, NULL)")  # incidents already stored


def downgrade() -> None:
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER admin_unit_placed_{event} ON admin_unit")
        op.execute(f"DROP FUNCTION admin_unit_placed_{event}()")
    op.execute("DROP FUNCTION refresh_incident_places(integer[], geometry[])")
    op.execute(ASSIGN_UNITS_0003A)
    op.execute("DROP FUNCTION unit_now(geometry, text, integer)")
    op.execute("ALTER TABLE incident DROP COLUMN village_now_id, DROP COLUMN commune_now_id")
