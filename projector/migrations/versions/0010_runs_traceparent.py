"""The W3C trace context a run was requested in, so the scheduler can hand it to the
worker that runs it (``runs.traceparent``, from ``RunRequested.traceparent``, issue 12
part 4). NULL for runs requested with tracing off and for runs projected before.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 08:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("traceparent", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "traceparent")
