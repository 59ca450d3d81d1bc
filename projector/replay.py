"""Rebuild the read model from the log, and compare two read models."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from datetime import datetime
from itertools import takewhile
from typing import Any

from sqlalchemy import Connection, Engine, Index, func, inspect, select
from sqlalchemy.orm import Session

from eventlog.port import EventLog
from events.codec import EventCodec
from projector.batch import commit_batch
from projector.tables import Base, EventIndexRecord, ProjectorCheckpoint

Tables = dict[str, list[tuple[Any, ...]]]
"""A read model's rows, table by table, as ``snapshot`` reads them."""


def count_events(log: EventLog, upto: Mapping[int, int] | None = None) -> int:
    """Events a replay will read (``upto``: each partition's end, as in ``replay``)."""
    total = 0
    for partition, marks in log.all_watermarks().items():
        end = marks.high if upto is None else min(marks.high, upto.get(partition, 0))
        total += max(0, end - marks.low)
    return total


def replay(
    log: EventLog,
    engine: Engine,
    codec: EventCodec,
    *,
    until: datetime | None = None,
    upto: Mapping[int, int] | None = None,
    batch_size: int = 20_000,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Apply the whole log (as it stands now) to the empty read model behind ``engine``.

    With ``until``, each partition is applied up to its first record appended after
    that time, which rebuilds the state as it was then (a prefix, so a state the live
    projector passed through even if clocks disagree inside a partition). With
    ``upto`` (partition -> next offset, as in the checkpoints), each partition stops
    there; a partition it does not name is not replayed. Returns the number of events
    applied. Keys are independent, so partitions are replayed one after the other.

    Into an empty read model (every replay's case: nothing else reads it yet), batches
    are bigger than the live projector's and the secondary indexes are built once at
    the end instead of being kept up to date row by row; the rows are the same.
    """
    applied = 0
    with _indexes_deferred(engine) if is_empty(engine) else nullcontext():
        for partition in range(log.partitions):
            end = None if upto is None else upto.get(partition, 0)
            applied += _replay_partition(
                log,
                engine,
                codec,
                partition,
                end=end,
                until=until,
                batch_size=batch_size,
                on_progress=on_progress,
            )
    return applied


@contextmanager
def _indexes_deferred(engine: Engine) -> Iterator[None]:
    """Drop the non-unique secondary indexes, and create them again on the way out,
    failure or not. Unique ones stay: they refuse what the live projector's refuse."""
    present = {
        index["name"]
        for table in inspect(engine).get_table_names()
        for index in inspect(engine).get_indexes(table)
    }
    deferred: list[Index] = [
        index
        for table in Base.metadata.sorted_tables
        for index in table.indexes
        if not index.unique and index.name in present
    ]
    with engine.begin() as connection:
        for index in deferred:
            index.drop(connection)
    try:
        yield
    finally:
        with engine.begin() as connection:
            for index in deferred:
                index.create(connection)


def _replay_partition(
    log: EventLog,
    engine: Engine,
    codec: EventCodec,
    partition: int,
    *,
    end: int | None,
    until: datetime | None,
    batch_size: int,
    on_progress: Callable[[int], None] | None,
) -> int:
    marks = log.watermarks(partition)
    stop = marks.high if end is None else min(marks.high, end)
    offset, applied = marks.low, 0
    while offset < stop:
        read = log.read(partition, offset, min(batch_size, stop - offset))
        records = read if until is None else list(takewhile(lambda r: r.timestamp <= until, read))
        if records:
            # The same batch step as the live projector, unprojectable events included.
            commit_batch(engine, records, codec)
            offset = records[-1].offset + 1
            applied += len(records)
            if on_progress is not None:
                on_progress(len(records))
        if not records or len(records) < len(read):
            break  # the log ends here, or ``until`` does
    return applied


def is_empty(engine: Engine) -> bool:
    """True when no event has been projected into the read model behind ``engine``."""
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(EventIndexRecord)) == 0


@contextmanager
def _one_moment(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction whose statements all see the same committed state, so a
    projector committing meanwhile cannot tear a snapshot (tables vs. checkpoints)."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            # The sqlite3 module begins no transaction for a SELECT: without this each
            # statement would see its own moment. WAL keeps the projector writing.
            connection.exec_driver_sql("BEGIN")
        else:
            connection.execution_options(isolation_level="REPEATABLE READ")
        try:
            yield connection
        finally:
            connection.rollback()


def snapshot(engine: Engine) -> Tables:
    """Every table's rows in primary-key order, without bookkeeping columns, all read
    in one transaction (its ``projector_checkpoints`` say which events it holds).

    Sorted here rather than by the database, whose string collation differs between
    backends (a SQLite read model is compared with a PostgreSQL one).
    """
    tables: Tables = {}
    with _one_moment(engine) as connection:
        for table in Base.metadata.sorted_tables:
            if table.name == ProjectorCheckpoint.__tablename__:
                columns = [table.c.partition, table.c.next_offset]
            else:
                columns = list(table.c)
            names = [column.name for column in columns]
            keys = [names.index(column.name) for column in table.primary_key.columns]
            rows = [tuple(row) for row in connection.execute(select(*columns))]
            tables[table.name] = sorted(rows, key=lambda row: [row[k] for k in keys])
    return tables


def checkpoints(tables: Tables) -> dict[int, int]:
    """Partition -> next offset of a snapshot: where a replay must stop to equal it."""
    return {int(p): int(o) for p, o in tables[ProjectorCheckpoint.__tablename__]}


def differences(left: Engine, right: Engine) -> list[str]:
    """Human-readable differences between two read models; empty when they are equal."""
    return compare(snapshot(left), snapshot(right))


def compare(a: Tables, b: Tables) -> list[str]:
    """Human-readable differences between two snapshots; empty when they are equal."""
    found = []
    for name, rows in a.items():
        other = b[name]
        if rows == other:
            continue
        pairs = zip(rows, other, strict=False)
        first = next((i for i, (x, y) in enumerate(pairs) if x != y), min(len(rows), len(other)))
        found.append(f"{name}: {len(rows)} vs {len(other)} rows, first difference at row {first}")
    return found
