"""Two indexes of the audit index that no read uses: ``ix_event_index_type`` and
``ix_event_index_correlation_id`` (issue 11). Every event is a row of ``event_index``,
and each index is one more B-tree the projector writes per event. Reads by type always
narrow by something more selective first (a job, a run, an actor role: their own
indexes), and correlation ids are read from ``runs``, whose index stays.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 16:00:00
"""

from __future__ import annotations

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.drop_index("ix_event_index_type", table_name="event_index")
    op.drop_index("ix_event_index_correlation_id", table_name="event_index")


def downgrade() -> None:
    op.create_index("ix_event_index_type", "event_index", ["type"], unique=False)
    op.create_index(
        "ix_event_index_correlation_id", "event_index", ["correlation_id"], unique=False
    )
