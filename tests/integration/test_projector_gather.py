"""A projector with fewer than ``SMALL_BATCH`` records waits ``gather`` seconds for more
and applies them as one batch (woken from idle, or under a trickle of load); one with a
full batch never waits."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from chronolog.wiring import open_read_model
from eventlog.sqlite import SqliteEventLog
from events.codec import EventCodec
from projector.loop import SMALL_BATCH, Projector
from tests.integration.test_projector_appends import run_pair

SPACING = 0.3  # seconds between the burst's two appends


def append_pairs(log: SqliteEventLog, codec: EventCodec, *runs: int) -> None:
    """One append of a request and a start for each run."""
    events = [e for run in runs for e in run_pair("job-0", f"run-{run}")]
    log.append([(e.key, codec.encode(e)) for e in events])


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[SqliteEventLog, EventCodec, Engine]]:
    log = SqliteEventLog(tmp_path / "events.db", partitions=2)
    engine = open_read_model(f"sqlite:///{tmp_path / 'read.db'}", upgrade=True)
    yield log, EventCodec.default(), engine
    log.close()
    engine.dispose()


@pytest.mark.parametrize(("gather", "first_batch"), [(0.0, 2), (1.0, 4)])
def test_a_projector_woken_from_idle_gathers_the_burst(
    parts: tuple[SqliteEventLog, EventCodec, Engine], gather: float, first_batch: int
) -> None:
    log, codec, engine = parts
    projector = Projector(log, engine, codec, gather=gather)
    try:
        assert projector.step(timeout=0) == 0  # idle: nothing in the log
        applied: list[int] = []
        waiting = threading.Thread(target=lambda: applied.append(projector.step(timeout=10)))
        waiting.start()
        append_pairs(log, codec, 1)
        time.sleep(SPACING)  # within the gather, or long after a batch applied at once
        append_pairs(log, codec, 2)
        waiting.join(timeout=10)
        # Without a gather the pair that woke the projector is a batch of its own.
        assert applied == [first_batch]
    finally:
        projector.close()


def test_a_small_batch_under_load_waits_and_a_full_one_goes_at_once(
    parts: tuple[SqliteEventLog, EventCodec, Engine],
) -> None:
    log, codec, engine = parts
    gather = 1.0
    projector = Projector(log, engine, codec, gather=gather)
    later = threading.Timer(SPACING, append_pairs, (log, codec, 2))
    try:
        # Records waiting already (no wait for the first), but fewer than a full batch.
        append_pairs(log, codec, 1)
        later.start()
        assert projector.step(timeout=10) == 4  # the trickle's next append came in the wait
        later.join()
        # A full batch waiting: applied at once.
        full = range(10, 10 + SMALL_BATCH // 2)
        append_pairs(log, codec, *full)
        began = time.monotonic()
        assert projector.step(timeout=10) == 2 * len(full)
        assert time.monotonic() - began < gather
    finally:
        later.join()
        projector.close()
