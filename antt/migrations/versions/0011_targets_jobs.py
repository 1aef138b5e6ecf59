"""Report files made by jobs: the DOCX, XLSX and HTML of a report built in the background.

Why a table and not the job's JSON result: a province roll-up's DOCX with its two maps is a few
hundred kilobytes; as base64 inside ``job.result`` it would be sent to every poller of
``GET /jobs/{id}/result``. Here the bytes sit once, in the primary every worker reads, and the
job's result only names them (``/reports/files/{id}``). The download checks the owner, the role
the file was made for (unsuppressed counts, the incident annex) and the account's scope again.
Rows go with their job (``ON DELETE CASCADE``): ``antt.jobs.prune`` removes both after 14 days.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE report_file (
            id            uuid PRIMARY KEY,
            job_id        uuid NOT NULL REFERENCES job (id) ON DELETE CASCADE,
            format        text NOT NULL CHECK (format IN ('docx', 'xlsx', 'html')),
            filename      text NOT NULL,
            media_type    text NOT NULL,
            content       bytea NOT NULL,
            size_bytes    integer NOT NULL CHECK (size_bytes >= 0),
            sha256        text NOT NULL,
            owner         text NOT NULL,
            level         text NOT NULL CHECK (level IN ('commune', 'province')),
            code          text NOT NULL,
            sees_points   boolean NOT NULL,
            annex         boolean NOT NULL DEFAULT false,
            created_at    timestamptz NOT NULL DEFAULT now(),
            UNIQUE (job_id, format)
        );
        CREATE INDEX report_file_owner_idx ON report_file (owner, created_at DESC);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS report_file")
