"""The dashboard benchmark's seeder at a tiny size, so it cannot rot unnoticed.

``bench/seed.py`` writes a million runs through the real log and projector for
``bench/bench_dashboard.py``; here 10 jobs and 200 runs go through the same path into
a temporary SQLite log and read model, and every count must land.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bench.seed import WORKERS, NotEmpty, main, run_counts, seed
from chronolog.wiring import open_read_model
from eventlog.sqlite import SqliteEventLog
from projector.tables import (
    EventIndexRecord,
    JobDependencyRecord,
    JobRecord,
    RunRecord,
    WorkerRecord,
)

UNTIL = datetime(2026, 11, 30, 12, tzinfo=UTC)
UNTIL_TEXT = UNTIL.isoformat()


def count(session: Session, model: type[object], *where: object) -> int:
    query = select(func.count()).select_from(model).where(*where)  # type: ignore[arg-type]
    return session.scalar(query) or 0


def test_run_counts_sum_to_the_runs_asked_for() -> None:
    counts = run_counts(1000, 1_000_000)
    assert sum(counts) == 1_000_000
    assert counts[0] > 50 * counts[-1] > 0  # a few busy jobs, many quiet ones


def test_a_tiny_seed_lands_every_job_run_edge_and_event(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "events.db", partitions=12)
    engine = open_read_model(f"sqlite:///{tmp_path / 'readmodel.db'}")
    try:
        seeded = seed(log, engine, jobs=10, runs=200, days=2, until=UNTIL, seed=1)
        with Session(engine) as session:
            assert count(session, JobRecord) == 10
            assert count(session, RunRecord) == 200
            assert count(session, JobDependencyRecord) == 4  # jobs 5-9 form one chain
            assert count(session, RunRecord, RunRecord.trigger == "dependency") > 0
            assert count(session, RunRecord, RunRecord.status == "completed") > 150
            assert count(session, WorkerRecord) == len(WORKERS)
            assert count(session, EventIndexRecord) == seeded.events
            assert count(session, EventIndexRecord, EventIndexRecord.rejected.is_not(None)) == 0
            latest = session.scalar(select(func.max(RunRecord.requested_at)))
            assert latest is not None and latest <= UNTIL
        with pytest.raises(NotEmpty):  # idempotent by refusal: never seeded twice
            seed(log, engine, jobs=10, runs=200, days=2, until=UNTIL, seed=1)
    finally:
        log.close()
        engine.dispose()


def test_the_command_refuses_a_filled_target_and_projects_a_seeded_log_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--data-dir", str(tmp_path), "--jobs", "5", "--runs", "20", "--until", UNTIL_TEXT]
    assert main(args) == 0
    assert "seeded 5 jobs and 20 runs:" in capsys.readouterr().out
    assert main(args) == 2
    assert "refused: the event log already has events" in capsys.readouterr().err
    # The same log, projected once more into a second, empty read model.
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert main(["--data-dir", str(tmp_path), "--from-log", "--database", other]) == 0
    engine = open_read_model(other)
    try:
        with Session(engine) as session:
            assert count(session, JobRecord) == 5
            assert count(session, RunRecord) == 20
    finally:
        engine.dispose()
    assert main(["--data-dir", str(tmp_path), "--from-log", "--database", other]) == 2
