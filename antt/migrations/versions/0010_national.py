"""National scale: an index on every foreign key that lacked one; incident re-placement (0006)
that stays linear in the number of changed units.

Why: deleting or re-keying a unit checks every table that references it. Without an index on
``fire_group.village_id`` (and the other unit columns of institutions, fire groups and launch
points) each deleted village scanned those tables whole: replacing the national demo's 30,000
villages took 19 minutes in the delete alone. The same columns are what the per-unit
aggregates group by.

Why the re-placement changed: 0006's statement trigger on updates joined its OLD and NEW
transition tables, which have no statistics, by a nested loop, and ``refresh_incident_places``
tested ``= ANY(unit_ids)`` per incident. Both are quadratic: setting the parent of the national
demo's 30,000 villages ran for over 16 minutes in the trigger alone (the tuplestore re-read from
disk once per row). Now the two transition tables are joined by hash (the trigger function
turns nested loops off for its one query), both arrays are built in that one pass, and unit ids
are looked up in a hashed set. When there are no incidents at all there is nothing to do.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

FK_INDEXES = (
    ("institution", "commune_id"), ("institution", "village_id"),
    ("fire_group", "commune_id"), ("fire_group", "village_id"),
    ("launch_point", "commune_id"), ("launch_point", "village_id"),
    ("security_model", "institution_id"), ("security_model", "type_code"),
    ("api_key", "user_id"),
)


# 0006's function, with unit ids in a hashed set and an early exit when there are no incidents.
REFRESH = """
CREATE OR REPLACE FUNCTION refresh_incident_places(unit_ids integer[], boxes geometry[]) RETURNS bigint
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    n bigint;
BEGIN
    IF (unit_ids IS NOT NULL AND cardinality(unit_ids) = 0) OR NOT EXISTS (SELECT 1 FROM incident) THEN
        RETURN 0;
    END IF;
    WITH ids AS MATERIALIZED (SELECT DISTINCT unnest(unit_ids) AS id),
    cand AS MATERIALIZED (
        SELECT i.id, i.geom, (i.occurred_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS d
        FROM incident i WHERE unit_ids IS NULL
        UNION
        SELECT i.id, i.geom, (i.occurred_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
        FROM unnest(boxes) AS b(g) JOIN incident i ON i.geom && b.g
        WHERE unit_ids IS NOT NULL
        UNION
        SELECT i.id, i.geom, (i.occurred_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
        FROM incident i
        WHERE unit_ids IS NOT NULL AND (i.commune_id IN (SELECT id FROM ids)
              OR i.village_id IN (SELECT id FROM ids) OR i.commune_now_id IN (SELECT id FROM ids)
              OR i.village_now_id IN (SELECT id FROM ids))
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
               coalesce(p.ce, CASE WHEN i.commune_id IN (SELECT id FROM ids) THEN NULL
                                   ELSE i.commune_id END) AS commune_id,
               coalesce(p.ve, CASE WHEN i.village_id IN (SELECT id FROM ids) THEN NULL
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

ON_UPDATE = """
CREATE OR REPLACE FUNCTION admin_unit_placed_update() RETURNS trigger
LANGUAGE plpgsql SET enable_nestloop = off AS $$
DECLARE
    ids integer[];
    boxes geometry[];
BEGIN
    WITH changed AS MATERIALIZED (
        SELECT n.id, ST_Envelope(o.geom) AS old_box, ST_Envelope(n.geom) AS new_box
        FROM new_units n JOIN old_units o ON o.id = n.id
        WHERE (n.level IN ('commune', 'village') OR o.level IN ('commune', 'village'))
          AND (n.geom IS DISTINCT FROM o.geom OR n.valid_from IS DISTINCT FROM o.valid_from
               OR n.valid_to IS DISTINCT FROM o.valid_to OR n.code IS DISTINCT FROM o.code
               OR n.level IS DISTINCT FROM o.level))
    SELECT array_agg(id),
           array_agg(old_box) FILTER (WHERE old_box IS NOT NULL)
           || array_agg(new_box) FILTER (WHERE new_box IS NOT NULL)
    INTO ids, boxes FROM changed;
    IF cardinality(ids) > 0 THEN
        PERFORM refresh_incident_places(ids, coalesce(boxes, '{}'));
    END IF;
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    for table, column in FK_INDEXES:
        op.execute(f"CREATE INDEX IF NOT EXISTS {table}_{column}_idx ON {table} ({column})")
    op.execute(REFRESH)
    op.execute(ON_UPDATE)


def downgrade() -> None:
    # 0006's bodies are correct, only slower: restore them.
    import importlib

    merger = importlib.import_module("antt.migrations.versions.0006_merger")
    op.execute(merger.REFRESH.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
    op.execute(merger.ON_UPDATE.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
    for table, column in FK_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {table}_{column}_idx")
