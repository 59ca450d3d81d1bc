"""A worker's stop: once ``Worker.run`` returns, none of its threads still uses the lease
store, so its caller can close the store (a listener left behind logged an ERROR there)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from chronolog.settings import Settings
from chronolog.wiring import build_runtime
from leases.port import Message
from leases.sqlite_store import SqliteSubscription
from worker.executors import Executors
from worker.runner import Worker, WorkerConfig

HELPERS = {"heartbeat", "cancels", "leases"}  # the threads Worker.run starts


def test_a_stopped_worker_leaves_no_thread_on_the_lease_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cancel listener is in the middle of its wait when the worker stops (a release
    # or a publish would otherwise wake it early, which hides the race).
    def waits_it_all(self: SqliteSubscription, timeout: float) -> Message | None:
        time.sleep(timeout)
        return None

    monkeypatch.setattr(SqliteSubscription, "get", waits_it_all)
    runtime = build_runtime(Settings(data_dir=tmp_path / "data", partitions=2))
    # Its take returns well within the listener's 0.5 s wait.
    config = WorkerConfig(
        worker_id="w-stop", hostname="test", pid=os.getpid(), concurrency=1, poll_timeout=0.05
    )
    stop = threading.Event()
    try:
        with Executors(python_processes=1) as executors:
            worker = Worker(config, runtime.log, runtime.codec, runtime.leases, executors)
            worker.register()
            serving = threading.Thread(target=worker.run, args=(stop,))
            serving.start()
            time.sleep(0.3)
            stop.set()
            serving.join(timeout=30)
            assert not serving.is_alive()
            left = sorted(t.name for t in threading.enumerate() if t.name in HELPERS)
            assert left == [], f"threads still using the lease store: {left}"
    finally:
        runtime.close()
