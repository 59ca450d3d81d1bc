"""Who did what: the caller's role and request on the event index (issue 10's audit).

``GET /api/audit`` lists the events made on behalf of an API caller, the ones with an
``actor_role``, newest first. Those are few next to the scheduler's and the workers'
events, so its indexes are partial (``WHERE actor_role IS NOT NULL``, on SQLite and
PostgreSQL alike): each leads with what one filter compares for equality (nothing,
actor, type, job) and goes on with the audit's order, (occurred_at, partition, offset).

Rows already in the index keep NULL in both columns: every event before schema v3 had
neither, so nothing needs a replay.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

_AUDITED = sa.text("actor_role IS NOT NULL")
_INDEXES = {
    "ix_event_index_audit": [],
    "ix_event_index_audit_actor": ["actor"],
    "ix_event_index_audit_type": ["type"],
    "ix_event_index_audit_job": ["job_id"],
}


def upgrade() -> None:
    op.add_column("event_index", sa.Column("actor_role", sa.String(length=32), nullable=True))
    op.add_column("event_index", sa.Column("request_id", sa.Text(), nullable=True))
    for name, leading in _INDEXES.items():
        op.create_index(
            name,
            "event_index",
            [*leading, "occurred_at", "partition", "offset"],
            sqlite_where=_AUDITED,
            postgresql_where=_AUDITED,
        )


def downgrade() -> None:
    for name in _INDEXES:
        op.drop_index(name, table_name="event_index")
    with op.batch_alter_table("event_index") as event_index:
        event_index.drop_column("request_id")
        event_index.drop_column("actor_role")
