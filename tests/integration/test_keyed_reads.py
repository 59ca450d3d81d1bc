"""Reads by key through the driver give exactly the rows SQLAlchemy gives for the same
select: the same values, converted the same way (JSON, UTC datetimes, booleans), in the
same order where one is asked for, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from chronolog.wiring import Runtime
from projector.batch import apply_batch
from projector.keyed_reads import KeyedRead
from projector.rows import rows_by_key
from projector.tables import (
    JobActivityRecord,
    JobRecord,
    ProjectorCheckpoint,
    RunAttemptRecord,
    RunRecord,
    core_table,
)
from tests.integration.test_projector_upsert import JOB, append

RUN_COLUMNS = tuple(c.name for c in core_table(RunRecord).c)
JOB_COLUMNS = tuple(c.name for c in core_table(JobRecord).c)
ACTIVITY_COLUMNS = tuple(c.name for c in core_table(JobActivityRecord).c)


def through_sqlalchemy(session: Session, read: KeyedRead, keys: list[Any]) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in session.execute(read.statement(), {"keys": keys})]


def test_reads_by_key_give_what_sqlalchemy_gives(runtime: Runtime) -> None:
    for records in append(runtime):
        with Session(runtime.engine) as session, session.begin():
            assert apply_batch(session, records, runtime.codec).rejected == 0
    partition = runtime.log.partition_for(JOB)
    reads: list[tuple[KeyedRead, list[Any]]] = [
        (rows_by_key(RunRecord, RUN_COLUMNS, "id"), ["r1", "r2", "nowhere"]),
        (
            rows_by_key(RunAttemptRecord, ("run_id", "attempt", "status"), "run_id", "attempt"),
            ["r1"],
        ),
        (rows_by_key(JobRecord, JOB_COLUMNS, "id"), [JOB]),
        (rows_by_key(JobActivityRecord, ACTIVITY_COLUMNS, "job_id"), [JOB]),
        (rows_by_key(ProjectorCheckpoint, ("partition", "next_offset"), "partition"), [partition]),
        (
            rows_by_key(ProjectorCheckpoint, ("partition", "next_offset"), "partition", lock=True),
            [partition, partition + 1],
        ),
    ]
    with Session(runtime.engine) as session, session.begin():
        for read, keys in reads:
            fetched = read.fetch(session, keys)
            expected = through_sqlalchemy(session, read, keys)
            assert expected, read  # the history made rows for every read
            if read.order_by is None:  # no order asked: compare as sets of rows
                fetched, expected = sorted(fetched, key=repr), sorted(expected, key=repr)
            assert fetched == expected, read
        assert rows_by_key(RunRecord, RUN_COLUMNS, "id").fetch(session, []) == []
    # Two attempts of r1, in attempt order; r1 completed with its second.
    attempts = reads[1][0]
    with Session(runtime.engine) as session:
        assert [row[1:] for row in attempts.fetch(session, ["r1"])] == [
            (1, "failed"),
            (2, "succeeded"),
        ]
