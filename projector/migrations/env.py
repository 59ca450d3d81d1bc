"""Alembic's environment: runs on the connection ``projector.schema`` hands it."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from projector.tables import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things: later migrations copy-and-move its tables.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        # Two `chronolog db upgrade` at once: the second waits, then finds nothing to do.
        context.execute(text("SELECT pg_advisory_xact_lock(7305420116)"))
    context.run_migrations()
