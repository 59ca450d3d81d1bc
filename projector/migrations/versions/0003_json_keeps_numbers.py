"""JSON columns keep their values as written: ``json``, not ``jsonb``, on PostgreSQL.

``jsonb`` stores numbers as ``numeric`` and prints them back without an exponent, so a
float parameter ``1e19`` came back as the integer 10000000000000000000 (past 64 bits:
orjson then refused the ticket and the projector the next event carrying it), and
``6.5e16`` as an int where SQLite kept a float. No query reads inside these columns, so
``json`` (the text as written, validated) loses nothing. SQLite is unchanged.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 03:10:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

COLUMNS = (
    ("event_index", "payload", False),
    ("jobs", "spec", False),
    ("runs", "parameters", False),
    ("runs", "result", True),
    ("workers", "tags", False),
)


JSON = postgresql.JSON(astext_type=sa.Text())
JSONB = postgresql.JSONB(astext_type=sa.Text())


def upgrade() -> None:
    _retype(JSONB, JSON, "json")


def downgrade() -> None:
    _retype(JSON, JSONB, "jsonb")


def _retype(old: sa.types.TypeEngine[Any], new: sa.types.TypeEngine[Any], cast: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite keeps JSON as text already
    for table, column, nullable in COLUMNS:
        op.alter_column(
            table,
            column,
            type_=new,
            existing_type=old,
            existing_nullable=nullable,
            postgresql_using=f"{column}::{cast}",
        )
