"""In-place writes: rows a batch touches are updated where they stand, and the result is
the same whatever the batches (one event at a time, one batch for all, or a mix of new
and existing rows with one row touched several times in a batch)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from chronolog.wiring import Runtime, open_read_model
from eventlog.port import LogRecord
from events.model import (
    Event,
    JobCreated,
    JobSpec,
    JobUpdated,
    Payload,
    RunFailed,
    RunQueued,
    RunRequested,
    RunRetryScheduled,
    RunStarted,
    RunSucceeded,
)
from projector.batch import apply_batch
from projector.bulk import upsert_rows
from projector.replay import differences, replay
from projector.tables import (
    JobDependencyRecord,
    JobTagRecord,
    RollupGaugeLevelRecord,
    RunAttemptRecord,
    RunRecord,
    core_table,
)

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
JOB = "job-upsert"


def spec(tags: tuple[str, ...], depends_on: tuple[str, ...]) -> JobSpec:
    return JobSpec(name="upsert", type="python", function="m.f", tags=tags, depends_on=depends_on)


def event(i: int, payload: Payload, run_id: str | None = None, attempt: int | None = None) -> Event:
    at = T0 + timedelta(seconds=i)
    return Event(
        payload=payload, occurred_at=at, actor="test", job_id=JOB, run_id=run_id, attempt=attempt
    )


def history() -> list[list[Event]]:
    """Three batches: the second updates the first's rows (a run several times over, the
    job's tags and dependencies) and adds a new run; the third updates the job again."""
    first = [
        event(0, JobCreated(spec(("a", "b"), ("x",)))),
        event(1, RunRequested(trigger="manual"), "r1", 1),
        event(2, RunQueued(queue="default"), "r1", 1),
    ]
    second = [
        event(3, JobUpdated(spec(("b", "c"), ("y",)), ("tags", "depends_on"))),
        event(4, RunStarted(worker_id="w1", lease_token=1), "r1", 1),
        event(5, RunFailed(worker_id="w1", lease_token=1, duration_ms=10, error="boom"), "r1", 1),
        event(6, RunRetryScheduled(next_attempt=2, retry_at=T0, delay_ms=0), "r1", 1),
        event(7, RunQueued(queue="default"), "r1", 2),
        event(8, RunStarted(worker_id="w2", lease_token=2), "r1", 2),
        event(9, RunSucceeded(worker_id="w2", lease_token=2, duration_ms=5), "r1", 2),
        event(10, RunRequested(trigger="manual"), "r2", 1),
        event(11, RunQueued(queue="default"), "r2", 1),
    ]
    third = [event(12, JobUpdated(spec(("c",), ()), ("tags", "depends_on")))]
    return [first, second, third]


def append(runtime: Runtime) -> list[list[LogRecord]]:
    batches = history()
    runtime.log.append([(e.key, runtime.codec.encode(e)) for batch in batches for e in batch])
    partition = runtime.log.partition_for(JOB)
    records = runtime.log.read(partition, 0, 100)
    sizes = [len(batch) for batch in batches]
    return [records[sum(sizes[:i]) : sum(sizes[: i + 1])] for i in range(len(sizes))]


def test_batches_that_update_rows_in_place_equal_one_event_at_a_time(
    runtime: Runtime, tmp_path: Path
) -> None:
    for records in append(runtime):
        with Session(runtime.engine) as session, session.begin():
            assert apply_batch(session, records, runtime.codec).rejected == 0

    with Session(runtime.engine) as session:
        run = session.get(RunRecord, "r1")
        assert run is not None
        assert (run.status, run.attempt, run.worker_id, run.lease_token) == (
            "completed",
            2,
            "w2",
            2,
        )
        attempts = session.execute(
            select(RunAttemptRecord.attempt, RunAttemptRecord.status)
            .where(RunAttemptRecord.run_id == "r1")
            .order_by(RunAttemptRecord.attempt)
        ).all()
        assert [tuple(a) for a in attempts] == [(1, "failed"), (2, "succeeded")]
        assert session.scalars(select(JobTagRecord.tag)).all() == ["c"]
        assert session.scalars(select(JobDependencyRecord.depends_on_id)).all() == []
        second = session.get(RunRecord, "r2")
        assert second is not None and second.status == "queued"

    for size in (1, 100):  # one event per batch, and one batch for the whole log
        fresh = open_read_model(f"sqlite:///{tmp_path / f'fresh-{size}.db'}")
        replay(runtime.log, fresh, runtime.codec, batch_size=size)
        assert differences(runtime.engine, fresh) == []
        fresh.dispose()


def test_a_second_batch_changes_tags_and_dependencies_in_place(runtime: Runtime) -> None:
    first, second, _ = append(runtime)
    for records in (first, second):
        with Session(runtime.engine) as session, session.begin():
            apply_batch(session, records, runtime.codec)
    with Session(runtime.engine) as session:
        assert sorted(session.scalars(select(JobTagRecord.tag))) == ["b", "c"]
        assert session.scalars(select(JobDependencyRecord.depends_on_id)).all() == ["y"]
        keys = session.execute(select(RunAttemptRecord.run_id, RunAttemptRecord.attempt))
        assert sorted(tuple(k) for k in keys) == [("r1", 1), ("r1", 2), ("r2", 1)]


def test_many_existing_rows_are_updated_in_one_batch(runtime: Runtime, tmp_path: Path) -> None:
    """Enough rows per table for PostgreSQL's staged upsert (COPY, then one merge)."""
    runs = [f"r{i:03d}" for i in range(250)]
    requested = [event(0, JobCreated(spec(("a",), ())))]
    requested += [event(1, RunRequested(trigger="manual"), r, 1) for r in runs]
    queued = [event(2, RunQueued(queue="default"), r, 1) for r in runs]
    queued += [event(3, RunStarted(worker_id="w", lease_token=i), r, 1) for i, r in enumerate(runs)]
    everything = requested + queued
    runtime.log.append([(e.key, runtime.codec.encode(e)) for e in everything])
    records = runtime.log.read(runtime.log.partition_for(JOB), 0, 1000)
    for batch in (records[: len(requested)], records[len(requested) :]):
        with Session(runtime.engine) as session, session.begin():
            assert apply_batch(session, batch, runtime.codec).rejected == 0

    with Session(runtime.engine) as session:
        statuses = session.execute(select(RunRecord.status, RunRecord.lease_token)).all()
        assert sorted(tuple(s) for s in statuses) == [("running", i) for i in range(250)]
        attempts = session.scalars(select(RunAttemptRecord.status)).all()
        assert attempts == ["running"] * 250
    fresh = open_read_model(f"sqlite:///{tmp_path / 'fresh.db'}")
    replay(runtime.log, fresh, runtime.codec)
    assert differences(runtime.engine, fresh) == []
    fresh.dispose()


@pytest.mark.parametrize("count", [3, 250])  # a pipelined executemany, and a staged merge
def test_an_adding_upsert_adds_to_existing_counts_and_inserts_new_ones(
    runtime: Runtime, count: int
) -> None:
    table = core_table(RollupGaugeLevelRecord)
    first = [{"gauge": "queue", "key": f"q{i:03d}", "level": i} for i in range(count)]
    second = [{"gauge": "queue", "key": f"q{i:03d}", "level": 10} for i in range(1, count + 1)]
    for rows in (first, second):
        with Session(runtime.engine) as session, session.begin():
            upsert_rows(session, table, rows, "add")
    with Session(runtime.engine) as session:
        levels = {key: level for key, level in session.execute(select(table.c.key, table.c.level))}
    expected = {f"q{i:03d}": i + 10 * (i >= 1) for i in range(count)} | {f"q{count:03d}": 10}
    assert levels == expected
