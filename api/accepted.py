"""Runs this API process accepted that the read model may not show yet.

A trigger is answered once its ``RunRequested`` is durable, without waiting for the
projector. So that a client of this process can still read what it wrote (its run at the
``Location`` it got, or the same ``Idempotency-Key`` again), the process remembers where
each accepted run's event landed: a read that misses such a run waits for that position
instead of answering 404. Bounded: the oldest entries go first; by then they are projected.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from eventlog.port import Position

DEFAULT_CAPACITY = 100_000


@dataclass(frozen=True, slots=True)
class AcceptedRun:
    run_id: str
    job_id: str
    position: Position  # where its last event of the trigger landed
    status: str = "pending"  # what the trigger answered: pending, or queued


class AcceptedRuns:
    """A bounded map run id -> where its ``RunRequested`` landed; safe across threads."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._runs: OrderedDict[str, AcceptedRun] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, runs: Iterable[AcceptedRun]) -> None:
        with self._lock:
            for run in runs:
                self._runs[run.run_id] = run
                self._runs.move_to_end(run.run_id)
            while len(self._runs) > self._capacity:
                self._runs.popitem(last=False)

    def get(self, run_id: str) -> AcceptedRun | None:
        with self._lock:
            return self._runs.get(run_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._runs)
