"""Migration 0002 on SQLite and PostgreSQL: runs an older Chronolog left ``failed`` but
not dead-lettered (still waiting for the scheduler's decision) become ``failing``."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, column, create_engine, insert, select, table, text
from sqlalchemy.orm import Session

from projector import schema
from projector.tables import Base, JobRecord, RunRecord, core_table

T0 = datetime(2026, 11, 22, 9, tzinfo=UTC)


def _migrate(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(schema.MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _run(run_id: str, status: str, dead_lettered: bool) -> dict[str, object]:
    return {
        "id": run_id,
        "job_id": "job-1",
        "status": status,
        "trigger": "manual",
        "attempt": 1,
        "parameters": {},
        "priority": 0,
        "requested_at": T0,
        "dead_lettered": dead_lettered,
        "cancel_requested": False,
    }


def test_undecided_failed_runs_become_failing_and_the_new_columns_get_defaults(
    read_model_url: str,
) -> None:
    engine = create_engine(read_model_url)
    with engine.begin() as connection:  # back to an empty database at revision 0001
        Base.metadata.drop_all(connection)
        connection.execute(text("DROP TABLE alembic_version"))
    _migrate(engine, "0001")
    # The runs table as 0001 made it: every column but the new one.
    columns = [c for c in core_table(RunRecord).columns if c.name in _run("x", "x", False)]
    old_runs = table("runs", *(column(c.name, c.type) for c in columns))
    with engine.begin() as connection:
        connection.execute(
            insert(old_runs),
            [
                _run("undecided", "failed", dead_lettered=False),
                _run("dead", "failed", dead_lettered=True),
                _run("done", "completed", dead_lettered=False),
            ],
        )
    _migrate(engine, "head")
    with Session(engine) as session:
        rows = session.execute(select(RunRecord.id, RunRecord.status, RunRecord.retryable)).all()
        assert sorted(tuple(row) for row in rows) == [
            ("dead", "failed", True),
            ("done", "completed", True),
            ("undecided", "failing", True),
        ]
        assert session.scalars(select(JobRecord.paused_reason)).all() == []
    engine.dispose()
