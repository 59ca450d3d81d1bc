"""Roll-ups for analytics; ``job_activity.last_dependency_request_at`` dropped.

The roll-up tables (``projector.rollups``) start empty: an upgraded read model counts
the events projected from now on, and ``chronolog replay`` (into a fresh database)
fills them for the whole log. The dropped column was written and never read.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

STATUS_COUNTS = (
    "requested",
    "started",
    "completed",
    "failed",
    "cancelled",
    "skipped",
    "timed_out",
    "lost",
)
JOB_MEASURES = ("duration_count", "duration_sum_ms", "lateness_count", "lateness_sum_ms")


def _counts(names: tuple[str, ...]) -> list[sa.Column[int]]:
    return [sa.Column(name, sa.BigInteger(), nullable=False) for name in names]


def _bucket() -> list[sa.Column[object]]:
    return [
        sa.Column("width_s", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "rollup_runs",
        *_bucket(),
        *_counts(STATUS_COUNTS),
        sa.PrimaryKeyConstraint("width_s", "bucket"),
    )
    op.create_table(
        "rollup_job_runs",
        *_bucket(),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        *_counts(STATUS_COUNTS + JOB_MEASURES),
        sa.PrimaryKeyConstraint("width_s", "bucket", "job_id"),
    )
    op.create_table(
        "rollup_job_histograms",
        sa.Column("metric", sa.String(length=16), nullable=False),
        *_bucket(),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("bin", sa.Integer(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("metric", "width_s", "bucket", "job_id", "bin"),
    )
    op.create_table(
        "rollup_gauges",
        sa.Column("gauge", sa.String(length=16), nullable=False),
        *_bucket(),
        sa.Column("key", sa.String(length=200), nullable=False),
        *_counts(("added", "removed")),
        sa.PrimaryKeyConstraint("gauge", "width_s", "bucket", "key"),
    )
    op.create_table(
        "rollup_gauge_levels",
        sa.Column("gauge", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("level", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("gauge", "key"),
    )
    with op.batch_alter_table("job_activity") as activity:
        activity.drop_column("last_dependency_request_at")


def downgrade() -> None:
    with op.batch_alter_table("job_activity") as activity:
        activity.add_column(
            sa.Column("last_dependency_request_at", sa.DateTime(timezone=True), nullable=True)
        )
    for table in (
        "rollup_gauge_levels",
        "rollup_gauges",
        "rollup_job_histograms",
        "rollup_job_runs",
        "rollup_runs",
    ):
        op.drop_table(table)
