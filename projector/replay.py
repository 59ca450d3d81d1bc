"""Rebuild the read model from the log, and compare two read models."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from events.codec import EventCodec
from events.log import EventLog
from projector.batch import commit_batch
from projector.tables import Base, EventIndexRecord, ProjectorCheckpoint


def count_events(log: EventLog) -> int:
    return sum(m.high - m.low for m in log.all_watermarks().values())


def replay(
    log: EventLog,
    engine: Engine,
    codec: EventCodec,
    *,
    until: datetime | None = None,
    batch_size: int = 5000,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Apply the whole log (as it stands now) to the empty read model behind ``engine``.

    With ``until``, only records appended at or before it are applied, which rebuilds
    the state as it was then. Returns the number of events applied. Keys are
    independent, so partitions are replayed one after the other.
    """
    applied = 0
    for partition in range(log.partitions):
        applied += _replay_partition(
            log,
            engine,
            codec,
            partition,
            until=until,
            batch_size=batch_size,
            on_progress=on_progress,
        )
    return applied


def _replay_partition(
    log: EventLog,
    engine: Engine,
    codec: EventCodec,
    partition: int,
    *,
    until: datetime | None,
    batch_size: int,
    on_progress: Callable[[int], None] | None,
) -> int:
    marks = log.watermarks(partition)
    offset, applied = marks.low, 0
    while offset < marks.high:
        records = log.read(partition, offset, min(batch_size, marks.high - offset))
        if until is not None:
            records = [r for r in records if r.timestamp <= until]
        if not records:
            break
        # The same batch step as the live projector, unprojectable events included.
        commit_batch(engine, records, codec)
        offset = records[-1].offset + 1
        applied += len(records)
        if on_progress is not None:
            on_progress(len(records))
    return applied


def is_empty(engine: Engine) -> bool:
    """True when no event has been projected into the read model behind ``engine``."""
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(EventIndexRecord)) == 0


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows in primary-key order, without bookkeeping columns.

    Sorted here rather than by the database, whose string collation differs between
    backends (a SQLite read model is compared with a PostgreSQL one).
    """
    tables: dict[str, list[tuple[Any, ...]]] = {}
    with Session(engine) as session:
        for table in Base.metadata.sorted_tables:
            if table.name == ProjectorCheckpoint.__tablename__:
                columns = [table.c.partition, table.c.next_offset]
            else:
                columns = list(table.c)
            names = [column.name for column in columns]
            keys = [names.index(column.name) for column in table.primary_key.columns]
            rows = [tuple(row) for row in session.execute(select(*columns))]
            tables[table.name] = sorted(rows, key=lambda row: [row[k] for k in keys])
    return tables


def differences(left: Engine, right: Engine) -> list[str]:
    """Human-readable differences between two read models; empty when they are equal."""
    a, b = snapshot(left), snapshot(right)
    found = []
    for name, rows in a.items():
        other = b[name]
        if rows == other:
            continue
        pairs = zip(rows, other, strict=False)
        first = next((i for i, (x, y) in enumerate(pairs) if x != y), min(len(rows), len(other)))
        found.append(f"{name}: {len(rows)} vs {len(other)} rows, first difference at row {first}")
    return found
