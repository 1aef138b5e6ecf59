"""The year's plan: targets as data, plans per unit and year, events, model reviews (issue 11).

* ``target_def``: the catalogue of targets. Built-in rows (seed 001, DOMAIN.md) name a
  ``metric`` the KPI engine (``geo.kpi``) computes from the registry; rows users add have no
  metric and take their actual values from ``target_value``. ``direction`` says which side of
  the threshold is good (ge: at least, gt: more than, le: at most, lt: less than); ``due`` is
  the month-day by which the target must be reached (the 19/8 festival: 08-19).
* ``plan`` / ``plan_target``: a province's or a commune's plan for a year and its thresholds.
  The threshold in force for a commune is its own plan's, else its province plan's, else the
  catalogue default; a commune may only raise a province's threshold (checked by the API).
* ``movement_event``: festivals (19/8), forums "Công an xã lắng nghe ý kiến của nhân dân",
  launch ceremonies, reviews: date, unit, place, participants, notes, attachment names.
* ``model_review`` / ``model_review_item``: the yearly (or 6-month) review of a commune's
  models: a proposal with its reason in words, then the committee's decision (who, when, why).
  ``model_status_event``: a confirmed decision as an event on the model (dissolve also sets
  ``security_model.status``).
* Reused, extended rather than duplicated: ``institution_year`` gains ``launched`` and
  ``movement_class`` (institutions are units of the movement like villages, seed 001);
  ``launch_point`` gains ``model_type_code`` and ``source_model_id`` so a planned launch point can
  be a planned new model seeded from a replicated one.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

METRICS = ("institutions_safe", "launched", "class_kha_or_better", "models_kept", "new_models",
           "festival", "forums")
CLASSES = "('xuat_sac', 'kha', 'trung_binh', 'yeu')"
DECISIONS = "('replicate', 'keep', 'strengthen', 'dissolve')"

SCHEMA = f"""
CREATE TABLE target_def (
    code              text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]{{1,39}}$'),
    name_vi           text NOT NULL CHECK (length(name_vi) BETWEEN 1 AND 300),
    name_en           text NOT NULL CHECK (length(name_en) BETWEEN 1 AND 300),
    measure           text NOT NULL CHECK (measure IN ('percent', 'count')),
    unit_vi           text NOT NULL,
    unit_en           text NOT NULL,
    direction         text NOT NULL CHECK (direction IN ('ge', 'gt', 'le', 'lt')),
    default_threshold float8 NOT NULL CHECK (default_threshold >= 0),
    metric            text UNIQUE CHECK (metric IN ({", ".join(f"'{m}'" for m in METRICS)})),
    applies_to        text NOT NULL DEFAULT 'commune' CHECK (applies_to IN ('commune', 'both')),
    due               text NOT NULL DEFAULT '12-31'
                      CHECK (due ~ '^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$'),
    position          integer NOT NULL DEFAULT 100,
    builtin           boolean NOT NULL DEFAULT false,
    created_by        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT target_def_percent CHECK (measure <> 'percent' OR default_threshold <= 100),
    CONSTRAINT target_def_builtin_metric CHECK (NOT builtin OR metric IS NOT NULL)
);

CREATE TABLE plan (
    id          serial PRIMARY KEY,
    unit_level  text NOT NULL CHECK (unit_level IN ('province', 'commune')),
    unit_code   text NOT NULL,
    year        integer NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    title       text,
    doc_number  text,
    issued_on   date,
    signer      text,
    notes       text,
    created_by  text,
    is_demo     boolean NOT NULL DEFAULT false,
    version     integer NOT NULL DEFAULT 1,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT plan_unit_year UNIQUE (unit_level, unit_code, year)
);

CREATE TABLE plan_target (
    plan_id     integer NOT NULL REFERENCES plan(id) ON DELETE CASCADE,
    target_code text NOT NULL REFERENCES target_def(code) ON UPDATE CASCADE ON DELETE CASCADE,
    threshold   float8 NOT NULL CHECK (threshold >= 0),
    note        text,
    PRIMARY KEY (plan_id, target_code)
);

-- Actual values of targets without a metric (added by users), per unit and year; the latest
-- recorded on or before a date is the value on that date.
CREATE TABLE target_value (
    id          serial PRIMARY KEY,
    target_code text NOT NULL REFERENCES target_def(code) ON UPDATE CASCADE ON DELETE CASCADE,
    unit_level  text NOT NULL CHECK (unit_level IN ('commune', 'village')),
    unit_code   text NOT NULL,
    year        integer NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    value       float8 NOT NULL CHECK (value >= 0),
    recorded_on date NOT NULL,
    note        text,
    created_by  text,
    is_demo     boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT target_value_once UNIQUE (target_code, unit_level, unit_code, year, recorded_on)
);
CREATE INDEX target_value_unit_idx ON target_value (unit_level, unit_code, year);

CREATE TABLE movement_event (
    id              serial PRIMARY KEY,
    external_id     text UNIQUE,
    kind            text NOT NULL CHECK (kind IN ('festival', 'forum', 'launch', 'review', 'other')),
    title           text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    held_on         date NOT NULL,
    commune_id      integer REFERENCES admin_unit(id) ON DELETE SET NULL,
    village_id      integer REFERENCES admin_unit(id) ON DELETE SET NULL,
    institution_id  integer REFERENCES institution(id) ON DELETE SET NULL,
    launch_point_id integer REFERENCES launch_point(id) ON DELETE SET NULL,
    place           text,
    participants    integer CHECK (participants IS NULL OR participants >= 0),
    notes           text,
    attachments     text[] NOT NULL DEFAULT '{{}}',
    created_by      text,
    is_demo         boolean NOT NULL DEFAULT false,
    version         integer NOT NULL DEFAULT 1,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX movement_event_commune_idx ON movement_event (commune_id, held_on);
CREATE INDEX movement_event_village_idx ON movement_event (village_id, held_on);
CREATE INDEX movement_event_institution_idx ON movement_event (institution_id, held_on);

CREATE TABLE model_review (
    id           serial PRIMARY KEY,
    commune_id   integer REFERENCES admin_unit(id) ON DELETE CASCADE,
    commune_code text NOT NULL,
    year         integer NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    kind         text NOT NULL CHECK (kind IN ('so_ket', 'tong_ket')),
    reviewed_on  date NOT NULL,
    created_by   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    is_demo      boolean NOT NULL DEFAULT false,
    CONSTRAINT model_review_once UNIQUE (commune_code, year, kind)
);

CREATE TABLE model_review_item (
    id              serial PRIMARY KEY,
    review_id       integer NOT NULL REFERENCES model_review(id) ON DELETE CASCADE,
    model_id        integer NOT NULL REFERENCES security_model(id) ON DELETE CASCADE,
    proposal        text NOT NULL CHECK (proposal IN {DECISIONS}),
    reason_vi       text NOT NULL,
    reason_en       text NOT NULL,
    ratings         jsonb NOT NULL DEFAULT '[]',
    decision        text CHECK (decision IN {DECISIONS}),
    decision_reason text,
    decided_by      text,
    decided_at      timestamptz,
    version         integer NOT NULL DEFAULT 1,
    CONSTRAINT model_review_item_once UNIQUE (review_id, model_id),
    CONSTRAINT model_review_item_decided CHECK ((decision IS NULL) = (decided_at IS NULL))
);
CREATE INDEX model_review_item_model_idx ON model_review_item (model_id);

CREATE TABLE model_status_event (
    id             serial PRIMARY KEY,
    model_id       integer NOT NULL REFERENCES security_model(id) ON DELETE CASCADE,
    on_date        date NOT NULL,
    decision       text NOT NULL CHECK (decision IN {DECISIONS}),
    status_before  text NOT NULL,
    status_after   text NOT NULL,
    review_item_id integer REFERENCES model_review_item(id) ON DELETE SET NULL,
    decided_by     text,
    reason         text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX model_status_event_model_idx ON model_status_event (model_id, on_date);

ALTER TABLE institution_year
    ADD COLUMN launched boolean,
    ADD COLUMN movement_class text CHECK (movement_class IN {CLASSES});

ALTER TABLE launch_point
    ADD COLUMN model_type_code text REFERENCES model_type(code) ON UPDATE CASCADE,
    ADD COLUMN source_model_id integer REFERENCES security_model(id) ON DELETE SET NULL;
"""

# (code, name_vi, name_en, measure, unit_vi, unit_en, direction, threshold, metric, applies_to,
#  due, position): the commune plan of seed 001, section I.3.
BUILTIN = [
    ("institutions_safe", "Cơ quan, doanh nghiệp, nhà trường đạt tiêu chuẩn \"An toàn về ANTT\"",
     "Agencies, enterprises and schools meeting the \"An toàn về ANTT\" standard",
     "percent", "%", "%", "gt", 80, "institutions_safe", "both", "12-31", 10),
    ("launched", "Đơn vị (thôn, tổ dân phố, cơ quan, doanh nghiệp, nhà trường) tổ chức phát động "
     "phong trào toàn dân bảo vệ ANTQ",
     "Units (villages, agencies, enterprises, schools) that launched the movement",
     "percent", "%", "%", "ge", 80, "launched", "both", "12-31", 20),
    ("class_kha_or_better", "Đơn vị phân loại phong trào từ loại khá trở lên",
     "Units whose movement is classified 'khá' (good) or better",
     "percent", "%", "%", "ge", 80, "class_kha_or_better", "both", "12-31", 30),
    ("models_kept", "Mô hình hiệu quả từ các năm trước được duy trì, nhân rộng",
     "Effective models from earlier years kept and replicated",
     "percent", "%", "%", "ge", 100, "models_kept", "both", "12-31", 40),
    ("new_models", "Mô hình mới xây dựng trong năm", "New models built this year",
     "count", "mô hình", "models", "ge", 1, "new_models", "commune", "12-31", 50),
    ("festival", "Đơn vị tổ chức \"Ngày hội toàn dân bảo vệ ANTQ\" 19/8",
     "Units holding the 19 August \"All-people national security festival\"",
     "percent", "%", "%", "ge", 100, "festival", "both", "08-19", 60),
    ("forums", "Diễn đàn \"Công an xã lắng nghe ý kiến của nhân dân\"",
     "Forums \"Commune police listen to the people\"",
     "count", "lượt", "forums", "ge", 2, "forums", "commune", "12-31", 70),
]


def upgrade() -> None:
    op.execute(SCHEMA)
    conn = op.get_bind()
    for row in BUILTIN:
        conn.exec_driver_sql(
            "INSERT INTO target_def (code, name_vi, name_en, measure, unit_vi, unit_en, direction, "
            "default_threshold, metric, applies_to, due, position, builtin) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, true) "
            "ON CONFLICT (code) DO NOTHING", row)


def downgrade() -> None:
    op.execute("ALTER TABLE launch_point DROP COLUMN IF EXISTS source_model_id, "
               "DROP COLUMN IF EXISTS model_type_code")
    op.execute("ALTER TABLE institution_year DROP COLUMN IF EXISTS movement_class, "
               "DROP COLUMN IF EXISTS launched")
    op.execute("DROP TABLE IF EXISTS model_status_event, model_review_item, model_review, "
               "movement_event, target_value, plan_target, plan, target_def CASCADE")
