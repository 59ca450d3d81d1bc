"""SQLite plumbing for the embedded lease store: per-thread connections, transactions,
wake-up signals and error translation."""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from pathlib import Path
from typing import Final

from leases.errors import LeaseError, LeaseStoreUnavailable

_BUSY_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


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

    def __init__(self, path: Path, *, busy_timeout: float, pragmas: tuple[str, ...]) -> None:
        self._path = path
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
        """This thread's connection, opened on first use; ``LeaseError`` once closed."""
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

    def closed_error(self) -> LeaseError:
        return LeaseError(f"lease store {self._path} is closed")

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


def translate(error: sqlite3.Error, what: str, path: Path) -> LeaseError:
    """The lease-store error for a driver error: busy/locked means retry later."""
    message = f"{what} failed on lease store {path}: {error}"
    if getattr(error, "sqlite_errorcode", 0) & 0xFF in _BUSY_CODES:
        return LeaseStoreUnavailable(message)
    return LeaseError(message)
