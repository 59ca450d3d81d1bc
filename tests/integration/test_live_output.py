"""The worker's live-output publisher against a real embedded lease store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from leases.dispatch import OUTPUT_END, decode_output, output_channel
from leases.sqlite_store import SqliteLeaseStore
from tests.conftest import wait_until
from worker.live_output import MAX_PENDING_BYTES, LiveOutput

CHUNK = b"x" * (64 * 1024)


def test_a_stalled_store_bounds_what_waits_in_memory_and_nothing_is_lost_after(
    tmp_path: Path,
) -> None:
    path = tmp_path / "leases.db"
    store = SqliteLeaseStore(path)
    subscription = store.subscribe([output_channel("run-1")])
    live = LiveOutput(store)
    offer = live.listener("run-1")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the store cannot publish until this ends
    try:
        for _ in range(160):  # 10 MiB of output while nothing can be published
            offer("stdout", CHUNK)
            assert live.pending_bytes <= MAX_PENDING_BYTES
        assert live.dropped >= 160 - MAX_PENDING_BYTES // len(CHUNK)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    wait_until(lambda: live.pending_bytes == 0)
    offer("stdout", b"after the stall")
    live.finish("run-1")
    received = []
    while (message := subscription.get(5)) is not None and message.data != OUTPUT_END:
        received.append(decode_output(message.data))
    assert received[-1] == ("stdout", b"after the stall")
    live.close()
    store.close()
