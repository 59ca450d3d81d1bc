"""The read-model schema on SQLite and PostgreSQL: migrations equal the models, old or
missing schemas are refused, and a database with no connection to spare answers 503."""

from __future__ import annotations

import dataclasses

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from api.app import create_app
from chronolog.serving import api_context
from chronolog.wiring import Runtime, open_read_model
from projector import schema
from projector.batch import write_checkpoints
from projector.database import create_read_model_engine
from projector.tables import Base, ProjectorCheckpoint


@pytest.fixture
def empty_database(read_model_url: str) -> str:
    """A database with no Chronolog tables (``read_model_url`` comes migrated: undo it)."""
    engine = create_engine(read_model_url)
    with engine.begin() as connection:
        Base.metadata.drop_all(connection)
        connection.execute(text("DROP TABLE alembic_version"))
    engine.dispose()
    return read_model_url


def test_the_migrations_build_exactly_the_models(empty_database: str) -> None:
    engine = open_read_model(empty_database, upgrade=True)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    assert schema.current_revision(engine) == schema.head_revision()
    schema.upgrade(engine)  # again: nothing to do
    schema.check(engine)
    engine.dispose()


def test_a_database_without_the_schema_is_refused_with_the_command_to_run(
    empty_database: str,
) -> None:
    with pytest.raises(schema.SchemaOutOfDate, match=r"no Chronolog schema: run `chronolog db"):
        open_read_model(empty_database, upgrade=False)


def test_a_schema_newer_than_this_chronolog_is_refused(read_model_url: str) -> None:
    engine = create_engine(read_model_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(schema.SchemaOutOfDate, match="newer than this Chronolog knows"):
        open_read_model(read_model_url, upgrade=False)


def test_an_unversioned_embedded_read_model_is_rebuilt_from_the_log(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    engine = create_read_model_engine(url)
    Base.metadata.create_all(engine)  # what 0.1 did: tables, no alembic_version
    with Session(engine) as session, session.begin():
        write_checkpoints(session, {0: 42})
    engine.dispose()

    upgraded = open_read_model(url)  # embedded: migrated on the spot
    with Session(upgraded) as session:
        assert session.scalars(select(ProjectorCheckpoint)).all() == []  # replayed from 0
    assert schema.current_revision(upgraded) == schema.head_revision()
    upgraded.dispose()


def test_a_request_that_gets_no_database_connection_in_time_is_answered_503(
    running: Runtime,
) -> None:
    one_connection = create_engine(
        running.settings.database, pool_size=1, max_overflow=0, pool_timeout=0.2
    )
    context = dataclasses.replace(api_context(running), engine=one_connection)
    held = one_connection.connect()
    try:
        with TestClient(create_app(context)) as client:
            response = client.get("/api/jobs")
        assert response.status_code == 503
        assert (
            response.json()
            == {
                "error": "unavailable",
                "message": "the read-model database is busy",
                "errors": [],
            }
            or response.json()["message"] == "the read-model database is busy"
        )
    finally:
        held.close()
        one_connection.dispose()
