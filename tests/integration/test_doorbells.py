"""Doorbells: another process's push wakes a waiting take in the embedded lease store,
another process's append wakes a consumer of the embedded log (the projector), and a
projector in another process wakes the API's read-your-writes waits (and the projector
lock `up` hands to that projector).

The waits here are long (a 30 s fallback between looks at the file, a 20 s timeout), so a
take that returns its item well before them can only have been woken by the ring.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chronolog import wiring
from chronolog.settings import Settings, SettingsError
from chronolog.wiring import open_read_model
from embedded.doorbell import Doorbell, bell_directory
from eventlog import sqlite as sqlite_log
from leases import sqlite_store
from leases.port import QueueItem, TakenItem
from leases.sqlite_store import SqliteLeaseStore
from projector.progress import ProjectionProgress

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 20.0
PUSH_FROM_ANOTHER_PROCESS = """
import sys
from leases.port import QueueItem
from leases.sqlite_store import SqliteLeaseStore
store = SqliteLeaseStore(sys.argv[1])
store.push("default", QueueItem("run-1", 0, b"ticket"))
store.close()
"""


@pytest.fixture
def path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(sqlite_store, "FALLBACK_INTERVAL", 30.0)
    monkeypatch.setattr(sqlite_store, "RECHECK_INTERVAL", 30.0)
    return tmp_path / "leases.db"


@pytest.fixture
def store(path: Path) -> Iterator[SqliteLeaseStore]:
    store = SqliteLeaseStore(path)
    yield store
    store.close()


class _Taking:
    """A ``take_runs`` waiting in a thread, as a worker's taking loop does."""

    def __init__(self, store: SqliteLeaseStore) -> None:
        self.taken: list[TakenItem] = []
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._take, args=(store,))
        self._thread.start()

    def _take(self, store: SqliteLeaseStore) -> None:
        started = time.monotonic()
        self.taken = store.take_runs(["default"], "worker-1", 30.0, 10, TIMEOUT)
        self.seconds = time.monotonic() - started

    def join(self) -> None:
        self._thread.join(TIMEOUT + 5)


def _wait_for_listener(path: Path) -> None:
    directory = bell_directory(path)
    deadline = time.monotonic() + 5
    while not (directory.is_dir() and any(directory.iterdir())):
        assert time.monotonic() < deadline, "the waiting store never listened"
        time.sleep(0.01)


def test_a_push_from_another_process_wakes_a_waiting_take_at_once(
    path: Path, store: SqliteLeaseStore
) -> None:
    taking = _Taking(store)
    _wait_for_listener(path)
    time.sleep(0.2)  # the take is past its first look and waiting
    subprocess.run(
        [sys.executable, "-c", PUSH_FROM_ANOTHER_PROCESS, str(path)], cwd=REPO, check=True
    )
    taking.join()
    assert [one.item.id for one in taking.taken] == ["run-1"]
    assert taking.seconds < TIMEOUT / 2, "woken by the timeout, not by the ring"


def test_a_push_through_another_store_object_rings_too(path: Path, store: SqliteLeaseStore) -> None:
    pusher = SqliteLeaseStore(path)
    try:
        taking = _Taking(store)
        _wait_for_listener(path)
        time.sleep(0.2)
        pusher.push_many([("default", QueueItem("run-2", 0, b"ticket"))])
        taking.join()
    finally:
        pusher.close()
    assert [one.item.id for one in taking.taken] == ["run-2"]
    assert taking.seconds < TIMEOUT / 2


def test_closing_the_store_removes_its_marker(path: Path) -> None:
    store = SqliteLeaseStore(path)
    assert store.pop(["default"], timeout=0) is None  # a wait listens
    assert len(list(bell_directory(path).iterdir())) == 1
    store.close()
    assert list(bell_directory(path).iterdir()) == []


def test_a_ring_removes_the_marker_of_a_listener_that_died(path: Path) -> None:
    directory = bell_directory(path)
    directory.mkdir()
    (directory / "0123456789abcdef").touch()  # nobody listens under that name
    bell = Doorbell(directory)
    try:
        bell.ring()
    finally:
        bell.close()
    assert list(directory.iterdir()) == []


def test_without_a_doorbell_waiters_look_at_the_file_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "leases.db"
    bell_directory(path).write_text("not a directory")  # listening fails here
    monkeypatch.setattr(sqlite_store, "FALLBACK_INTERVAL", 30.0)
    store, pusher = SqliteLeaseStore(path), SqliteLeaseStore(path)
    try:
        taking = _Taking(store)
        time.sleep(0.2)
        pusher.push("default", QueueItem("run-3", 0, b"ticket"))
        taking.join()
    finally:
        store.close()
        pusher.close()
    assert [one.item.id for one in taking.taken] == ["run-3"]
    assert taking.seconds < TIMEOUT / 2, "polling every RECHECK_INTERVAL should have found it"


def test_a_projector_elsewhere_wakes_read_your_writes_waits_at_once(tmp_path: Path) -> None:
    engine = open_read_model(f"sqlite:///{tmp_path / 'readmodel.db'}")
    bell = bell_directory(tmp_path / "readmodel.db")
    waiting = ProjectionProgress(engine, poll_interval=30.0, doorbell=Doorbell(bell))
    projecting = ProjectionProgress(engine, doorbell=Doorbell(bell))
    try:
        waiting.wait_until(lambda: False, timeout=0)  # listens from its first wait on
        woken = threading.Event()
        rang: list[float] = []

        def wait() -> None:
            started = time.monotonic()
            woken.set()
            waiting.wait_until(lambda: bool(rang), timeout=TIMEOUT)
            rang.append(time.monotonic() - started)

        thread = threading.Thread(target=wait)
        thread.start()
        woken.wait()
        time.sleep(0.2)
        rang.append(0.0)  # the condition now holds, but only a wake-up makes it look
        projecting.notify({0: 1})
        thread.join(TIMEOUT + 5)
    finally:
        waiting.close()
        projecting.close()
        engine.dispose()
    assert rang[-1] < TIMEOUT / 2, "woken by the timeout, not by the projector's ring"


def test_a_projector_refuses_a_held_lock_fd_that_is_not_the_lock(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with wiring.projector_lock(settings) as held, (tmp_path / "other").open("w") as other:
        assert held is not None
        refused = wiring.inherited_projector_lock(settings, other.fileno())
        with pytest.raises(SettingsError, match="is not the lock file"), refused:
            pass
        with wiring.inherited_projector_lock(settings, held):  # the parent's own: accepted
            pass


APPEND_FROM_ANOTHER_PROCESS = """
import sys
from eventlog.sqlite import SqliteEventLog
log = SqliteEventLog(sys.argv[1], partitions=2)
log.append([("job-1", b"event")])
log.close()
"""


def test_an_append_from_another_process_wakes_a_waiting_consumer_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_log, "FALLBACK_INTERVAL", 30.0)
    monkeypatch.setattr(sqlite_log, "RECHECK_INTERVAL", 30.0)
    path = tmp_path / "events.db"
    log = sqlite_log.SqliteEventLog(path, partitions=2)
    consumer = log.consumer("projector")
    consumer.subscribe(lambda partitions: {p: 0 for p in partitions})
    polled: list[int] = []
    seconds: list[float] = []

    def poll() -> None:
        started = time.monotonic()
        polled.extend(record.offset for record in consumer.poll(10, TIMEOUT))
        seconds.append(time.monotonic() - started)

    waiting = threading.Thread(target=poll)
    try:
        waiting.start()
        _wait_for_listener(path)
        time.sleep(0.2)  # the poll is past its first look and waiting
        subprocess.run(
            [sys.executable, "-c", APPEND_FROM_ANOTHER_PROCESS, str(path)], cwd=REPO, check=True
        )
        waiting.join(TIMEOUT + 5)
    finally:
        consumer.close()
        log.close()
    assert polled == [0]
    assert seconds[0] < TIMEOUT / 2, "woken by the timeout, not by the ring"
    assert list(bell_directory(path).iterdir()) == []  # closing removed the marker
