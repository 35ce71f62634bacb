"""Initial schema: writers, references, append-only audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "writers",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False, server_default=""),
        sa.Column("created", sa.DateTime, nullable=False),
    )
    op.create_table(
        "references",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("writer_id", sa.String(128), sa.ForeignKey("writers.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("filename", sa.String(512), nullable=False, server_default=""),
        sa.Column("image_sha256", sa.String(64), nullable=False),
        sa.Column("pixel_sha256", sa.String(64), nullable=False),
        sa.Column("embedding", sa.LargeBinary, nullable=False),
        sa.Column("embedding_dim", sa.Integer, nullable=False),
        sa.Column("model_version", sa.String(256), nullable=False),
        sa.Column("added", sa.DateTime, nullable=False),
        sa.Column("expires", sa.DateTime, nullable=True),
        sa.Column("image", sa.LargeBinary, nullable=True),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("time", sa.DateTime, nullable=False, index=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("writer_id", sa.String(128), nullable=True, index=True),
        sa.Column("query_sha256", sa.String(64), nullable=False),
        sa.Column("reference_ids", sa.Text, nullable=False, server_default="[]"),
        sa.Column("model_version", sa.String(256), nullable=False),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("threshold", sa.Float, nullable=True),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("decision", sa.String(32), nullable=False),
        sa.Column("client", sa.String(256), nullable=False, server_default=""),
        sa.Column("details", sa.Text, nullable=False, server_default="{}"),
    )
    if op.get_bind().dialect.name == "sqlite":
        # The audit log is append-only in the database itself, not only in the API.
        op.execute("CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END")
        op.execute("CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END")


def downgrade() -> None:
    op.drop_table("audit")
    op.drop_table("references")
    op.drop_table("writers")
