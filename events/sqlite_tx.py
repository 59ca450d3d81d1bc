"""Write transactions on a SQLite file shared by several processes.

SQLite's own busy handler backs off in steps up to 100 ms, so a process that finds the
write lock taken sleeps far longer than the holder keeps it (well under a millisecond
per append), and under load one process starves while another writes. So the write lock
is taken with SQLite's busy handler switched off, retrying with short, jittered sleeps
until a deadline; other statements keep the connection's busy timeout.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

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
