"""A projector woken from idle waits ``gather`` seconds for the rest of a burst, and
applies it as one batch; one that is busy never waits."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from chronolog.wiring import open_read_model
from eventlog.sqlite import SqliteEventLog
from events.codec import EventCodec
from projector.loop import Projector
from tests.integration.test_projector_appends import run_pair

SPACING = 0.3  # seconds between the burst's two appends


def append_pair(log: SqliteEventLog, codec: EventCodec, run: int) -> None:
    log.append([(e.key, codec.encode(e)) for e in run_pair("job-0", f"run-{run}")])


@pytest.mark.parametrize(("gather", "first_batch"), [(0.0, 2), (1.0, 4)])
def test_a_projector_woken_from_idle_gathers_the_burst(
    tmp_path: Path, gather: float, first_batch: int
) -> None:
    codec = EventCodec.default()
    log = SqliteEventLog(tmp_path / "events.db", partitions=2)
    engine = open_read_model(f"sqlite:///{tmp_path / 'read.db'}", upgrade=True)
    projector = Projector(log, engine, codec, gather=gather)
    try:
        assert projector.step(timeout=0) == 0  # idle: nothing in the log
        applied: list[int] = []
        waiting = threading.Thread(target=lambda: applied.append(projector.step(timeout=10)))
        waiting.start()
        append_pair(log, codec, 1)
        time.sleep(SPACING)  # within the gather, or long after a batch applied at once
        append_pair(log, codec, 2)
        waiting.join(timeout=10)
        # Without a gather the pair that woke the projector is a batch of its own.
        assert applied == [first_batch]
        if gather:
            # Busy (the last step applied records): the next records go at once.
            append_pair(log, codec, 3)
            began = time.monotonic()
            assert projector.step(timeout=10) == 2
            assert time.monotonic() - began < gather
    finally:
        projector.close()
        log.close()
        engine.dispose()
