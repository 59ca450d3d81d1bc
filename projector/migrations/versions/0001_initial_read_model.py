"""Initial read model: jobs, runs, attempts, activity, workers, event index, checkpoints.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 07:48:01.388511
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "event_index",
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("correlation_id", sa.String(length=64), nullable=True),
        sa.Column("causation_id", sa.String(length=64), nullable=True),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("rejected", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("partition", "offset"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index(
        op.f("ix_event_index_correlation_id"), "event_index", ["correlation_id"], unique=False
    )
    op.create_index(
        "ix_event_index_job_offset", "event_index", ["job_id", "partition", "offset"], unique=False
    )
    op.create_index(
        op.f("ix_event_index_occurred_at"), "event_index", ["occurred_at"], unique=False
    )
    op.create_index(op.f("ix_event_index_run_id"), "event_index", ["run_id"], unique=False)
    op.create_index(op.f("ix_event_index_type"), "event_index", ["type"], unique=False)
    op.create_table(
        "job_activity",
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("last_fire_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_dependency_request_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_id", sa.String(length=64), nullable=True),
        sa.Column("last_run_status", sa.String(length=16), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("job_id"),
    )
    op.create_table(
        "job_dependencies",
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("depends_on_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "depends_on_id"),
    )
    op.create_index(
        op.f("ix_job_dependencies_depends_on_id"),
        "job_dependencies",
        ["depends_on_id"],
        unique=False,
    )
    op.create_table(
        "job_tags",
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("tag", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "tag"),
    )
    op.create_index(op.f("ix_job_tags_tag"), "job_tags", ["tag"], unique=False)
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("schedule", sa.String(length=200), nullable=True),
        sa.Column("schedule_type", sa.String(length=16), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("queue", sa.String(length=200), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column(
            "spec",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("rescheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_jobs_enabled"), "jobs", ["enabled"], unique=False)
    op.create_index(op.f("ix_jobs_name"), "jobs", ["name"], unique=False)
    op.create_index(op.f("ix_jobs_schedule_type"), "jobs", ["schedule_type"], unique=False)
    op.create_index(op.f("ix_jobs_type"), "jobs", ["type"], unique=False)
    op.create_table(
        "projector_checkpoints",
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("partition"),
    )
    op.create_table(
        "run_attempts",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker_id", sa.String(length=200), nullable=True),
        sa.Column("lease_token", sa.BigInteger(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "attempt"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column(
            "parameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("correlation_id", sa.String(length=64), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("upstream_run_id", sa.String(length=64), nullable=True),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True),
        sa.Column("queue", sa.String(length=200), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker_id", sa.String(length=200), nullable=True),
        sa.Column("lease_token", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("stdout", sa.Text(), nullable=True),
        sa.Column("stderr", sa.Text(), nullable=True),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("dead_lettered", sa.Boolean(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_runs_correlation_id"), "runs", ["correlation_id"], unique=False)
    op.create_index(op.f("ix_runs_dead_lettered"), "runs", ["dead_lettered"], unique=False)
    op.create_index(op.f("ix_runs_finished_at"), "runs", ["finished_at"], unique=False)
    op.create_index("ix_runs_job_requested", "runs", ["job_id", "requested_at"], unique=False)
    op.create_index("ix_runs_job_status", "runs", ["job_id", "status"], unique=False)
    op.create_index(op.f("ix_runs_requested_at"), "runs", ["requested_at"], unique=False)
    op.create_index(op.f("ix_runs_status"), "runs", ["status"], unique=False)
    op.create_index(op.f("ix_runs_worker_id"), "runs", ["worker_id"], unique=False)
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_workers_status"), "workers", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_workers_status"), table_name="workers")
    op.drop_table("workers")
    op.drop_index(op.f("ix_runs_worker_id"), table_name="runs")
    op.drop_index(op.f("ix_runs_status"), table_name="runs")
    op.drop_index(op.f("ix_runs_requested_at"), table_name="runs")
    op.drop_index("ix_runs_job_status", table_name="runs")
    op.drop_index("ix_runs_job_requested", table_name="runs")
    op.drop_index(op.f("ix_runs_finished_at"), table_name="runs")
    op.drop_index(op.f("ix_runs_dead_lettered"), table_name="runs")
    op.drop_index(op.f("ix_runs_correlation_id"), table_name="runs")
    op.drop_table("runs")
    op.drop_table("run_attempts")
    op.drop_table("projector_checkpoints")
    op.drop_index(op.f("ix_jobs_type"), table_name="jobs")
    op.drop_index(op.f("ix_jobs_schedule_type"), table_name="jobs")
    op.drop_index(op.f("ix_jobs_name"), table_name="jobs")
    op.drop_index(op.f("ix_jobs_enabled"), table_name="jobs")
    op.drop_table("jobs")
    op.drop_index(op.f("ix_job_tags_tag"), table_name="job_tags")
    op.drop_table("job_tags")
    op.drop_index(op.f("ix_job_dependencies_depends_on_id"), table_name="job_dependencies")
    op.drop_table("job_dependencies")
    op.drop_table("job_activity")
    op.drop_index(op.f("ix_event_index_type"), table_name="event_index")
    op.drop_index(op.f("ix_event_index_run_id"), table_name="event_index")
    op.drop_index(op.f("ix_event_index_occurred_at"), table_name="event_index")
    op.drop_index("ix_event_index_job_offset", table_name="event_index")
    op.drop_index(op.f("ix_event_index_correlation_id"), table_name="event_index")
    op.drop_table("event_index")
