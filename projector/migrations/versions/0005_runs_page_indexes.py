"""Indexes for the dashboard's runs page over a million runs.

``runs`` filtered by status or by trigger, newest first, paged by key: with only
``ix_runs_status`` SQLite used it and then sorted every matching run for each page
(1.4 s a page for ``status=completed`` at 1,000,000 runs; 4 ms with the composite index;
a trigger no run has took 390 ms on PostgreSQL, 0.09 ms with its index).
``(status, requested_at)`` serves every lookup ``ix_runs_status`` served, so that one goes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 06:20:00
"""

from __future__ import annotations

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # With the id: the pages' order is (requested_at, id), so no sort on the tie-break.
    op.create_index("ix_runs_status_requested", "runs", ["status", "requested_at", "id"])
    op.create_index("ix_runs_trigger_requested", "runs", ["trigger", "requested_at", "id"])
    op.drop_index("ix_runs_status", table_name="runs")


def downgrade() -> None:
    op.create_index("ix_runs_status", "runs", ["status"], unique=False)
    op.drop_index("ix_runs_trigger_requested", table_name="runs")
    op.drop_index("ix_runs_status_requested", table_name="runs")
