"""Embedded lease store: leases, dispatch queues, flags and pub/sub in one SQLite file.

Every write is one ``BEGIN IMMEDIATE`` transaction, so SQLite's single writer makes
each step atomic across threads and processes: taking a lease and drawing its fencing
token from the global counter, or popping the best queue item, can never interleave.
Threads of one store object also queue on an in-process lock first, so they wait on
each other without SQLite's busy-handler back-off.

Waiting (``take_runs``, ``pop``, ``Subscription.get``) wakes at once for pushes and
publishes made through the same store object. Pushes of other processes ring a doorbell
(``embedded.doorbell``: a datagram to each waiting process) and are seen at once too; a
waiter still re-checks the file every ``FALLBACK_INTERVAL`` s (every
``RECHECK_INTERVAL`` s where it cannot listen) in case a ring went astray. Publishes of
other processes are seen within ``MESSAGE_RECHECK_INTERVAL``.

Expiry uses the injected clock (wall time by default), so every process sharing a file
must share a clock: one machine only.

Published messages are bounded twice: each channel keeps only its newest
``CHANNEL_BYTES`` (a job printing hundreds of megabytes of live output cannot fill the
disk), and nothing outlives ``MESSAGE_RETENTION``. The file gives freed pages back
(``auto_vacuum=INCREMENTAL``) and its write-ahead log is truncated after checkpoints.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from embedded.doorbell import FALLBACK_INTERVAL, Doorbell, bell_directory
from embedded.sqlite import Signal, ThreadConnections, immediate, is_busy
from leases.dispatch import cancel_flag, finished_flag, run_lease_key, ticket_attempt
from leases.errors import LeaseError, LeaseStoreUnavailable
from leases.port import (
    AsyncSubscription,
    Lease,
    LeaseStore,
    Message,
    QueueItem,
    RunEnd,
    Subscription,
    Taken,
    TakenItem,
)

Clock = Callable[[], float]
logger = logging.getLogger(__name__)

FORMAT_VERSION: Final = "2"
"""2 added ``leases.renewed_at``; a format 1 file is migrated in place when opened."""
RECHECK_INTERVAL: Final = 0.005
"""Seconds between looks at the file for pushes of other processes where no doorbell
rings (dispatch latency)."""
MESSAGE_RECHECK_INTERVAL: Final = 0.05
"""Seconds between looks at the file for messages of other processes: cancels and live
output tolerate 50 ms, and every idle subscriber polling every 5 ms cost real CPU."""
MESSAGE_RETENTION: Final = 60.0
"""Seconds a published message stays readable by subscriptions that have not read it."""
PRUNE_INTERVAL: Final = 5.0
"""Seconds between clean-ups of old messages and expired leases and flags (per object)."""
CHANNEL_BYTES: Final = 4 * 1024 * 1024
"""Bytes of messages a channel keeps: a subscriber further behind misses the oldest.
Counted in bytes, not messages, so a burst of small cancel signals is never trimmed."""
WAL_LIMIT: Final = 4 * 1024 * 1024
"""Bytes the write-ahead log is truncated to after a checkpoint (it never shrinks else)."""

_MIGRATABLE: Final = frozenset({"1", FORMAT_VERSION})  # formats _migrate brings up to date
_INCREMENTAL: Final = 2  # PRAGMA auto_vacuum's value for INCREMENTAL
_VACUUM_PAGES: Final = 16_384  # 64 MiB of 4 KiB pages: bounds the work of one prune
_CHUNK: Final = 500  # keys per IN (...) list, well under SQLite's variable limit
_FETCH: Final = 1000  # messages read per look

# Derived state (see leases.port): WAL with synchronous=NORMAL never corrupts the file
# and skips an fsync per commit; a power cut may lose the last commits, which the
# scheduler's reconciliation re-pushes. Tokens could then repeat, which is what
# ensure_token_floor (seeded from the log) is for.
_PRAGMAS: Final = ("PRAGMA synchronous=NORMAL", f"PRAGMA journal_size_limit={WAL_LIMIT}")
_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS store_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS token_counter (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        value INTEGER NOT NULL
    )""",
    "INSERT OR IGNORE INTO token_counter VALUES (0, 0)",
    """CREATE TABLE IF NOT EXISTS leases (
        key TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        token INTEGER NOT NULL,
        expires_at REAL NOT NULL,
        renewed_at REAL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS queue_items (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        item_id TEXT NOT NULL,
        priority INTEGER NOT NULL,
        payload BLOB NOT NULL,
        UNIQUE (queue, item_id)
    )""",
    "CREATE INDEX IF NOT EXISTS queue_items_order ON queue_items (queue, priority DESC, seq)",
    """CREATE TABLE IF NOT EXISTS flags (
        key TEXT PRIMARY KEY,
        expires_at REAL NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        channel TEXT NOT NULL,
        data BLOB NOT NULL,
        created_at REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS messages_channel ON messages (channel)",
    "CREATE INDEX IF NOT EXISTS messages_created ON messages (created_at)",
)
_SELECT_LEASE: Final = "SELECT owner, expires_at FROM leases WHERE key = ?"
_PUT_LEASE: Final = (
    "INSERT OR REPLACE INTO leases (key, owner, token, expires_at, renewed_at)"
    " VALUES (?, ?, ?, ?, ?)"
)
_RENEW: Final = (
    "UPDATE leases SET expires_at = ?, renewed_at = ?"
    " WHERE key = ? AND token = ? AND expires_at > ?"
)
_RELEASE: Final = "DELETE FROM leases WHERE key = ? AND token = ? AND expires_at > ?"
_SET_FLAG: Final = "INSERT OR REPLACE INTO flags VALUES (?, ?)"
_FLAG: Final = "SELECT 1 FROM flags WHERE key = ? AND expires_at > ?"
_NEXT_TOKEN: Final = "UPDATE token_counter SET value = value + 1 WHERE id = 0"
_TOKEN: Final = "SELECT value FROM token_counter WHERE id = 0"
_PUSH: Final = (
    "INSERT OR IGNORE INTO queue_items (queue, item_id, priority, payload) VALUES (?, ?, ?, ?)"
)
_HEAD: Final = (
    "SELECT seq, item_id, priority, payload FROM queue_items WHERE queue = ?"
    " ORDER BY priority DESC, seq LIMIT 1"
)
_PUBLISH: Final = "INSERT INTO messages (channel, data, created_at) VALUES (?, ?, ?)"
# The channel's messages older than its newest CHANNEL_BYTES (one index range per publish).
_TRIM_CHANNEL: Final = """DELETE FROM messages WHERE channel = :channel AND id <= (
    SELECT id FROM (
        SELECT id, SUM(length(data)) OVER (ORDER BY id DESC) AS newer
        FROM messages WHERE channel = :channel
    ) WHERE newer > :keep ORDER BY id DESC LIMIT 1
)"""

_Row = tuple[int, str, int, bytes]  # seq, item id, priority, payload


class SqliteLeaseStore(LeaseStore):
    """The ``LeaseStore`` port on a SQLite file (WAL), for many threads and processes.

    Args:
        path: the database file; created with its directory if missing.
        clock: seconds since the epoch; every process sharing the file must agree.
        busy_timeout: seconds a step waits for other processes' writes before
            ``LeaseStoreUnavailable``.
    """

    def __init__(
        self, path: str | Path, *, clock: Clock = time.time, busy_timeout: float = 10.0
    ) -> None:
        self._path = Path(path)
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._connections = ThreadConnections(
            self._path,
            busy_timeout=busy_timeout,
            pragmas=_PRAGMAS,
            closed_error=lambda: LeaseError(f"lease store {self._path} is closed"),
        )
        self._write_lock = threading.Lock()
        self._pushed = Signal()
        self._published = Signal()
        self._doorbell = Doorbell(bell_directory(self._path))
        self._recheck = RECHECK_INTERVAL
        self._pruned_at = -math.inf
        try:
            self._initialise()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"SqliteLeaseStore({str(self._path)!r})"

    @property
    def path(self) -> Path:
        return self._path

    # --- leases ----------------------------------------------------------------------

    def acquire(self, key: str, owner: str, ttl: float) -> Lease | None:
        _check_ttl(ttl, f"lease {key!r}")
        with self._writing(f"acquire of lease {key!r} by {owner!r}") as (conn, now):
            held = conn.execute(_SELECT_LEASE, (key,)).fetchone()
            if held is not None and held[0] != owner and held[1] > now:
                return None
            conn.execute(_NEXT_TOKEN)
            token: int = conn.execute(_TOKEN).fetchone()[0]
            conn.execute(_PUT_LEASE, (key, owner, token, now + ttl, now))
        return Lease(key, owner, token, now + ttl, now)

    def renew(self, key: str, token: int, ttl: float) -> bool:
        _check_ttl(ttl, f"lease {key!r}")
        with self._writing(f"renewal of lease {key!r} (token {token})") as (conn, now):
            renewed = conn.execute(_RENEW, (now + ttl, now, key, token, now)).rowcount
        return renewed == 1

    def renew_many(self, leases: Sequence[tuple[str, int]], ttl: float) -> list[bool]:
        _check_ttl(ttl, f"{len(leases)} leases")
        if not leases:
            return []
        with self._writing(f"renewal of {len(leases)} leases") as (conn, now):
            return [
                conn.execute(_RENEW, (now + ttl, now, key, token, now)).rowcount == 1
                for key, token in leases
            ]

    def take_runs(
        self, queues: Sequence[str], owner: str, ttl: float, limit: int, timeout: float
    ) -> list[TakenItem]:
        _check_ttl(ttl, f"run leases of {owner!r}")
        names = tuple(dict.fromkeys(queues))
        if not names or limit < 1 or timeout < 0:
            raise ValueError(
                "take_runs needs queues, a limit >= 1 and a timeout >= 0,"
                f" got {queues!r}, {limit}, {timeout}"
            )
        self._listen_for_pushes()
        deadline = time.monotonic() + timeout
        while True:
            seen = self._pushed.generation
            taken = self._try_take(names, owner, ttl, limit)
            remaining = deadline - time.monotonic()
            if taken or remaining <= 0:
                return taken
            self._pushed.wait(seen, min(remaining, self._recheck))

    def finish_runs(self, ends: Sequence[RunEnd], flag_ttl: float) -> list[bool]:
        _check_ttl(flag_ttl, "finished flags")
        if not ends:
            return []
        with self._writing(f"ending {len(ends)} run leases from {ends[0].key!r}") as (conn, now):
            released: list[bool] = []
            for end in ends:
                if end.finished_flag is not None:
                    conn.execute(_SET_FLAG, (end.finished_flag, now + flag_ttl))
                released.append(conn.execute(_RELEASE, (end.key, end.token, now)).rowcount == 1)
        return released

    def release(self, key: str, token: int) -> bool:
        with self._writing(f"release of lease {key!r} (token {token})") as (conn, now):
            released = conn.execute(_RELEASE, (key, token, now)).rowcount
        return released == 1

    def inspect(self, keys: Sequence[str]) -> dict[str, Lease]:
        leases: dict[str, Lease] = {}
        for chunk in _chunks(list(dict.fromkeys(keys))):
            marks = ", ".join("?" * len(chunk))
            query = (
                "SELECT key, owner, token, expires_at, renewed_at FROM leases"
                f" WHERE key IN ({marks}) AND expires_at > ?"
            )
            with self._reading(f"inspection of {len(chunk)} leases from {chunk[0]!r}") as (
                conn,
                now,
            ):
                rows = conn.execute(query, (*chunk, now)).fetchall()
            leases.update((row[0], Lease(*row)) for row in rows)
        return leases

    def ensure_token_floor(self, floor: int) -> None:
        query = "UPDATE token_counter SET value = MAX(value, ?) WHERE id = 0"
        with self._writing(f"raising the token floor to {floor}") as (conn, _):
            conn.execute(query, (floor,))

    # --- dispatch queues ---------------------------------------------------------------

    def push(self, queue: str, item: QueueItem) -> bool:
        row = (queue, item.id, item.priority, item.payload)
        with self._writing(f"push of {item.id!r} to queue {queue!r}") as (conn, _):
            added = conn.execute(_PUSH, row).rowcount == 1
        if added:
            self._on_pushed()
        return added

    def push_many(self, items: Sequence[tuple[str, QueueItem]]) -> list[bool]:
        if not items:
            return []
        with self._writing(f"push of {len(items)} items from {items[0][1].id!r}") as (conn, _):
            added = [
                conn.execute(_PUSH, (queue, item.id, item.priority, item.payload)).rowcount == 1
                for queue, item in items
            ]
        if any(added):
            self._on_pushed()
        return added

    def pop(self, queues: Sequence[str], timeout: float) -> tuple[str, QueueItem] | None:
        names = tuple(dict.fromkeys(queues))
        if not names or timeout < 0:
            raise ValueError(f"pop needs queues and a timeout >= 0, got {queues!r}, {timeout}")
        self._listen_for_pushes()
        deadline = time.monotonic() + timeout
        while True:
            seen = self._pushed.generation
            popped = self._try_pop(names)
            remaining = deadline - time.monotonic()
            if popped is not None or remaining <= 0:
                return popped
            self._pushed.wait(seen, min(remaining, self._recheck))

    def remove(self, queue: str, item_id: str) -> bool:
        query = "DELETE FROM queue_items WHERE queue = ? AND item_id = ?"
        with self._writing(f"removal of {item_id!r} from queue {queue!r}") as (conn, _):
            return conn.execute(query, (queue, item_id)).rowcount == 1

    def queued_ids(self, queue: str) -> set[str]:
        query = "SELECT item_id FROM queue_items WHERE queue = ?"
        with self._reading(f"listing of queue {queue!r}") as (conn, _):
            return {row[0] for row in conn.execute(query, (queue,))}

    def queue_depths(self, queues: Sequence[str]) -> dict[str, int]:
        query = "SELECT queue, COUNT(*) FROM queue_items GROUP BY queue"
        with self._reading("counting the queues") as (conn, _):
            counts = dict(conn.execute(query).fetchall())
        return {queue: int(counts.get(queue, 0)) for queue in queues}

    # --- flags -------------------------------------------------------------------------

    def set_flag(self, key: str, ttl: float) -> None:
        _check_ttl(ttl, f"flag {key!r}")
        with self._writing(f"raising flag {key!r}") as (conn, now):
            conn.execute(_SET_FLAG, (key, now + ttl))

    def has_flag(self, key: str) -> bool:
        with self._reading(f"reading flag {key!r}") as (conn, now):
            return conn.execute(_FLAG, (key, now)).fetchone() is not None

    def raised_flags(self, keys: Sequence[str]) -> set[str]:
        raised: set[str] = set()
        for chunk in _chunks(list(dict.fromkeys(keys))):
            marks = ", ".join("?" * len(chunk))
            query = f"SELECT key FROM flags WHERE key IN ({marks}) AND expires_at > ?"
            with self._reading(f"reading {len(chunk)} flags from {chunk[0]!r}") as (conn, now):
                raised.update(row[0] for row in conn.execute(query, (*chunk, now)))
        return raised

    # --- ephemeral pub/sub -------------------------------------------------------------

    def publish(self, channel: str, data: bytes) -> None:
        with self._writing(f"publish on channel {channel!r}") as (conn, now):
            conn.execute(_PUBLISH, (channel, data, now))
            conn.execute(_TRIM_CHANNEL, {"channel": channel, "keep": CHANNEL_BYTES})
        self._published.notify()

    def subscribe(self, channels: Sequence[str]) -> SqliteSubscription:
        names = _channel_names(channels)
        return SqliteSubscription(self, names, self._last_message_id(names))

    async def subscribe_async(self, channels: Sequence[str]) -> SqliteAsyncSubscription:
        names = _channel_names(channels)
        return SqliteAsyncSubscription(self, names, self._last_message_id(names))

    def close(self) -> None:
        """Close every thread's connection; later calls raise ``LeaseError``."""
        self._connections.close()
        self._doorbell.close()
        self._pushed.notify()
        self._published.notify()

    # --- the doorbell ----------------------------------------------------------------

    def _listen_for_pushes(self) -> None:
        """From the first wait on: hear other processes' pushes at once."""
        if not self._doorbell.listening and self._doorbell.listen(self._pushed.notify):
            self._recheck = FALLBACK_INTERVAL

    def _on_pushed(self) -> None:
        self._pushed.notify()
        self._doorbell.ring()

    # --- used by SqliteSubscription --------------------------------------------------

    def _last_message_id(self, channels: tuple[str, ...]) -> int:
        with self._reading(f"subscription to channels {channels!r}") as (conn, _):
            last: int = conn.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()[0]
        return last

    def _messages_after(self, channels: tuple[str, ...], after: int) -> list[tuple[int, Message]]:
        marks = ", ".join("?" * len(channels))
        query = (
            "SELECT id, channel, data FROM messages"
            f" WHERE channel IN ({marks}) AND id > ? ORDER BY id LIMIT {_FETCH}"
        )
        with self._reading(f"reading channels {channels!r}") as (conn, _):
            rows = conn.execute(query, (*channels, after)).fetchall()
        return [(row[0], Message(row[1], row[2])) for row in rows]

    def _wait_for_publish(self, seen: int, timeout: float) -> None:
        self._published.wait(seen, timeout)

    @property
    def _publish_generation(self) -> int:
        return self._published.generation

    # --- internals ------------------------------------------------------------------

    def _initialise(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = self._connections.get()
            _use_incremental_vacuum(conn)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise LeaseError(f"lease store {self._path} needs WAL journaling, got {mode!r}")
            with immediate(conn, self._busy_timeout):
                for statement in _SCHEMA:
                    conn.execute(statement)
                self._check_format(conn)
                _migrate(conn, self._path)
        except sqlite3.Error as e:
            raise translate(e, "opening the lease store", self._path) from e

    def _check_format(self, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT OR IGNORE INTO store_meta VALUES ('format', ?)", (FORMAT_VERSION,))
        found = conn.execute("SELECT value FROM store_meta WHERE name = 'format'").fetchone()[0]
        if found not in _MIGRATABLE:
            raise LeaseError(f"{self._path} has lease store format {found!r}")

    def _try_pop(self, queues: tuple[str, ...]) -> tuple[str, QueueItem] | None:
        # A plain read first: idle poppers must not take the write lock every few ms.
        with self._reading(f"peek at queues {queues!r}") as (conn, _):
            if _best_head(conn, queues) is None:
                return None
        with self._writing(f"pop from queues {queues!r}") as (conn, _):
            best = _best_head(conn, queues)
            if best is None:
                return None
            queue, (seq, item_id, priority, payload) = best
            conn.execute("DELETE FROM queue_items WHERE seq = ?", (seq,))
        return queue, QueueItem(item_id, priority, payload)

    def _try_take(
        self, queues: tuple[str, ...], owner: str, ttl: float, limit: int
    ) -> list[TakenItem]:
        """``take_runs`` without waiting: one write transaction, and none while idle."""
        with self._reading(f"peek at queues {queues!r}") as (conn, _):
            if _best_head(conn, queues) is None:
                return []
        taken: list[TakenItem] = []
        with self._writing(f"taking runs from queues {queues!r}") as (conn, now):
            while len(taken) < limit and (best := _best_head(conn, queues)) is not None:
                queue, (seq, item_id, priority, payload) = best
                conn.execute("DELETE FROM queue_items WHERE seq = ?", (seq,))
                item = QueueItem(item_id, priority, payload)
                taken.append(TakenItem(queue, item, _take_item(conn, now, item, owner, ttl)))
        return taken

    @contextmanager
    def _writing(self, what: str) -> Iterator[tuple[sqlite3.Connection, float]]:
        """A write transaction and the store time read inside it."""
        try:
            conn = self._connections.get()
            with self._write_lock, immediate(conn, self._busy_timeout):
                now = self._clock()
                yield conn, now
                self._prune(conn, now)
        except sqlite3.Error as e:
            raise translate(e, what, self._path) from e

    @contextmanager
    def _reading(self, what: str) -> Iterator[tuple[sqlite3.Connection, float]]:
        try:
            yield self._connections.get(), self._clock()
        except sqlite3.Error as e:
            raise translate(e, what, self._path) from e

    def _prune(self, conn: sqlite3.Connection, now: float) -> None:
        """Drop old messages and dead leases and flags, at most every PRUNE_INTERVAL s."""
        if now - self._pruned_at < PRUNE_INTERVAL:
            return
        self._pruned_at = now
        conn.execute("DELETE FROM messages WHERE created_at < ?", (now - MESSAGE_RETENTION,))
        conn.execute("DELETE FROM leases WHERE expires_at <= ?", (now,))
        conn.execute("DELETE FROM flags WHERE expires_at <= ?", (now,))
        _give_back_free_pages(conn)


class SqliteSubscription(Subscription):
    """Messages on ``channels`` published after it was made; use from one thread at a time.

    A subscription that does not read for ``MESSAGE_RETENTION`` s may miss messages.
    """

    def __init__(self, store: SqliteLeaseStore, channels: tuple[str, ...], after: int) -> None:
        self._store = store
        self._channels = channels
        self._after = after
        self._buffer: deque[Message] = deque()
        self._closed = False

    def __repr__(self) -> str:
        return f"SqliteSubscription({self._store!r}, {self._channels!r})"

    def get(self, timeout: float) -> Message | None:
        """The next message, waiting up to ``timeout`` s; None then, or once closed."""
        deadline = time.monotonic() + timeout
        while not self._closed:
            seen = self._store._publish_generation
            if not self._buffer:
                self._refill()
            if self._buffer:
                return self._buffer.popleft()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._store._wait_for_publish(seen, min(remaining, MESSAGE_RECHECK_INTERVAL))
        return None

    def close(self) -> None:
        self._closed = True
        self._buffer.clear()

    def _refill(self) -> None:
        fetched = self._store._messages_after(self._channels, self._after)
        if fetched:
            self._after = fetched[-1][0]
            self._buffer.extend(message for _, message in fetched)


class SqliteAsyncSubscription(AsyncSubscription):
    """``SqliteSubscription`` for asyncio: polls the file every ``MESSAGE_RECHECK_INTERVAL``
    s with ``asyncio.sleep`` between looks. Each look is one short indexed read, made on
    the event loop's own connection (WAL readers never wait for writers)."""

    def __init__(self, store: SqliteLeaseStore, channels: tuple[str, ...], after: int) -> None:
        self._store = store
        self._channels = channels
        self._after = after
        self._buffer: deque[Message] = deque()
        self._closed = False

    async def get(self, timeout: float) -> Message | None:
        deadline = time.monotonic() + timeout
        while not self._closed:
            if not self._buffer:
                fetched = self._store._messages_after(self._channels, self._after)
                if fetched:
                    self._after = fetched[-1][0]
                    self._buffer.extend(message for _, message in fetched)
            if self._buffer:
                return self._buffer.popleft()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            await asyncio.sleep(min(remaining, MESSAGE_RECHECK_INTERVAL))
        return None

    async def close(self) -> None:
        self._closed = True
        self._buffer.clear()


def _channel_names(channels: Sequence[str]) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(channels))
    if not names:
        raise ValueError("subscribe needs at least one channel")
    return names


def _best_head(conn: sqlite3.Connection, queues: tuple[str, ...]) -> tuple[str, _Row] | None:
    """The highest-priority, oldest item over ``queues`` (one index probe per queue)."""
    heads = [(queue, conn.execute(_HEAD, (queue,)).fetchone()) for queue in queues]
    present: list[tuple[str, _Row]] = [(queue, row) for queue, row in heads if row is not None]
    if not present:
        return None
    return max(present, key=lambda head: (head[1][2], -head[1][0]))


def _take_item(
    conn: sqlite3.Connection, now: float, item: QueueItem, owner: str, ttl: float
) -> Taken:
    """``take_runs``'s step for one popped item, inside its transaction."""
    attempt = ticket_attempt(item.payload)
    if attempt is None:
        return Taken(None)
    if conn.execute(_FLAG, (finished_flag(item.id, attempt), now)).fetchone() is not None:
        return Taken(None, finished=True)
    key = run_lease_key(item.id)
    held = conn.execute(_SELECT_LEASE, (key,)).fetchone()
    if held is not None and held[1] > now:  # any owner's: see LeaseStore.take_runs
        return Taken(None)
    conn.execute(_NEXT_TOKEN)
    token: int = conn.execute(_TOKEN).fetchone()[0]
    conn.execute(_PUT_LEASE, (key, owner, token, now + ttl, now))
    cancelled = conn.execute(_FLAG, (cancel_flag(item.id), now)).fetchone() is not None
    return Taken(Lease(key, owner, token, now + ttl, now), cancelled=cancelled)


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring a format 1 file to FORMAT_VERSION, inside the opening transaction (processes
    opening it at once migrate it once). Its leases keep a NULL ``renewed_at`` until
    renewed. The new format number makes an older build refuse the file when it opens it,
    not fail on its first lease."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(leases)")}
    if "renewed_at" not in columns:
        conn.execute("ALTER TABLE leases ADD COLUMN renewed_at REAL")
        logger.info("lease store migrated: leases.renewed_at added", extra={"path": str(path)})
    conn.execute("UPDATE store_meta SET value = ? WHERE name = 'format'", (FORMAT_VERSION,))


def _use_incremental_vacuum(conn: sqlite3.Connection) -> None:
    """Let the file shrink: a new file is set up so; an older one is rebuilt once."""
    if conn.execute("PRAGMA auto_vacuum").fetchone()[0] == _INCREMENTAL:
        return
    conn.execute("PRAGMA auto_vacuum=INCREMENTAL")  # enough for a file without tables
    if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != _INCREMENTAL:
        conn.execute("VACUUM")  # a file from before: the mode changes only by a rebuild


def _give_back_free_pages(conn: sqlite3.Connection) -> None:
    """Shrink the file by its free pages, at most ``_VACUUM_PAGES`` per call."""
    free: int = conn.execute("PRAGMA freelist_count").fetchone()[0]
    # The pragma frees one page per step, and Python's sqlite3 steps a statement without
    # result columns only once: hence one call per page.
    for _ in range(min(free, _VACUUM_PAGES)):
        conn.execute("PRAGMA incremental_vacuum(1)")


def _check_ttl(ttl: float, what: str) -> None:
    if not ttl > 0:
        raise ValueError(f"ttl of {what} must be > 0 s, got {ttl}")


def _chunks(keys: list[str]) -> Iterable[list[str]]:
    return (keys[i : i + _CHUNK] for i in range(0, len(keys), _CHUNK))


def translate(error: sqlite3.Error, what: str, path: Path) -> LeaseError:
    """The lease-store error for a driver error: busy/locked means retry later."""
    message = f"{what} failed on lease store {path}: {error}"
    if is_busy(error):
        return LeaseStoreUnavailable(message)
    return LeaseError(message)
