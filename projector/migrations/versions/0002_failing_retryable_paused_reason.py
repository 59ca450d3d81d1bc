"""Honest run statuses: ``failing`` runs, ``runs.retryable``, ``jobs.paused_reason``.

A run whose attempt failed, timed out or was lost is ``failing`` until the scheduler
retries it or dead-letters it; ``failed`` now means failed for good. Runs that an older
Chronolog left ``failed`` and not dead-lettered were still waiting for that decision, so
they become ``failing``: the scheduler decides them as before.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_runs = sa.table("runs", sa.column("status", sa.String), sa.column("dead_lettered", sa.Boolean))


def upgrade() -> None:
    op.add_column(
        "runs", sa.Column("retryable", sa.Boolean(), server_default=sa.true(), nullable=False)
    )
    op.add_column("jobs", sa.Column("paused_reason", sa.Text(), nullable=True))
    op.execute(
        _runs.update()
        .where(_runs.c.status == "failed", _runs.c.dead_lettered.is_(False))
        .values(status="failing")
    )


def downgrade() -> None:
    op.execute(_runs.update().where(_runs.c.status == "failing").values(status="failed"))
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("paused_reason")
    with op.batch_alter_table("runs") as runs:
        runs.drop_column("retryable")
