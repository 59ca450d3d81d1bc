"""What only the embedded SQLite log promises, beyond the shared contract suite."""

from __future__ import annotations

import gc
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from eventlog.port import Watermarks
from eventlog.sqlite import SqliteEventLog
from events.errors import EventLogError, EventLogUnavailable

PARTITIONS = 4


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "log" / "events.db"


@pytest.fixture
def log(path: Path) -> Iterator[SqliteEventLog]:
    event_log = SqliteEventLog(path, PARTITIONS)
    yield event_log
    event_log.close()


def from_zero(partitions: Sequence[int]) -> Mapping[int, int]:
    return {p: 0 for p in partitions}


def key_of_partition(log: SqliteEventLog, partition: int) -> str:
    return next(f"job-{i}" for i in range(1000) if log.partition_for(f"job-{i}") == partition)


def test_file_uses_wal_journal_and_is_created_with_its_directory(
    log: SqliteEventLog, path: Path
) -> None:
    assert path.exists()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()


def test_reopening_with_another_partition_count_fails(log: SqliteEventLog, path: Path) -> None:
    with pytest.raises(EventLogError, match=f"{path}.*4 partitions, opened with 6"):
        SqliteEventLog(path, 6)


def test_failed_batch_leaves_nothing_behind(log: SqliteEventLog, path: Path) -> None:
    key = key_of_partition(log, 1)
    # Plant a record where the batch's sixth record would go, so the insert fails midway.
    with sqlite3.connect(path) as raw:
        raw.execute(
            "INSERT INTO records (partition_id, record_offset, record_key, value, appended_ms)"
            " VALUES (1, 5, 'planted', x'00', 0)"
        )
    raw.close()
    with pytest.raises(EventLogError, match=f"append of 10 records failed on event log {path}"):
        log.append([(key, str(i).encode()) for i in range(10)])
    assert log.watermarks(1).high == 0
    assert [r.key for r in log.read(1, 0, 100)] == ["planted"]


def test_append_waiting_too_long_for_another_writer_is_unavailable(path: Path) -> None:
    log = SqliteEventLog(path, PARTITIONS, busy_timeout=0.05)
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(EventLogUnavailable, match=str(path)):
            log.append([("job-1", b"x")])
        blocker.execute("ROLLBACK")
        assert log.append([("job-1", b"x")])[0].offset == 0
    finally:
        blocker.close()
        log.close()


def test_records_must_be_str_and_bytes(log: SqliteEventLog) -> None:
    with pytest.raises(TypeError):
        log.append([("job-1", "not bytes")])  # type: ignore[list-item]
    assert log.watermarks(log.partition_for("job-1")).high == 0


def test_closed_log_refuses_work_and_names_its_file(log: SqliteEventLog, path: Path) -> None:
    log.close()
    with pytest.raises(EventLogError, match=f"{path} is closed"):
        log.append([("job-1", b"x")])
    with pytest.raises(EventLogError, match="closed"):
        log.read(0, 0)


def test_consumer_sees_appends_of_another_log_handle_promptly(
    log: SqliteEventLog, path: Path
) -> None:
    consumer = log.consumer("projector")
    consumer.subscribe(from_zero)
    assert consumer.poll(10, 0.0) == []
    # A second handle on the file stands in for another process: no in-memory wake-up.
    other = SqliteEventLog(path, PARTITIONS)
    appender = threading.Timer(0.1, lambda: other.append([("job-1", b"from elsewhere")]))
    started = time.monotonic()
    appender.start()
    try:
        records = consumer.poll(10, 10.0)
    finally:
        appender.join()
        other.close()
    assert [r.value for r in records] == [b"from elsewhere"]
    assert time.monotonic() - started < 1.0


def test_poll_shares_max_records_among_partitions(log: SqliteEventLog) -> None:
    for partition in range(PARTITIONS):
        log.append([(key_of_partition(log, partition), b"x")] * 50)
    consumer = log.consumer("projector")
    consumer.subscribe(from_zero)
    records = consumer.poll(20, 1.0)
    counts = [sum(1 for r in records if r.partition == p) for p in range(PARTITIONS)]
    assert counts == [5] * PARTITIONS


def test_poll_fills_its_budget_when_some_partitions_run_dry(log: SqliteEventLog) -> None:
    log.append([(key_of_partition(log, 0), b"x")] * 2 + [(key_of_partition(log, 1), b"y")] * 50)
    consumer = log.consumer("projector")
    consumer.subscribe(from_zero)
    records = consumer.poll(20, 1.0)
    assert len(records) == 20
    assert sorted({r.partition for r in records}) == [0, 1]
    assert [r.offset for r in records if r.partition == 1] == list(range(18))


def test_every_consumer_of_a_group_gets_every_partition(log: SqliteEventLog) -> None:
    # No group coordinator on the embedded log: run one member per group.
    first, second = log.consumer("projector"), log.consumer("projector")
    for consumer in (first, second):
        consumer.subscribe(from_zero)
        consumer.poll(1, 0.0)
        assert consumer.assignment() == list(range(PARTITIONS))


def test_partition_missing_from_on_assign_starts_at_zero(log: SqliteEventLog) -> None:
    log.append([(key_of_partition(log, p), b"x") for p in range(PARTITIONS)])
    consumer = log.consumer("projector")
    consumer.subscribe(lambda partitions: {0: 1})
    records = consumer.poll(100, 1.0)
    assert sorted(r.partition for r in records) == [1, 2, 3]


def test_poll_before_subscribe_is_an_error(log: SqliteEventLog) -> None:
    with pytest.raises(EventLogError, match="before subscribe"):
        log.consumer("projector").poll(10, 0.0)


def test_resubscribing_revokes_then_assigns_again(log: SqliteEventLog) -> None:
    revoked: list[list[int]] = []
    consumer = log.consumer("projector")
    consumer.subscribe(from_zero, lambda partitions: revoked.append(list(partitions)))
    consumer.poll(1, 0.0)
    consumer.subscribe(lambda partitions: {p: 0 for p in partitions})
    assert revoked == [list(range(PARTITIONS))]
    assert consumer.assignment() == []
    consumer.poll(1, 0.0)
    assert consumer.assignment() == list(range(PARTITIONS))


def _open_files(path: Path) -> int:
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if _target(fd).startswith(str(path)))


def _target(fd: Path) -> str:
    try:
        return os.readlink(fd)
    except OSError:
        return ""


def _append_in_threads(log: SqliteEventLog, count: int) -> None:
    for i in range(count):
        thread = threading.Thread(target=log.append, args=([(f"job-{i}", b"x")],))
        thread.start()
        thread.join()
    gc.collect()


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc (Linux)")
def test_connections_of_finished_threads_are_closed(log: SqliteEventLog, path: Path) -> None:
    # SQLite may keep one closed connection's descriptor for reuse (POSIX locks are per
    # process), so measure after a few threads and check it does not grow with more.
    _append_in_threads(log, 3)
    settled = _open_files(path)
    _append_in_threads(log, 30)
    assert _open_files(path) == settled
    assert sum(log.watermarks(p).high for p in range(PARTITIONS)) == 33


def test_close_closes_the_connections_of_every_thread(path: Path) -> None:
    log = SqliteEventLog(path, PARTITIONS)
    gate = threading.Event()
    done = threading.Event()

    def append_and_wait() -> None:
        log.append([("job-1", b"x")])
        done.set()
        gate.wait(10)

    thread = threading.Thread(target=append_and_wait)
    thread.start()
    try:
        assert done.wait(10)
        assert _open_files(path) > 0
        log.close()
        assert _open_files(path) == 0
    finally:
        gate.set()
        thread.join()
    reopened = SqliteEventLog(path, PARTITIONS)
    assert reopened.watermarks(reopened.partition_for("job-1")) == Watermarks(0, 1)
    reopened.close()
