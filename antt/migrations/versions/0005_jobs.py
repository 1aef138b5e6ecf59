"""Long work as jobs whose state lives in PostgreSQL (antt.jobs).

Why a table: with several API workers (or hosts), the worker that polls a job is rarely the
one that runs it, so status, progress and the result must live where every worker reads.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE job (
            id               uuid PRIMARY KEY,
            kind             text NOT NULL,
            status           text NOT NULL DEFAULT 'queued'
                             CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
            progress         float8 NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
            message          text,
            params           jsonb NOT NULL DEFAULT '{}'::jsonb,
            result           jsonb,
            error            jsonb,
            owner            text,
            owner_role       text,
            worker           text,
            cancel_requested boolean NOT NULL DEFAULT false,
            created_at       timestamptz NOT NULL DEFAULT now(),
            started_at       timestamptz,
            finished_at      timestamptz,
            heartbeat_at     timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX job_owner_idx ON job (owner, created_at DESC);
        CREATE INDEX job_unfinished_idx ON job (status) WHERE status IN ('queued', 'running');
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS job")
