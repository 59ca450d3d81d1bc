"""Migration 0006 on SQLite and PostgreSQL: the event index gains ``actor_role`` and
``request_id`` (NULL for every event already indexed) and the audit's partial indexes;
down again, the rows stay."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, column, create_engine, insert, inspect, select, table, text

from projector import schema
from projector.tables import Base, EventIndexRecord, core_table

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
AUDIT_INDEXES = {
    "ix_event_index_audit": ["occurred_at", "partition", "offset"],
    "ix_event_index_audit_actor": ["actor", "occurred_at", "partition", "offset"],
    "ix_event_index_audit_type": ["type", "occurred_at", "partition", "offset"],
    "ix_event_index_audit_job": ["job_id", "occurred_at", "partition", "offset"],
}
INDEX_SQL = {
    "sqlite": "SELECT name, sql FROM sqlite_master WHERE type = 'index'",
    "postgresql": "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'event_index'",
}


def _migrate(engine: Engine, revision: str, down: bool = False) -> None:
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(schema.MIGRATIONS))
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def _audit_indexes(engine: Engine) -> dict[str | None, list[str | None]]:
    found = inspect(engine).get_indexes("event_index")
    return {i["name"]: i["column_names"] for i in found if i["name"] in AUDIT_INDEXES}


def _event_columns(engine: Engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("event_index")}


def test_0006_adds_the_columns_and_partial_indexes_and_goes_back(read_model_url: str) -> None:
    engine = create_engine(read_model_url)
    with engine.begin() as connection:  # back to an empty database at revision 0005
        Base.metadata.drop_all(connection)
        connection.execute(text("DROP TABLE alembic_version"))
    _migrate(engine, "0005")
    assert not {"actor_role", "request_id"} & _event_columns(engine)
    old = {"actor_role", "request_id"}
    columns = [c for c in core_table(EventIndexRecord).columns if c.name not in old]
    old_index = table("event_index", *(column(c.name, c.type) for c in columns))
    row = {
        "partition": 0,
        "offset": 0,
        "event_id": "e-1",
        "type": "JobCreated",
        "occurred_at": T0,
        "actor": "api",
        "payload": {},
    }
    with engine.begin() as connection:
        connection.execute(insert(old_index), [row])

    _migrate(engine, "0006")
    with engine.connect() as connection:
        found = connection.execute(select(EventIndexRecord.actor_role, EventIndexRecord.request_id))
        assert [tuple(r) for r in found] == [(None, None)]
        listed = connection.execute(text(INDEX_SQL[engine.dialect.name])).all()
        definitions: dict[str, str] = {name: sql or "" for name, sql in listed}
    assert _audit_indexes(engine) == AUDIT_INDEXES
    for name in AUDIT_INDEXES:  # partial: only the events made for a caller
        assert "actor_role IS NOT NULL" in definitions[name], definitions[name]

    _migrate(engine, "0005", down=True)
    assert not {"actor_role", "request_id"} & _event_columns(engine)
    assert _audit_indexes(engine) == {}
    with engine.connect() as connection:
        assert connection.execute(select(old_index.c.event_id)).scalars().all() == ["e-1"]
    engine.dispose()
