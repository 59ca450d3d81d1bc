"""SQLite plumbing shared by the embedded adapters (the event log and the lease store):
one connection per thread, write transactions on a file shared by several processes,
and a wake-up signal between threads.

SQLite's own busy handler backs off in steps up to 100 ms, so a process that finds the
write lock taken sleeps far longer than the holder keeps it (well under a millisecond
per append), and under load one process starves while another writes. So the write lock
is taken with SQLite's busy handler switched off, retrying with short, jittered sleeps
until a deadline; other statements keep the connection's busy timeout.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
_FIRST_SLEEP = 0.0001
_LONGEST_SLEEP = 0.002


def is_busy(error: sqlite3.Error) -> bool:
    return getattr(error, "sqlite_errorcode", 0) & 0xFF in _BUSY


@contextmanager
def immediate(conn: sqlite3.Connection, timeout: float) -> Iterator[None]:
    """One write transaction that takes the write lock up front, waiting up to ``timeout`` s."""
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        _begin(conn, time.monotonic() + timeout)
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _begin(conn: sqlite3.Connection, deadline: float) -> None:
    sleep = _FIRST_SLEEP
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as e:
            if not is_busy(e) or time.monotonic() > deadline:
                raise
        time.sleep(sleep * random.uniform(0.5, 1.5))
        sleep = min(sleep * 2, _LONGEST_SLEEP)


class _Handle:
    """One thread's connection; a finalizer closes it when the thread's locals go."""

    __slots__ = ("__weakref__", "conn", "pid")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.pid = os.getpid()


class ThreadConnections:
    """One connection per thread (and per process, after a fork) on one SQLite file.

    sqlite3 connections must not be shared between threads; ``close`` closes them all.
    """

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout: float,
        pragmas: tuple[str, ...],
        closed_error: Callable[[], Exception],
    ) -> None:
        self._path = path
        self.closed_error = closed_error
        self._busy_timeout = busy_timeout
        self._pragmas = pragmas
        self._local = threading.local()
        self._lock = threading.Lock()
        self._finalizers: list[weakref.finalize[[], _Handle]] = []
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def get(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use; ``closed_error()`` once closed."""
        handle: _Handle | None = getattr(self._local, "handle", None)
        if handle is None or handle.pid != os.getpid():
            handle = self._open()
            self._local.handle = handle
        elif self._closed:
            raise self.closed_error()
        return handle.conn

    def close(self) -> None:
        with self._lock:
            self._closed = True
            finalizers, self._finalizers = self._finalizers, []
        for finalizer in finalizers:
            finalizer()

    def _open(self) -> _Handle:
        # check_same_thread=False only so close() may close it from another thread;
        # each connection is used by the thread that opened it.
        conn = sqlite3.connect(
            self._path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        for pragma in self._pragmas:
            conn.execute(pragma)
        handle = _Handle(conn)
        with self._lock:
            if self._closed:
                conn.close()
                raise self.closed_error()
            self._finalizers = [f for f in self._finalizers if f.alive]
            self._finalizers.append(weakref.finalize(handle, conn.close))
        return handle


class Signal:
    """A generation counter with a condition: wake waiters when something changed."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0

    @property
    def generation(self) -> int:
        return self._generation

    def notify(self) -> None:
        with self._condition:
            self._generation += 1
            self._condition.notify_all()

    def wait(self, seen: int, timeout: float) -> None:
        """Wait up to ``timeout`` s unless the generation moved past ``seen``."""
        with self._condition:
            if self._generation == seen:
                self._condition.wait(timeout)
