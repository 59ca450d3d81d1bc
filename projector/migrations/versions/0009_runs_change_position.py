"""Where each run last changed in the log, so the scheduler reads only what changed.

``runs.change_partition`` / ``runs.change_offset``: the log position of the last event
the projector applied to the row (issue 11). The projector writes a partition's events
in offset order, each batch with its checkpoint in one transaction, so every row changed
after the scheduler read the checkpoints has ``change_offset >= checkpoint`` of its
partition: ``WHERE change_partition = p AND change_offset >= seen[p]`` finds exactly the
changes a round has not seen. Rows projected before this migration hold NULL; the
scheduler's full re-read (when it takes the lead, and periodically) covers them.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-02 13:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("change_partition", sa.Integer(), nullable=True))
    op.add_column("runs", sa.Column("change_offset", sa.BigInteger(), nullable=True))
    op.create_index("ix_runs_change", "runs", ["change_partition", "change_offset"])


def downgrade() -> None:
    op.drop_index("ix_runs_change", table_name="runs")
    op.drop_column("runs", "change_offset")
    op.drop_column("runs", "change_partition")
