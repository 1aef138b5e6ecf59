"""Launch-point planner scenarios (issue 10), and a reach per model type.

- ``model_type.reach_m``: how far a model of this type reaches, in metres (NULL: the coverage
  analytics' default R, 500 m). The planner's default radius for a type.
- ``planner_scenario``: a saved suggestion (name, parameters, figures computed by the server,
  who made it, status draft/accepted/archived). ``province_code`` and ``commune_codes`` are
  the units its demand lies in, so account scopes filter scenarios like everything else.
- ``planner_scenario_site``: its sites in rank order, and once accepted the launch point or
  model each became.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE model_type ADD COLUMN reach_m double precision
    CHECK (reach_m IS NULL OR (reach_m > 0 AND reach_m <= 20000));

CREATE TABLE planner_scenario (
    id            serial PRIMARY KEY,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    problem       text NOT NULL CHECK (problem IN ('mclp', 'lscp')),
    province_code text,
    commune_codes text[] NOT NULL DEFAULT '{}',
    parameters    jsonb NOT NULL,
    figures       jsonb NOT NULL,
    solver        jsonb,
    exact_counts  boolean NOT NULL DEFAULT false,
    status        text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'accepted', 'archived')),
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    accepted_by   text,
    accepted_at   timestamptz,
    accepted_as   text CHECK (accepted_as IN ('launch_points', 'models')),
    version       integer NOT NULL DEFAULT 1,
    CONSTRAINT planner_scenario_accepted CHECK ((status = 'accepted') = (accepted_at IS NOT NULL))
);
CREATE INDEX planner_scenario_province_idx ON planner_scenario (province_code, status);

CREATE TABLE planner_scenario_site (
    scenario_id     integer NOT NULL REFERENCES planner_scenario(id) ON DELETE CASCADE,
    rank            integer NOT NULL CHECK (rank >= 1),
    name            text NOT NULL,
    kind            text NOT NULL,
    gain            double precision NOT NULL,
    villages        jsonb NOT NULL DEFAULT '[]',
    launch_point_id integer REFERENCES launch_point(id) ON DELETE SET NULL,
    model_id        integer REFERENCES security_model(id) ON DELETE SET NULL,
    geom            geometry(Point, 4326) NOT NULL,
    PRIMARY KEY (scenario_id, rank)
);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS planner_scenario_site, planner_scenario; "
               "ALTER TABLE model_type DROP COLUMN IF EXISTS reach_m")
