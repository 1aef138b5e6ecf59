"""National scale: an index on every foreign key that lacked one.

Why: deleting or re-keying a unit checks every table that references it. Without an index on
``fire_group.village_id`` (and the other unit columns of institutions, fire groups and launch
points) each deleted village scanned those tables whole: replacing the national demo's 30,000
villages took 19 minutes in the delete alone. The same columns are what the per-unit
aggregates group by.

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


def upgrade() -> None:
    for table, column in FK_INDEXES:
        op.execute(f"CREATE INDEX IF NOT EXISTS {table}_{column}_idx ON {table} ({column})")


def downgrade() -> None:
    for table, column in FK_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {table}_{column}_idx")
