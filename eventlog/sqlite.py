"""Embedded event log: a SQLite file with Kafka's partition and offset semantics.

Records live in one table keyed by (partition, offset); ``partition_heads`` holds the
next offset of each partition. An append is one ``BEGIN IMMEDIATE`` transaction that
reads the heads, inserts the records and moves the heads, so offsets stay dense and
unique even while several processes append: SQLite admits one writer at a time and
``busy_timeout`` makes the others wait their turn.

The log is usable from many threads: each thread gets its own connection (sqlite3
connections must not be shared), closed when the thread ends or the log closes.

There is no group coordinator: every consumer of a group gets every partition, so run
one member per consumer group on the embedded log.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Literal

from embedded.doorbell import FALLBACK_INTERVAL, Doorbell, bell_directory
from embedded.sqlite import ThreadConnections, immediate
from eventlog.port import (
    EventLog,
    LogConsumer,
    LogRecord,
    OnAssign,
    OnRevoke,
    Position,
    Watermarks,
    start_offset,
)
from events.errors import EventLogError, EventLogUnavailable

logger = logging.getLogger(__name__)

Synchronous = Literal["FULL", "NORMAL", "EXTRA"]

FORMAT_VERSION: Final = "1"
RECHECK_INTERVAL: Final = 0.005
"""Seconds between looks at the file for appends made by other processes, where no
doorbell rings (``embedded.doorbell``); ``FALLBACK_INTERVAL`` where one does."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_BUSY_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})

_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS log_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS partition_heads (
        partition_id INTEGER PRIMARY KEY,
        next_offset INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS records (
        id INTEGER PRIMARY KEY,
        partition_id INTEGER NOT NULL,
        record_offset INTEGER NOT NULL,
        record_key TEXT NOT NULL,
        value BLOB NOT NULL,
        appended_ms INTEGER NOT NULL,
        UNIQUE (partition_id, record_offset)
    )""",
)
_INSERT: Final = (
    "INSERT INTO records (partition_id, record_offset, record_key, value, appended_ms)"
    " VALUES (?, ?, ?, ?, ?)"
)
_MOVE_HEAD: Final = "UPDATE partition_heads SET next_offset = ? WHERE partition_id = ?"
_SELECT_HEADS: Final = "SELECT partition_id, next_offset FROM partition_heads"
_SELECT_RECORDS: Final = (
    "SELECT record_offset, record_key, value, appended_ms FROM records"
    " WHERE partition_id = ? AND record_offset >= ? AND record_offset < ?"
    " ORDER BY record_offset"
)
_SELECT_WATERMARKS: Final = (
    "SELECT (SELECT MIN(record_offset) FROM records WHERE partition_id = ?), next_offset"
    " FROM partition_heads WHERE partition_id = ?"
)


class SqliteEventLog(EventLog):
    """The ``EventLog`` port on a SQLite file (WAL), for one machine and many processes.

    Args:
        path: the database file; created with its directory if missing.
        partitions: fixed for the life of the file; reopening with another count fails.
        synchronous: ``FULL`` (default) fsyncs every commit, so an acknowledged append
            survives power loss; ``NORMAL`` survives process crashes only.
        busy_timeout: seconds an append waits for other writers before giving up.
    """

    def __init__(
        self,
        path: str | Path,
        partitions: int = 12,
        *,
        synchronous: Synchronous = "FULL",
        busy_timeout: float = 30.0,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, got {synchronous!r}")
        self._path = Path(path)
        self._partitions = partitions
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._connections = ThreadConnections(
            self._path,
            busy_timeout=busy_timeout,
            pragmas=(f"PRAGMA synchronous={synchronous}",),
            closed_error=lambda: EventLogError(f"event log {self._path} is closed"),
        )
        self._append_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending: list[_PendingAppend] = []
        self._appended = threading.Condition()
        self._generation = 0
        # Other processes' appends ring it; a consumer listens from its first wait.
        self._doorbell = Doorbell(bell_directory(self._path))
        self._recheck = RECHECK_INTERVAL
        self._closed = False
        try:
            self._initialise()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"SqliteEventLog({str(self._path)!r}, partitions={self._partitions})"

    @property
    def path(self) -> Path:
        return self._path

    @property
    def partitions(self) -> int:
        return self._partitions

    def append(self, records: Sequence[tuple[str, bytes]]) -> list[Position]:
        """Append ``(key, value)`` records in one transaction; see ``EventLog.append``.

        Group commit: appends that arrive from other threads of this process while a
        commit is under way are committed together in the next transaction, one fsync
        for all of them. Each call still lands whole or not at all, in call order.
        """
        partitions = self._partitions_of(records)
        if not partitions:
            return []
        pending = _PendingAppend(records, partitions)
        with self._pending_lock:
            self._pending.append(pending)
        with self._append_lock:
            if not pending.done:
                self._commit_pending()
        if pending.error is not None:
            raise pending.error
        assert pending.positions is not None
        return pending.positions

    def _commit_pending(self) -> None:
        with self._pending_lock:
            batch, self._pending = self._pending, []
        try:
            positions = self._write(batch)
        except sqlite3.Error as e:
            error = self._error(e, f"append of {sum(len(p.records) for p in batch)} records")
            for pending in batch:
                pending.error = error
        else:
            for pending, claimed in zip(batch, positions, strict=True):
                pending.positions = claimed
            self._notify_appended()
            self._doorbell.ring()
        for pending in batch:
            pending.done = True

    def _write(self, batch: Sequence[_PendingAppend]) -> list[list[Position]]:
        now_ms = time.time_ns() // 1_000_000
        conn = self._connection()
        with immediate(conn, self._busy_timeout):
            heads = dict(conn.execute(_SELECT_HEADS).fetchall())
            claimed = [_claim_offsets(pending.partitions, heads) for pending in batch]
            rows = (
                (pos.partition, pos.offset, key, value, now_ms)
                for pending, positions in zip(batch, claimed, strict=True)
                for pos, (key, value) in zip(positions, pending.records, strict=True)
            )
            conn.executemany(_INSERT, rows)
            moved = {pos.partition for positions in claimed for pos in positions}
            conn.executemany(_MOVE_HEAD, ((heads[p], p) for p in moved))
        return claimed

    def read(self, partition: int, offset: int, limit: int = 1000) -> list[LogRecord]:
        """Records of ``partition`` with offsets ``offset`` .. ``offset + limit - 1``."""
        self._check_partition(partition)
        if offset < 0 or limit < 1:
            raise ValueError(f"need offset >= 0 and limit >= 1, got {offset} and {limit}")
        try:
            rows = (
                self._connection()
                .execute(_SELECT_RECORDS, (partition, offset, offset + limit))
                .fetchall()
            )
        except sqlite3.Error as e:
            raise self._error(e, f"read of partition {partition} from offset {offset}") from e
        return [
            LogRecord(partition, off, key, value, _EPOCH + timedelta(milliseconds=ms))
            for off, key, value, ms in rows
        ]

    def watermarks(self, partition: int) -> Watermarks:
        """``low`` is the first offset still stored (``high`` if none); ``high`` the next."""
        self._check_partition(partition)
        try:
            low, high = (
                self._connection().execute(_SELECT_WATERMARKS, (partition, partition)).fetchone()
            )
        except sqlite3.Error as e:
            raise self._error(e, f"watermarks of partition {partition}") from e
        return Watermarks(low=high if low is None else low, high=high)

    def consumer(self, group: str) -> SqliteLogConsumer:
        """A consumer that is assigned every partition (one member per group, see module)."""
        self._check_open()
        return SqliteLogConsumer(self, group)

    def close(self) -> None:
        """Close every thread's connection; later calls raise ``EventLogError``."""
        self._closed = True
        self._doorbell.close()
        self._connections.close()
        with self._appended:
            self._appended.notify_all()

    # --- used by SqliteLogConsumer --------------------------------------------------

    def _heads(self) -> dict[int, int]:
        try:
            return dict(self._connection().execute(_SELECT_HEADS).fetchall())
        except sqlite3.Error as e:
            raise self._error(e, "reading partition heads") from e

    def _wait_for_append(self, seen: int, timeout: float) -> None:
        """Wait up to ``timeout`` s (at most until the next look at the file) unless an
        append of this instance, or another process's doorbell, came since ``seen``."""
        if not self._doorbell.listening and self._doorbell.listen(self._notify_appended):
            self._recheck = FALLBACK_INTERVAL
        timeout = min(timeout, self._recheck)
        with self._appended:
            if self._generation == seen and not self._closed:
                self._appended.wait(timeout)

    def _check_open(self) -> None:
        if self._closed:
            raise EventLogError(f"event log {self._path} is closed")

    # --- internals ------------------------------------------------------------------

    def _initialise(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connection()
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise EventLogError(f"event log {self._path} needs WAL journaling, got {mode!r}")
            with immediate(conn, self._busy_timeout):
                for statement in _SCHEMA:
                    conn.execute(statement)
                self._check_meta(conn)
                heads = ((p,) for p in range(self._partitions))
                conn.executemany("INSERT OR IGNORE INTO partition_heads VALUES (?, 0)", heads)
        except sqlite3.Error as e:
            raise self._error(e, "opening the event log") from e

    def _check_meta(self, conn: sqlite3.Connection) -> None:
        meta = dict(conn.execute("SELECT name, value FROM log_meta").fetchall())
        if not meta:
            conn.executemany(
                "INSERT INTO log_meta VALUES (?, ?)",
                [("format", FORMAT_VERSION), ("partitions", str(self._partitions))],
            )
            return
        if meta.get("format") != FORMAT_VERSION:
            raise EventLogError(f"{self._path} has log format {meta.get('format')!r}")
        if meta.get("partitions") != str(self._partitions):
            raise EventLogError(
                f"{self._path} has {meta.get('partitions')} partitions, opened with "
                f"{self._partitions}: keys would move to other partitions"
            )

    def _connection(self) -> sqlite3.Connection:
        try:
            return self._connections.get()
        except sqlite3.Error as e:
            raise self._error(e, "connecting") from e

    def _partitions_of(self, records: Sequence[tuple[str, bytes]]) -> list[int]:
        self._check_open()
        return self.partitions_of(records)

    def _check_partition(self, partition: int) -> None:
        self._check_open()
        self.check_partition(partition)

    def _notify_appended(self) -> None:
        with self._appended:
            self._generation += 1
            self._appended.notify_all()

    def _error(self, error: sqlite3.Error, what: str) -> EventLogError:
        message = f"{what} failed on event log {self._path}: {error}"
        if getattr(error, "sqlite_errorcode", 0) & 0xFF in _BUSY_CODES:
            return EventLogUnavailable(message)
        return EventLogError(message)


class SqliteLogConsumer(LogConsumer):
    """Reads every partition of a ``SqliteEventLog``; use from one thread at a time."""

    def __init__(self, log: SqliteEventLog, group: str) -> None:
        self._log = log
        self._group = group
        self._on_assign: OnAssign | None = None
        self._on_revoke: OnRevoke | None = None
        self._assign_pending = False
        self._positions: dict[int, int] = {}
        self._rotation = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"SqliteLogConsumer({self._log!r}, group={self._group!r})"

    def subscribe(self, on_assign: OnAssign, on_revoke: OnRevoke | None = None) -> None:
        """Subscribe; the next ``poll`` assigns every partition and calls ``on_assign``.

        A partition ``on_assign`` returns no offset for starts at 0.
        """
        self._check_open()
        self._revoke()
        self._on_assign, self._on_revoke = on_assign, on_revoke
        self._assign_pending = True

    def poll(self, max_records: int, timeout: float) -> list[LogRecord]:
        """Up to ``max_records``, shared fairly among partitions; waits up to ``timeout`` s."""
        self._check_open()
        if max_records < 1:
            raise ValueError(f"max_records must be >= 1, got {max_records}")
        if self._on_assign is None:
            raise EventLogError(f"consumer of group {self._group!r} polled before subscribe()")
        if self._assign_pending:
            self._assign(self._on_assign)
        deadline = time.monotonic() + timeout
        while True:
            seen = self._log._generation
            records = self._fetch(max_records)
            remaining = deadline - time.monotonic()
            if records or remaining <= 0:
                return records
            self._log._wait_for_append(seen, remaining)
            self._check_open()

    def assignment(self) -> list[int]:
        return sorted(self._positions)

    def position(self, partition: int) -> int:
        return self._positions[self._check_assigned(partition)]

    def seek(self, partition: int, offset: int) -> None:
        self._check_assigned(partition)
        if offset < 0:
            raise ValueError(f"cannot seek partition {partition} to negative offset {offset}")
        self._positions[partition] = offset

    def close(self) -> None:
        """Revoke the assignment (calling ``on_revoke``) and stop; idempotent."""
        if self._closed:
            return
        self._revoke()
        self._closed = True

    def _assign(self, on_assign: OnAssign) -> None:
        partitions = list(range(self._log.partitions))
        starts = on_assign(partitions)
        self._positions = {p: start_offset(starts, p) for p in partitions}
        self._assign_pending = False
        logger.debug("group %s assigned partitions %s of %s", self._group, partitions, self._log)

    def _revoke(self) -> None:
        revoked, self._positions = sorted(self._positions), {}
        if revoked and self._on_revoke is not None:
            self._on_revoke(revoked)

    def _fetch(self, max_records: int) -> list[LogRecord]:
        if not self._positions:
            return []
        heads = self._log._heads()
        lagging = [p for p in self._rotated() if heads[p] > self._positions[p]]
        if not lagging:
            return []
        self._rotation += 1
        records: list[LogRecord] = []
        # First an equal share per lagging partition, then whatever budget is left.
        for share in (max(1, max_records // len(lagging)), max_records):
            for partition in lagging:
                wanted = min(share, max_records - len(records))
                records.extend(self._read(partition, wanted, heads[partition]))
        return records

    def _read(self, partition: int, wanted: int, head: int) -> list[LogRecord]:
        position = self._positions[partition]
        wanted = min(wanted, head - position)
        if wanted <= 0:
            return []
        batch = self._log.read(partition, position, wanted)
        if batch:
            self._positions[partition] = batch[-1].offset + 1
        return batch

    def _rotated(self) -> list[int]:
        partitions = sorted(self._positions)
        start = self._rotation % len(partitions)
        return partitions[start:] + partitions[:start]

    def _check_assigned(self, partition: int) -> int:
        self._check_open()
        if partition not in self._positions:
            raise EventLogError(
                f"partition {partition} of {self._log.path} is not assigned to this "
                f"consumer of group {self._group!r} (assigned: {self.assignment()})"
            )
        return partition

    def _check_open(self) -> None:
        if self._closed:
            raise EventLogError(f"consumer of group {self._group!r} is closed")
        self._log._check_open()


@dataclass(slots=True)
class _PendingAppend:
    """One ``append`` call waiting for the group commit that includes it."""

    records: Sequence[tuple[str, bytes]]
    partitions: list[int]
    positions: list[Position] | None = None
    error: EventLogError | None = None
    done: bool = False


def _claim_offsets(partitions: Sequence[int], heads: dict[int, int]) -> list[Position]:
    """Give each record the next offset of its partition, moving ``heads`` on."""
    positions = []
    for partition in partitions:
        offset = heads[partition]
        heads[partition] = offset + 1
        positions.append(Position(partition, offset))
    return positions
