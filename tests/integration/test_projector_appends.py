"""A projector batch never ends inside one append of the embedded log.

The API appends a run's ``RunRequested`` and ``RunQueued`` together; a batch boundary
between them would commit a requested run that is not queued yet, which a scheduler
round could read. Batches of an odd size over appends of two events would cut pairs
if the projector stopped where the poll did.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from chronolog.roles import scheduler_role
from chronolog.settings import Settings
from chronolog.wiring import build_runtime, open_read_model
from eventlog.sqlite import SqliteEventLog
from events.codec import EventCodec
from events.model import Event, JobCreated, JobSpec, RunQueued, RunRequested
from projector.appends import keeps_appends_whole
from projector.loop import Projector
from projector.tables import RunRecord
from tests.conftest import wait_until
from tests.integration.test_projector import (
    DROP_TRIGGER,
    FAILING_TRIGGER,
    applied_count,
    indexed_positions,
)

JOBS = 3
RUNS = 24


def run_pair(job_id: str, run_id: str) -> list[Event]:
    now = datetime.now(UTC)
    requested = Event(
        payload=RunRequested(trigger="manual"),
        occurred_at=now,
        actor="api",
        job_id=job_id,
        run_id=run_id,
    )
    queued = Event(
        payload=RunQueued(queue="default"),
        occurred_at=now,
        actor="api",
        job_id=job_id,
        run_id=run_id,
    )
    return [requested, queued]


def statuses(session: Session) -> Counter[str]:
    return Counter(session.scalars(select(RunRecord.status)))


def fill(log: SqliteEventLog, codec: EventCodec) -> list[tuple[int, int]]:
    """Three jobs, then a run's two events per append; every position, in order."""
    jobs = [f"job-{i}" for i in range(JOBS)]
    created = [
        Event(
            payload=JobCreated(JobSpec(name=job, type="python", function="m.f")),
            occurred_at=datetime.now(UTC),
            actor="api",
            job_id=job,
        )
        for job in jobs
    ]
    positions = log.append([(e.key, codec.encode(e)) for e in created])
    for i in range(RUNS):
        pair = run_pair(jobs[i % JOBS], f"run-{i}")
        positions += log.append([(e.key, codec.encode(e)) for e in pair])
        time.sleep(0.002)  # the next append gets another millisecond: a boundary to find
    return sorted((p.partition, p.offset) for p in positions)


def test_batches_end_between_appends_only(tmp_path: Path) -> None:
    codec = EventCodec.default()
    log = SqliteEventLog(tmp_path / "events.db", partitions=2)
    engine = open_read_model(f"sqlite:///{tmp_path / 'read.db'}", upgrade=True)
    fill(log, codec)
    projector = Projector(log, engine, codec, batch_size=3)
    total = JOBS + 2 * RUNS
    seen: list[Counter[str]] = []
    try:
        while projector.applied < total:
            if projector.step(timeout=0.05):
                with Session(engine) as session:
                    seen.append(statuses(session))
    finally:
        projector.close()
        log.close()
        engine.dispose()
    # Many batches, each committing whole pairs only: no run was ever seen requested alone.
    assert len(seen) > RUNS // 3
    assert all(counts["pending"] == 0 for counts in seen), seen
    assert seen[-1] == Counter({"queued": RUNS})


def test_records_held_at_a_failed_batch_are_still_applied_exactly_once(tmp_path: Path) -> None:
    codec = EventCodec.default()
    log = SqliteEventLog(tmp_path / "events.db", partitions=2)
    engine = open_read_model(f"sqlite:///{tmp_path / 'read.db'}", upgrade=True)
    positions = fill(log, codec)
    partition, offset = positions[len(positions) // 2]
    victim = type("Victim", (), {"partition": partition, "offset": offset})
    with engine.begin() as connection:
        for statement in FAILING_TRIGGER["sqlite"]:
            connection.execute(text(statement.format(victim=victim)))
    projector = Projector(log, engine, codec, batch_size=3)
    try:
        with pytest.raises(DBAPIError, match="injected failure"):
            while True:
                projector.step(timeout=0.05)
        assert projector._open_appends  # records were held when the batch failed
        with engine.begin() as connection:
            connection.execute(text(DROP_TRIGGER["sqlite"]))
        wait_until(
            lambda: projector.step(timeout=0.05) >= 0 and applied_count(engine) == len(positions)
        )
    finally:
        projector.close()
        log.close()
    assert indexed_positions(engine) == positions  # each once: none lost, none twice
    engine.dispose()


def test_the_embedded_scheduler_gives_the_apis_queued_runs_no_grace(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        partitions=2,
        database_url=f"sqlite:///{tmp_path / 'read.db'}",
    )
    runtime = build_runtime(settings)
    try:
        assert keeps_appends_whole(runtime.log)
        assert scheduler_role(runtime).config.api_queued_grace == timedelta(0)
    finally:
        runtime.close()
