"""The ``EventLog`` contract: every adapter must pass these tests.

To add an adapter, add a ``<name>_log_opener`` fixture returning a picklable
callable that opens a new handle on one fresh, empty log with ``PARTITIONS``
partitions (or as many as a ``partitions=`` keyword says), and add ``<name>`` to
``ADAPTERS``.

Consumers get their assignment on some later ``poll`` (at once on SQLite, after a group
join on Kafka), so tests that need it poll until they have it.
"""

from __future__ import annotations

import functools
import multiprocessing
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from chronolog.wiring import open_read_model
from eventlog.kafka import KafkaEventLog
from eventlog.port import EventLog, LogConsumer, LogRecord, OnAssign, OnRevoke, Position, Watermarks
from eventlog.sqlite import SqliteEventLog
from events.codec import EventCodec
from events.errors import EventLogError
from events.model import to_millis
from events.partitioning import partition_for
from projector.batch import read_checkpoints
from projector.loop import Projector
from projector.replay import differences, replay
from projector.tables import EventIndexRecord
from tests.history import append_history

# The session's broker: fixtures ``kafka_bootstrap`` and ``kafka_group_config``.
PARTITIONS = 4
ADAPTERS = ["sqlite", "kafka"]

LogOpener = Callable[..., EventLog]
MakeConsumer = Callable[..., LogConsumer]


@pytest.fixture
def sqlite_log_opener(tmp_path: Path) -> LogOpener:
    return functools.partial(SqliteEventLog, tmp_path / "events.db", partitions=PARTITIONS)


@pytest.fixture
def kafka_log_opener(kafka_bootstrap: str, kafka_group_config: dict[str, Any]) -> LogOpener:
    """A fresh topic per test on the session's broker."""
    return functools.partial(
        KafkaEventLog,
        kafka_bootstrap,
        f"contract-{uuid.uuid4().hex}",
        partitions=PARTITIONS,
        consumer_config=kafka_group_config,
        append_timeout=10.0,
        request_timeout=10.0,
    )


@pytest.fixture(params=ADAPTERS)
def open_log(request: pytest.FixtureRequest) -> LogOpener:
    """Opens a new handle on one fresh log (picklable: other processes can use it)."""
    opener: LogOpener = request.getfixturevalue(f"{request.param}_log_opener")
    return opener


@pytest.fixture
def event_log(open_log: LogOpener) -> Iterator[EventLog]:
    log = open_log()
    yield log
    log.close()


def from_zero(partitions: Sequence[int]) -> Mapping[int, int]:
    return {p: 0 for p in partitions}


@pytest.fixture
def make_consumer(event_log: EventLog) -> Iterator[MakeConsumer]:
    made: list[LogConsumer] = []

    def make(on_assign: OnAssign = from_zero, on_revoke: OnRevoke | None = None) -> LogConsumer:
        consumer = event_log.consumer(f"contract-{uuid.uuid4()}")
        consumer.subscribe(on_assign, on_revoke)
        made.append(consumer)
        return consumer

    yield make
    for consumer in made:
        consumer.close()


def poll_until(consumer: LogConsumer, count: int, timeout: float = 10.0) -> list[LogRecord]:
    """Poll until ``count`` records arrived; fail at the deadline."""
    got: list[LogRecord] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"only {len(got)} of {count} records within {timeout} s"
        got.extend(consumer.poll(100, min(remaining, 0.5)))
    return got


def wait_for_assignment(consumer: LogConsumer, timeout: float = 10.0) -> None:
    """Poll (finding no records) until the consumer owns partitions; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not consumer.assignment():
        assert time.monotonic() < deadline, f"no assignment within {timeout} s"
        assert consumer.poll(10, 0.05) == []


def keys_in_distinct_partitions(count: int) -> list[str]:
    """``count`` keys that land in ``count`` different partitions."""
    by_partition: dict[int, str] = {}
    for i in range(1000):
        by_partition.setdefault(partition_for(f"job-{i}", PARTITIONS), f"job-{i}")
    assert len(by_partition) >= count
    return [by_partition[p] for p in sorted(by_partition)[:count]]


def by_partition(records: Sequence[LogRecord]) -> dict[int, list[LogRecord]]:
    grouped: dict[int, list[LogRecord]] = defaultdict(list)
    for record in records:
        grouped[record.partition].append(record)
    return grouped


def read_all(log: EventLog) -> dict[int, list[LogRecord]]:
    return {p: log.read(p, 0, 1_000_000) for p in range(log.partitions)}


# --- append, read, watermarks ------------------------------------------------------


def test_offsets_start_at_zero_and_are_dense_per_partition(event_log: EventLog) -> None:
    positions: list[Position] = []
    for size in (1, 7, 50, 3, 139):
        batch = [(f"job-{i % 20}", f"{size}-{i}".encode()) for i in range(size)]
        positions.extend(event_log.append(batch))
    for partition, offsets in _offsets_by_partition(positions).items():
        assert offsets == list(range(len(offsets))), partition
    assert sum(event_log.watermarks(p).high for p in range(PARTITIONS)) == 200


def _offsets_by_partition(positions: Sequence[Position]) -> dict[int, list[int]]:
    grouped: dict[int, list[int]] = defaultdict(list)
    for position in positions:
        grouped[position.partition].append(position.offset)
    return grouped


def test_same_key_lands_in_one_partition_in_input_order(event_log: EventLog) -> None:
    landed: dict[str, set[int]] = defaultdict(set)
    for start in range(0, 60, 6):
        batch = [(k, f"{k}:{i}".encode()) for i in range(start, start + 6) for k in ("a", "b")]
        for (key, _), position in zip(batch, event_log.append(batch), strict=True):
            landed[key].add(position.partition)
    assert landed == {"a": {event_log.partition_for("a")}, "b": {event_log.partition_for("b")}}
    for key in ("a", "b"):
        records = event_log.read(event_log.partition_for(key), 0, 1000)
        values = [r.value for r in records if r.key == key]
        assert values == [f"{key}:{i}".encode() for i in range(60)]


def test_batch_positions_follow_input_order(event_log: EventLog) -> None:
    batch = [(f"job-{i % 9}", str(i).encode()) for i in range(40)]
    positions = event_log.append(batch)
    assert len(positions) == len(batch)
    for (key, value), position in zip(batch, positions, strict=True):
        assert position.partition == partition_for(key, PARTITIONS) == event_log.partition_for(key)
        [record] = event_log.read(position.partition, position.offset, 1)
        assert (record.key, record.value, record.offset) == (key, value, position.offset)


def test_records_carry_append_time(event_log: EventLog) -> None:
    before = to_millis(datetime.now(UTC))
    [position] = event_log.append([("job-1", b"x")])
    after = datetime.now(UTC)
    [record] = event_log.read(position.partition, position.offset, 1)
    assert before <= record.timestamp <= after
    assert record.timestamp.utcoffset() is not None


def test_read_from_offset_respects_limit(event_log: EventLog) -> None:
    event_log.append([("job-1", str(i).encode()) for i in range(10)])
    partition = event_log.partition_for("job-1")
    assert [r.offset for r in event_log.read(partition, 3, 4)] == [3, 4, 5, 6]
    assert [r.value for r in event_log.read(partition, 8, 100)] == [b"8", b"9"]
    assert event_log.read(partition, 10, 100) == []
    assert event_log.read(partition, 500, 1) == []


def test_watermarks_of_empty_and_filled_partitions(event_log: EventLog) -> None:
    empty, filled = keys_in_distinct_partitions(2)
    event_log.append([(filled, b"x")] * 5)
    assert event_log.watermarks(event_log.partition_for(empty)) == Watermarks(low=0, high=0)
    assert event_log.watermarks(event_log.partition_for(filled)) == Watermarks(low=0, high=5)
    every = event_log.all_watermarks()
    assert every == {p: event_log.watermarks(p) for p in range(PARTITIONS)}
    assert sum(marks.high for marks in every.values()) == 5


def test_empty_append_appends_nothing(event_log: EventLog) -> None:
    assert event_log.append([]) == []
    assert all(event_log.watermarks(p).high == 0 for p in range(PARTITIONS))


@pytest.mark.parametrize("partition", [-1, PARTITIONS])
def test_partition_out_of_range_is_refused(event_log: EventLog, partition: int) -> None:
    with pytest.raises(ValueError, match=str(partition)):
        event_log.read(partition, 0)
    with pytest.raises(ValueError, match=str(partition)):
        event_log.watermarks(partition)


def test_records_survive_close_and_reopen(open_log: LogOpener) -> None:
    log = open_log()
    positions = log.append([(f"job-{i}", str(i).encode()) for i in range(30)])
    log.close()
    reopened = open_log()
    try:
        for i, position in enumerate(positions):
            [record] = reopened.read(position.partition, position.offset, 1)
            assert record.value == str(i).encode()
        partition = reopened.partition_for("job-0")
        high = sum(1 for p in positions if p.partition == partition)
        assert reopened.watermarks(partition) == Watermarks(low=0, high=high)
        assert reopened.append([("job-0", b"next")]) == [Position(partition, high)]
    finally:
        reopened.close()


def test_reopening_with_another_partition_count_is_refused(open_log: LogOpener) -> None:
    open_log().close()
    with pytest.raises(EventLogError, match=f"{PARTITIONS} partitions"):
        open_log(partitions=PARTITIONS + 1)


# --- consumers ---------------------------------------------------------------------


def test_on_assign_gets_every_partition_and_its_offsets_are_used(
    event_log: EventLog, make_consumer: MakeConsumer
) -> None:
    keys = keys_in_distinct_partitions(PARTITIONS)
    event_log.append([(key, str(i).encode()) for i in range(5) for key in keys])
    assigned: list[list[int]] = []

    def start_at_three(partitions: Sequence[int]) -> Mapping[int, int]:
        assigned.append(sorted(partitions))
        return {p: 3 for p in partitions}

    consumer = make_consumer(start_at_three)
    records = poll_until(consumer, 2 * PARTITIONS)
    assert assigned == [list(range(PARTITIONS))]
    assert consumer.assignment() == list(range(PARTITIONS))
    assert sorted((r.partition, r.offset) for r in records) == [
        (p, o) for p in range(PARTITIONS) for o in (3, 4)
    ]


def test_a_failing_on_assign_is_asked_again_and_nothing_is_read_meanwhile(
    event_log: EventLog, make_consumer: MakeConsumer
) -> None:
    event_log.append([("job-1", b"x")])
    calls: list[list[int]] = []

    def flaky(partitions: Sequence[int]) -> Mapping[int, int]:
        calls.append(sorted(partitions))
        if len(calls) == 1:
            raise RuntimeError("checkpoint store down")
        return from_zero(partitions)

    consumer = make_consumer(flaky)
    deadline = time.monotonic() + 10
    with pytest.raises(RuntimeError, match="checkpoint store down"):
        while time.monotonic() < deadline:
            assert consumer.poll(10, 0.1) == []
    assert consumer.assignment() == []
    assert [r.value for r in poll_until(consumer, 1)] == [b"x"]
    assert calls == [list(range(PARTITIONS))] * 2


def test_poll_returns_every_record_once_in_partition_order(
    event_log: EventLog, make_consumer: MakeConsumer
) -> None:
    for start in range(0, 300, 50):
        event_log.append([(f"job-{i % 13}", str(i).encode()) for i in range(start, start + 50)])
    records = poll_until(make_consumer(), 300)
    assert sorted(int(r.value) for r in records) == list(range(300))
    for partition, got in by_partition(records).items():
        assert [r.offset for r in got] == list(range(len(got))), partition
    assert len(records) == 300


def test_poll_waits_for_a_later_append(event_log: EventLog, make_consumer: MakeConsumer) -> None:
    consumer = make_consumer()
    wait_for_assignment(consumer)
    assert consumer.poll(10, 0.0) == []
    appender = threading.Timer(0.1, lambda: event_log.append([("job-late", b"late")]))
    started = time.monotonic()
    appender.start()
    try:
        records = consumer.poll(10, 10.0)
    finally:
        appender.join()
    assert [r.value for r in records] == [b"late"]
    assert time.monotonic() - started < 2.0


def test_poll_gives_up_after_timeout(make_consumer: MakeConsumer) -> None:
    consumer = make_consumer()
    started = time.monotonic()
    assert consumer.poll(10, 0.2) == []
    assert time.monotonic() - started >= 0.19


def test_position_follows_consumed_records(
    event_log: EventLog, make_consumer: MakeConsumer
) -> None:
    [key] = keys_in_distinct_partitions(1)
    partition = event_log.partition_for(key)
    event_log.append([(key, str(i).encode()) for i in range(7)])
    consumer = make_consumer()
    poll_until(consumer, 7)
    assert consumer.position(partition) == 7
    assert all(consumer.position(p) == 0 for p in range(PARTITIONS) if p != partition)


def test_seek_rewinds_and_skips(event_log: EventLog, make_consumer: MakeConsumer) -> None:
    [key] = keys_in_distinct_partitions(1)
    partition = event_log.partition_for(key)
    event_log.append([(key, str(i).encode()) for i in range(10)])
    consumer = make_consumer()
    poll_until(consumer, 10)
    consumer.seek(partition, 4)
    assert consumer.position(partition) == 4
    assert [r.offset for r in poll_until(consumer, 6)] == [4, 5, 6, 7, 8, 9]
    consumer.seek(partition, 12)
    event_log.append([(key, str(i).encode()) for i in range(10, 14)])
    assert [r.offset for r in poll_until(consumer, 2)] == [12, 13]


def test_position_before_assignment_is_an_error(event_log: EventLog) -> None:
    consumer = event_log.consumer(f"contract-{uuid.uuid4()}")
    try:
        consumer.subscribe(from_zero)
        assert consumer.assignment() == []
        with pytest.raises(EventLogError, match="not assigned"):
            consumer.position(0)
    finally:
        consumer.close()


def test_close_revokes_the_assignment(event_log: EventLog, make_consumer: MakeConsumer) -> None:
    revoked: list[list[int]] = []
    consumer = make_consumer(from_zero, lambda partitions: revoked.append(list(partitions)))
    wait_for_assignment(consumer)
    consumer.close()
    assert revoked == [list(range(PARTITIONS))]
    with pytest.raises(EventLogError):
        consumer.poll(10, 0.0)


# --- concurrency -------------------------------------------------------------------


def test_threads_append_to_one_log_while_a_consumer_reads(
    event_log: EventLog, make_consumer: MakeConsumer
) -> None:
    consumer = make_consumer()
    errors: list[BaseException] = []

    def append(worker: int) -> None:
        try:
            for i in range(100):
                event_log.append([(f"job-{i % 5}", f"{worker}:{i}".encode())])
        except BaseException as e:
            errors.append(e)
            raise

    threads = [threading.Thread(target=append, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    records = poll_until(consumer, 400, timeout=20)
    for thread in threads:
        thread.join()
    assert errors == []
    _assert_complete_and_ordered(records, workers=4, per_worker=100)


def _append_from_process(open_log: LogOpener, worker: int, count: int) -> None:
    log = open_log()
    try:
        for i in range(count):
            log.append([(f"job-{i % 8}", f"{worker}:{i}".encode())])
    finally:
        log.close()


def test_processes_append_concurrently_without_gaps_or_duplicates(
    event_log: EventLog, open_log: LogOpener
) -> None:
    workers, per_worker = 4, 500
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_append_from_process, args=(open_log, w, per_worker))
        for w in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert [p.exitcode for p in processes] == [0] * workers
    stored = read_all(event_log)
    for partition, records in stored.items():
        assert [r.offset for r in records] == list(range(len(records))), partition
        assert event_log.watermarks(partition).high == len(records)
    _assert_complete_and_ordered(
        [r for records in stored.values() for r in records], workers, per_worker
    )


def _assert_complete_and_ordered(
    records: Sequence[LogRecord], workers: int, per_worker: int
) -> None:
    """Every ``worker:i`` value exactly once, and each worker's key in append order."""
    values = [r.value.decode() for r in records]
    assert sorted(values) == sorted(f"{w}:{i}" for w in range(workers) for i in range(per_worker))
    seen: dict[tuple[str, str], list[int]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        worker, i = record.value.decode().split(":")
        seen[(record.key, worker)].append(int(i))
    assert all(sequence == sorted(sequence) for sequence in seen.values())


# --- the projector's use of a consumer ---------------------------------------------


def test_projector_applies_every_record_once_across_a_failed_batch(
    event_log: EventLog, tmp_path: Path
) -> None:
    """A batch that fails mid-way is rewound with ``seek`` and applied again, whole."""
    codec = EventCodec.default()
    positions = append_history(event_log, codec, jobs=60)
    victim = positions[len(positions) // 2]
    live = open_read_model(f"sqlite:///{tmp_path / 'live.db'}")
    with live.begin() as connection:
        connection.execute(
            text(
                "CREATE TRIGGER fail_once BEFORE INSERT ON event_index "
                f"WHEN NEW.partition = {victim.partition} AND NEW.offset = {victim.offset} "
                "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
            )
        )
    projector = Projector(event_log, live, codec, group=f"contract-{uuid.uuid4()}", batch_size=23)
    try:
        with pytest.raises(DBAPIError, match="injected failure"):
            _project_until(projector, live, len(positions))
        with live.begin() as connection:
            connection.execute(text("DROP TRIGGER fail_once"))
        _project_until(projector, live, len(positions))
    finally:
        projector.close()
    fresh = open_read_model(f"sqlite:///{tmp_path / 'fresh.db'}")
    assert replay(event_log, fresh, codec) == len(positions)
    assert differences(live, fresh) == []
    with Session(live) as session:
        rows = session.execute(select(EventIndexRecord.partition, EventIndexRecord.offset))
        assert sorted((p, o) for p, o in rows) == sorted((p.partition, p.offset) for p in positions)
    live.dispose()
    fresh.dispose()


def _project_until(projector: Projector, engine: Engine, total: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with Session(engine) as session:
            if sum(read_checkpoints(session).values()) == total:
                return
        assert time.monotonic() < deadline, f"not all {total} records projected in {timeout} s"
        projector.step(timeout=0.1)
