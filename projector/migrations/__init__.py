"""Alembic migrations of the read-model schema (``chronolog db upgrade``)."""
