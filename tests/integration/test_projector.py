"""Exactly-once projection: failures and kills never apply an event twice or skip one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from chronolog.settings import Settings
from chronolog.wiring import Runtime, open_read_model
from eventlog.port import Position
from projector.batch import StaleBatch, apply_batch, read_checkpoints
from projector.loop import Projector
from projector.replay import differences, replay
from projector.tables import EventIndexRecord
from tests.conftest import wait_until
from tests.history import append_history


def indexed_positions(engine: Engine) -> list[tuple[int, int]]:
    with Session(engine) as session:
        rows = session.execute(select(EventIndexRecord.partition, EventIndexRecord.offset))
        return sorted((p, o) for p, o in rows)


def applied_count(engine: Engine) -> int:
    with Session(engine) as session:
        return sum(read_checkpoints(session).values())


def applied_at_least(engine: Engine, count: float) -> Callable[[], bool]:
    return lambda: applied_count(engine) >= count


def assert_exactly_once(runtime: Runtime, positions: list[Position], tmp_path: Path) -> None:
    """Every log position is in the audit index once, checkpoints are at the end, and
    the read model equals a fresh replay (job versions count every applied event)."""
    assert indexed_positions(runtime.engine) == sorted((p.partition, p.offset) for p in positions)
    with Session(runtime.engine) as session:
        ends = {p: runtime.log.watermarks(p).high for p in range(runtime.log.partitions)}
        assert read_checkpoints(session) == {p: end for p, end in ends.items() if end > 0}
    fresh = open_read_model(f"sqlite:///{tmp_path / 'fresh.db'}")
    replay(runtime.log, fresh, runtime.codec)
    assert differences(runtime.engine, fresh) == []
    fresh.dispose()


def drain(projector: Projector, runtime: Runtime, total: int) -> None:
    wait_until(lambda: projector.step(timeout=0.05) >= 0 and applied_count(runtime.engine) == total)


# A real database trigger that fails the insert of one event's audit row.
FAILING_TRIGGER = {
    "sqlite": [
        "CREATE TRIGGER fail_once BEFORE INSERT ON event_index "
        "WHEN NEW.partition = {victim.partition} AND NEW.offset = {victim.offset} "
        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        'IF NEW.partition = {victim.partition} AND NEW."offset" = {victim.offset} THEN '
        "RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$",
        "CREATE TRIGGER fail_once BEFORE INSERT ON event_index "
        "FOR EACH ROW EXECUTE FUNCTION fail_once()",
    ],
}
DROP_TRIGGER = {
    "sqlite": "DROP TRIGGER fail_once",
    "postgresql": "DROP TRIGGER fail_once ON event_index",
}


def test_a_batch_that_fails_midway_is_applied_again_whole(runtime: Runtime, tmp_path: Path) -> None:
    positions = append_history(runtime.log, runtime.codec, jobs=120)
    victim = positions[len(positions) // 2]
    with runtime.engine.begin() as connection:
        for statement in FAILING_TRIGGER[connection.dialect.name]:
            connection.execute(text(statement.format(victim=victim)))
    projector = Projector(runtime.log, runtime.engine, runtime.codec, batch_size=37)

    with pytest.raises(DBAPIError, match="injected failure"):
        while True:
            projector.step(timeout=0.05)

    # Nothing of the failed batch is visible, and the checkpoint stopped before it.
    indexed = indexed_positions(runtime.engine)
    assert (victim.partition, victim.offset) not in indexed
    with Session(runtime.engine) as session:
        assert read_checkpoints(session).get(victim.partition, 0) <= victim.offset
    assert len(indexed) == applied_count(runtime.engine)

    with runtime.engine.begin() as connection:
        connection.execute(text(DROP_TRIGGER[connection.dialect.name]))
    drain(projector, runtime, len(positions))
    projector.close()
    assert_exactly_once(runtime, positions, tmp_path)


def start_projector_process(settings: Settings) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "chronolog", "projector", "--data-dir", str(settings.data_dir)]
    env = {
        **os.environ,
        "CHRONOLOG_PARTITIONS": str(settings.partitions),
        "CHRONOLOG_DATABASE_URL": settings.database,
    }
    return subprocess.Popen([*command, "--batch-size", "250"], env=env, stdout=subprocess.DEVNULL)


def test_a_projector_killed_mid_stream_resumes_exactly_once(
    settings: Settings, runtime: Runtime, tmp_path: Path
) -> None:
    # 2,000 jobs (4,000 before): the kills still land mid-stream (checked below), in half
    # the time, which keeps the test inside its timeout on a loaded 2-core machine.
    positions = append_history(runtime.log, runtime.codec, jobs=2000)
    total = len(positions)
    kills = 0
    for fraction in (0.2, 0.45, 0.7):
        process = start_projector_process(settings)
        try:
            wait_until(
                applied_at_least(runtime.engine, total * fraction), timeout=60, interval=0.005
            )
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        kills += applied_count(runtime.engine) < total
    assert kills >= 2, "the projector finished before it could be killed mid-stream"

    process = start_projector_process(settings)
    try:
        wait_until(lambda: applied_count(runtime.engine) == total, timeout=60)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    assert_exactly_once(runtime, positions, tmp_path)


def test_replay_into_an_empty_database_equals_the_live_read_model(
    runtime: Runtime, tmp_path: Path
) -> None:
    positions = append_history(runtime.log, runtime.codec, jobs=300, seed=11)
    projector = Projector(runtime.log, runtime.engine, runtime.codec, batch_size=100)
    drain(projector, runtime, len(positions))
    projector.close()
    assert_exactly_once(runtime, positions, tmp_path)
    with Session(runtime.engine) as session:
        assert session.scalar(select(func.count()).select_from(EventIndexRecord)) == len(positions)


def test_replay_until_rebuilds_the_state_as_it_was(runtime: Runtime, tmp_path: Path) -> None:
    early = append_history(runtime.log, runtime.codec, jobs=50, seed=3)
    cutoff = max(
        r.timestamp for p in range(runtime.log.partitions) for r in runtime.log.read(p, 0, 10_000)
    )
    wait_until(lambda: datetime.now(UTC) > cutoff)  # later appends get later timestamps
    append_history(runtime.log, runtime.codec, jobs=80, seed=4)

    then = open_read_model(f"sqlite:///{tmp_path / 'then.db'}")
    assert replay(runtime.log, then, runtime.codec, until=cutoff) == len(early)
    assert indexed_positions(then) == sorted((p.partition, p.offset) for p in early)
    then.dispose()


def test_a_batch_applied_elsewhere_meanwhile_is_refused_whole(runtime: Runtime) -> None:
    """Two projectors holding the same records (a rebalance moved the partition): the
    checkpoint rows are claimed first, so the second writes nothing of its batch."""
    append_history(runtime.log, runtime.codec, jobs=30)
    records = runtime.log.read(0, 0, 1000)
    first, rest = records[:5], records[5:]
    with Session(runtime.engine) as session, session.begin():
        apply_batch(session, first, runtime.codec)
    with Session(runtime.engine) as session, session.begin(), pytest.raises(StaleBatch):
        apply_batch(session, rest[1:], runtime.codec)  # would skip a record: refused too
    with Session(runtime.engine) as session, session.begin(), pytest.raises(StaleBatch):
        apply_batch(session, [rest[0], *rest[2:]], runtime.codec)  # a gap inside the batch

    winner = Session(runtime.engine)
    winner.begin()
    apply_batch(winner, rest, runtime.codec)  # holds the checkpoint row until it commits
    loser_error: list[BaseException] = []

    def late_projector() -> None:
        try:
            with Session(runtime.engine) as session, session.begin():
                apply_batch(session, rest, runtime.codec)
        except BaseException as e:
            loser_error.append(e)

    thread = threading.Thread(target=late_projector)
    thread.start()
    thread.join(timeout=0.5)
    assert thread.is_alive()  # waits for the winner: a row lock, or SQLite's one writer
    winner.commit()
    winner.close()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert len(loser_error) == 1
    if runtime.engine.dialect.name == "postgresql":
        assert isinstance(loser_error[0], StaleBatch)
    assert indexed_positions(runtime.engine) == [(0, r.offset) for r in records]
    with Session(runtime.engine) as session:
        assert read_checkpoints(session)[0] == records[-1].offset + 1

    with Session(runtime.engine) as session, session.begin(), pytest.raises(StaleBatch):
        apply_batch(session, rest, runtime.codec)  # a batch behind the checkpoint, afterwards
