"""The read-model schema's version: upgrading it with Alembic, and refusing an old one.

Every process that reads or writes the read model checks the schema's revision at start
and stops with the command to run when it is behind (``chronolog db upgrade``). Only the
embedded SQLite read model is upgraded on the spot: it belongs to one installation.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect

from events.errors import ChronologError
from projector.tables import Base

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
UPGRADE_COMMAND = "chronolog db upgrade"


class SchemaOutOfDate(ChronologError):
    """The read-model database is not at the schema revision this Chronolog needs."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "the migrations have no head"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> str:
    """Bring the schema to the head revision; return it. Safe to run again."""
    with engine.begin() as connection:
        if _unversioned_tables(connection):
            _rebuild_unversioned(connection)
        command.upgrade(_config(connection), "head")
    return head_revision()


def check(engine: Engine) -> None:
    """Raise ``SchemaOutOfDate`` unless the schema is at the head revision."""
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    where = engine.url.render_as_string(hide_password=True)
    if current is None:
        raise SchemaOutOfDate(
            f"the read-model database {where} has no Chronolog schema: run `{UPGRADE_COMMAND}`"
        )
    known = {script.revision for script in ScriptDirectory.from_config(_config()).walk_revisions()}
    if current not in known:
        raise SchemaOutOfDate(
            f"the read-model database {where} is at schema {current}, newer than this "
            f"Chronolog knows (its newest is {head}): upgrade Chronolog"
        )
    raise SchemaOutOfDate(
        f"the read-model database {where} is at schema {current}, this Chronolog needs "
        f"{head}: run `{UPGRADE_COMMAND}`"
    )


def _unversioned_tables(connection: Connection) -> bool:
    tables = set(inspect(connection).get_table_names())
    return "alembic_version" not in tables and bool(tables & set(Base.metadata.tables))


def _rebuild_unversioned(connection: Connection) -> None:
    """Tables made before migrations existed (an embedded read model of 0.1): dropped.

    The read model is derived from the log; with its checkpoints gone the projector
    rebuilds it from the first event, so nothing is lost.
    """
    log.warning("read model predates schema migrations; rebuilding it from the event log")
    Base.metadata.drop_all(connection)
