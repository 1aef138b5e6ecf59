"""The data model: units with validity dates, lineage, models, fire groups, incidents,
institutions, launch points, accounts and the audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Vietnam's extent, including Hoàng Sa and Trường Sa: every geometry must lie inside it.
VN_EXTENT = "ST_MakeEnvelope(102.0, 6.0, 118.0, 23.5, 4326)"

VN2000_MISSING = range(9205, 9219)  # provincial TM-3 zones that PostGIS 3.3 lacks

SCHEMA = f"""
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Units of every level in one table, versioned by date: [valid_from, valid_to).
CREATE TABLE admin_unit (
    id            serial PRIMARY KEY,
    level         text NOT NULL CHECK (level IN ('province', 'district', 'commune', 'village')),
    code          text NOT NULL,
    kind          text,
    name          text NOT NULL,
    full_name     text,
    name_search   text NOT NULL,
    parent_id     integer REFERENCES admin_unit(id) ON DELETE SET NULL,
    province_code text,
    population    integer CHECK (population IS NULL OR population >= 0),
    households    integer CHECK (households IS NULL OR households >= 0),
    valid_from    date NOT NULL DEFAULT '-infinity',
    valid_to      date,
    source        text,
    is_demo       boolean NOT NULL DEFAULT false,
    is_synthetic  boolean NOT NULL DEFAULT false,
    geom          geometry(MultiPolygon, 4326),
    CONSTRAINT admin_unit_valid_range CHECK (valid_to IS NULL OR valid_to > valid_from),
    CONSTRAINT admin_unit_geom_valid CHECK (geom IS NULL OR (ST_IsValid(geom) AND NOT ST_IsEmpty(geom))),
    CONSTRAINT admin_unit_geom_in_vn CHECK (geom IS NULL OR ST_CoveredBy(geom, {VN_EXTENT})),
    CONSTRAINT admin_unit_code_era UNIQUE (level, code, valid_from)
);
CREATE INDEX admin_unit_geom_idx ON admin_unit USING gist (geom);
CREATE INDEX admin_unit_level_idx ON admin_unit (level, valid_from, valid_to);
CREATE INDEX admin_unit_parent_idx ON admin_unit (parent_id);
CREATE INDEX admin_unit_search_idx ON admin_unit USING gin (name_search gin_trgm_ops);

-- Subdivided polygons (<= 255 vertices each) make point-in-polygon fast on full-res data.
CREATE TABLE admin_unit_part (
    unit_id integer NOT NULL REFERENCES admin_unit(id) ON DELETE CASCADE,
    geom    geometry(Polygon, 4326) NOT NULL
);
CREATE INDEX admin_unit_part_geom_idx ON admin_unit_part USING gist (geom);
CREATE INDEX admin_unit_part_unit_idx ON admin_unit_part (unit_id);

CREATE FUNCTION admin_unit_parts_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM admin_unit_part WHERE unit_id = NEW.id;
    IF NEW.geom IS NOT NULL THEN
        INSERT INTO admin_unit_part (unit_id, geom)
        SELECT NEW.id, (ST_Dump(ST_Subdivide(NEW.geom, 255))).geom;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER admin_unit_parts AFTER INSERT OR UPDATE OF geom ON admin_unit
    FOR EACH ROW EXECUTE FUNCTION admin_unit_parts_refresh();

-- The unit of a level that holds a point on a date. Tie-break on shared boundaries and
-- overlapping slivers: a unit whose interior holds the point wins over one whose boundary
-- touches it; among equals, the smallest official code wins. Deterministic by construction.
CREATE FUNCTION unit_at(p geometry, unit_level text, on_date date) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT u.id
    FROM admin_unit_part pt JOIN admin_unit u ON u.id = pt.unit_id
    WHERE u.level = unit_level AND ST_Intersects(pt.geom, p)
      AND u.valid_from <= on_date AND (u.valid_to IS NULL OR on_date < u.valid_to)
    ORDER BY ST_Contains(pt.geom, p) AND NOT ST_Touches(pt.geom, p) DESC, u.code
    LIMIT 1
$$;

-- Old -> new units of the 1 July 2025 reorganisation. A partial row means the old unit was
-- split; area_share is the share of the old unit's area inside the new one (for apportioning).
CREATE TABLE unit_lineage (
    id           serial PRIMARY KEY,
    old_level    text NOT NULL,
    old_code     text NOT NULL,
    old_name     text,
    new_level    text NOT NULL,
    new_code     text NOT NULL,
    new_name     text,
    merge_type   text NOT NULL CHECK (merge_type IN ('full', 'partial')),
    area_share   double precision CHECK (area_share IS NULL OR (area_share >= 0 AND area_share <= 1)),
    effective_on date NOT NULL DEFAULT '2025-07-01',
    source       text,
    CONSTRAINT unit_lineage_pair UNIQUE (old_level, old_code, new_level, new_code, effective_on)
);
CREATE INDEX unit_lineage_new_idx ON unit_lineage (new_code);

-- Editable catalogue of model types.
CREATE TABLE model_type (
    code      text PRIMARY KEY,
    name_vi   text NOT NULL,
    name_en   text NOT NULL,
    icon      text NOT NULL DEFAULT 'shield',
    host_kind text NOT NULL DEFAULT 'village' CHECK (host_kind IN ('village', 'institution', 'any'))
);

CREATE TABLE institution (
    id          serial PRIMARY KEY,
    external_id text UNIQUE,
    kind        text NOT NULL CHECK (kind IN ('agency', 'enterprise', 'school')),
    name        text NOT NULL,
    commune_id  integer REFERENCES admin_unit(id),
    village_id  integer REFERENCES admin_unit(id),
    is_demo     boolean NOT NULL DEFAULT false,
    version     integer NOT NULL DEFAULT 1,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    geom        geometry(Point, 4326) NOT NULL,
    CONSTRAINT institution_geom_in_vn CHECK (ST_Within(geom, {VN_EXTENT}))
);
CREATE INDEX institution_geom_idx ON institution USING gist (geom);

-- The yearly "An toàn về ANTT" result (Circular 124/2021) and the 19/8 festival.
CREATE TABLE institution_year (
    institution_id integer NOT NULL REFERENCES institution(id) ON DELETE CASCADE,
    year           integer NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    antt_safe      boolean,
    festival_held  boolean,
    PRIMARY KEY (institution_id, year)
);

-- Yearly facts of a village or commune: the 19/8 festival, the movement's classification
-- (Decision 510/QĐ-BCA-V05) and whether the movement was launched there.
CREATE TABLE unit_year (
    unit_id        integer NOT NULL REFERENCES admin_unit(id) ON DELETE CASCADE,
    year           integer NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    festival_held  boolean,
    movement_class text CHECK (movement_class IN ('xuat_sac', 'kha', 'trung_binh', 'yeu')),
    launched       boolean,
    is_demo        boolean NOT NULL DEFAULT false,
    PRIMARY KEY (unit_id, year)
);

CREATE TABLE security_model (
    id             serial PRIMARY KEY,
    external_id    text UNIQUE,
    type_code      text NOT NULL REFERENCES model_type(code) ON UPDATE CASCADE,
    name           text NOT NULL,
    host_kind      text NOT NULL DEFAULT 'village' CHECK (host_kind IN ('village', 'institution')),
    institution_id integer REFERENCES institution(id) ON DELETE SET NULL,
    commune_id     integer REFERENCES admin_unit(id),
    village_id     integer REFERENCES admin_unit(id),
    founded_on     date NOT NULL,
    status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'dissolved')),
    status_since   date,
    recognition    text NOT NULL DEFAULT 'none' CHECK (recognition IN ('mps', 'provincial_bcd138', 'none')),
    recognized_on  date,
    is_demo        boolean NOT NULL DEFAULT false,
    version        integer NOT NULL DEFAULT 1,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    geom           geometry(Point, 4326) NOT NULL,
    CONSTRAINT security_model_geom_in_vn CHECK (ST_Within(geom, {VN_EXTENT}))
);
CREATE INDEX security_model_geom_idx ON security_model USING gist (geom);
CREATE INDEX security_model_village_idx ON security_model (village_id);
CREATE INDEX security_model_commune_idx ON security_model (commune_id);

-- Ratings are events: the latest one on or before a date is the model's rating on that date.
CREATE TABLE model_rating (
    id        serial PRIMARY KEY,
    model_id  integer NOT NULL REFERENCES security_model(id) ON DELETE CASCADE,
    rating    text NOT NULL CHECK (rating IN ('tot', 'kha', 'trung_binh', 'yeu')),
    rated_on  date NOT NULL,
    rated_by  text,
    note      text
);
CREATE INDEX model_rating_model_idx ON model_rating (model_id, rated_on DESC);

CREATE TABLE fire_group (
    id          serial PRIMARY KEY,
    external_id text UNIQUE,
    name        text NOT NULL,
    leader      text,
    households  integer NOT NULL CHECK (households > 0),
    founded_on  date NOT NULL,
    commune_id  integer REFERENCES admin_unit(id),
    village_id  integer REFERENCES admin_unit(id),
    is_demo     boolean NOT NULL DEFAULT false,
    version     integer NOT NULL DEFAULT 1,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    geom        geometry(Point, 4326) NOT NULL,
    CONSTRAINT fire_group_geom_in_vn CHECK (ST_Within(geom, {VN_EXTENT}))
);
CREATE INDEX fire_group_geom_idx ON fire_group USING gist (geom);

-- Category taxonomy as paths: 'crime', 'crime/theft', 'fire', 'traffic', ...
CREATE TABLE incident_category (
    code    text PRIMARY KEY,
    parent  text REFERENCES incident_category(code),
    name_vi text NOT NULL,
    name_en text NOT NULL
);

CREATE TABLE incident (
    id             bigserial PRIMARY KEY,
    external_id    text UNIQUE,
    category_code  text NOT NULL REFERENCES incident_category(code) ON UPDATE CASCADE,
    occurred_at    timestamptz NOT NULL,
    precision      text NOT NULL DEFAULT 'exact'
                   CHECK (precision IN ('exact', 'street', 'village', 'commune')),
    deaths         integer NOT NULL DEFAULT 0 CHECK (deaths >= 0),
    injuries       integer NOT NULL DEFAULT 0 CHECK (injuries >= 0),
    youth_involved boolean NOT NULL DEFAULT false,
    status         text NOT NULL DEFAULT 'reported'
                   CHECK (status IN ('reported', 'investigating', 'solved', 'closed')),
    source         text,
    description    text,
    commune_id     integer REFERENCES admin_unit(id),
    village_id     integer REFERENCES admin_unit(id),
    is_demo        boolean NOT NULL DEFAULT false,
    version        integer NOT NULL DEFAULT 1,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    geom           geometry(Point, 4326) NOT NULL,
    CONSTRAINT incident_geom_in_vn CHECK (ST_Within(geom, {VN_EXTENT}))
);
CREATE INDEX incident_geom_idx ON incident USING gist (geom);
CREATE INDEX incident_time_idx ON incident (occurred_at);
CREATE INDEX incident_commune_idx ON incident (commune_id, occurred_at);
CREATE INDEX incident_village_idx ON incident (village_id, occurred_at);
CREATE INDEX incident_category_idx ON incident (category_code);

CREATE TABLE launch_point (
    id          serial PRIMARY KEY,
    name        text NOT NULL,
    theme       text NOT NULL,
    launch_date date NOT NULL,
    status      text NOT NULL DEFAULT 'planned'
                CHECK (status IN ('planned', 'launched', 'reviewed', 'cancelled')),
    notes       text,
    commune_id  integer REFERENCES admin_unit(id),
    village_id  integer REFERENCES admin_unit(id),
    created_by  text,
    is_demo     boolean NOT NULL DEFAULT false,
    version     integer NOT NULL DEFAULT 1,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    geom        geometry(Point, 4326),
    CONSTRAINT launch_point_has_place CHECK (geom IS NOT NULL OR village_id IS NOT NULL),
    CONSTRAINT launch_point_geom_in_vn CHECK (geom IS NULL OR ST_Within(geom, {VN_EXTENT}))
);
CREATE INDEX launch_point_geom_idx ON launch_point USING gist (geom);

-- Commune and village are assigned by spatial join whenever a point is written, unless the
-- writer already assigned them (bulk importers do it set-based, which is faster).
CREATE FUNCTION assign_units() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    on_date date;
BEGIN
    IF NEW.geom IS NULL THEN
        RETURN NEW;
    END IF;
    on_date := CASE TG_TABLE_NAME
        WHEN 'incident' THEN (NEW.occurred_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
        ELSE current_date END;
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

POINT_TABLES = ("security_model", "fire_group", "incident", "institution", "launch_point")

ACCOUNTS = """
CREATE TABLE app_user (
    id            serial PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    full_name     text,
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'police', 'planner', 'committee', 'viewer')),
    scope_level   text NOT NULL DEFAULT 'all' CHECK (scope_level IN ('all', 'province', 'commune')),
    scope_code    text,
    active        boolean NOT NULL DEFAULT true,
    is_demo       boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT app_user_scope CHECK ((scope_level = 'all') = (scope_code IS NULL))
);

CREATE TABLE api_key (
    id         serial PRIMARY KEY,
    user_id    integer NOT NULL REFERENCES app_user(id) ON DELETE CASCADE,
    prefix     text NOT NULL UNIQUE,
    key_hash   text NOT NULL,
    label      text,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE TABLE audit_log (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    username  text,
    role      text,
    action    text NOT NULL,
    entity    text NOT NULL,
    entity_id text,
    before    jsonb,
    after     jsonb,
    detail    jsonb
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_user_idx ON audit_log (username, at);
"""


def _vn2000_rows() -> list[tuple[int, str, str]]:
    """WKT1 and PROJ strings for the VN-2000 TM-3 zones, bound through EPSG:6960."""
    from antt.crs import spatial_ref_sys_row

    return [spatial_ref_sys_row(code) for code in VN2000_MISSING]


def upgrade() -> None:
    op.execute(SCHEMA)
    for table in POINT_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_assign_units BEFORE INSERT OR UPDATE OF geom ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION assign_units()"
        )
    op.execute(ACCOUNTS)
    conn = op.get_bind()
    for srid, wkt, proj4 in _vn2000_rows():
        conn.exec_driver_sql(
            "INSERT INTO spatial_ref_sys (srid, auth_name, auth_srid, srtext, proj4text) "
            "VALUES (%s, 'EPSG', %s, %s, %s) ON CONFLICT (srid) DO NOTHING",
            (srid, srid, wkt, proj4),
        )


def downgrade() -> None:
    op.execute(
        "DROP TABLE IF EXISTS audit_log, api_key, app_user, launch_point, incident, "
        "incident_category, fire_group, model_rating, security_model, unit_year, "
        "institution_year, institution, model_type, unit_lineage, admin_unit_part, admin_unit "
        "CASCADE"
    )
    op.execute("DROP FUNCTION IF EXISTS assign_units(), unit_at(geometry, text, date), "
               "admin_unit_parts_refresh()")
    op.execute(f"DELETE FROM spatial_ref_sys WHERE srid BETWEEN {VN2000_MISSING.start} "
               f"AND {VN2000_MISSING.stop - 1}")
