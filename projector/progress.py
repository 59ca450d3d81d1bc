"""Read-your-writes: wait until the projector has applied given log positions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping

from sqlalchemy import Engine

from embedded.doorbell import FALLBACK_INTERVAL, Doorbell
from eventlog.port import Position
from projector.batch import read_checkpoints


class ProjectionProgress:
    """Knows how far the read model has got, from the checkpoints in the database.

    A projector in the same process calls ``notify`` after each commit so waiters wake
    at once. A projector in another process on this machine rings ``doorbell`` (an
    embedded read model's) after each commit, which wakes waiters here at once too;
    otherwise they poll every ``poll_interval`` s.
    """

    def __init__(
        self, engine: Engine, poll_interval: float = 0.01, doorbell: Doorbell | None = None
    ) -> None:
        self._engine = engine
        self._poll_interval = poll_interval
        self._doorbell = doorbell
        self._changed = threading.Condition()
        self._known: dict[int, int] = {}  # checkpoints committed in this process

    def notify(self, checkpoints: Mapping[int, int]) -> None:
        """Called by a projector after it committed ``checkpoints``: wakes the waiters
        of this process, and of the others on this machine through the doorbell."""
        with self._changed:
            for partition, offset in checkpoints.items():
                self._known[partition] = max(offset, self._known.get(partition, 0))
            self._changed.notify_all()
        if self._doorbell is not None:
            self._doorbell.ring()

    def close(self) -> None:
        if self._doorbell is not None:
            self._doorbell.close()

    def _rung(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _recheck_interval(self) -> float:
        """How long a waiter may sleep before looking at the checkpoints again."""
        if self._doorbell is not None and (
            self._doorbell.listening or self._doorbell.listen(self._rung)
        ):
            return max(self._poll_interval, FALLBACK_INTERVAL)
        return self._poll_interval

    def checkpoints(self) -> dict[int, int]:
        # A bare connection: waiters look every few tens of milliseconds, and an ORM
        # session cost more than the query.
        with self._engine.connect() as connection:
            return read_checkpoints(connection)

    def reached(self, positions: Iterable[Position]) -> bool:
        needed = list(positions)
        # Checkpoints only grow, so what this process saw committed is a safe lower bound.
        if all(self._known.get(p.partition, 0) > p.offset for p in needed):
            return True
        with self._engine.connect() as connection:
            done = read_checkpoints(connection, {p.partition for p in needed})
        return all(done.get(p.partition, 0) > p.offset for p in needed)

    def wait_for(self, positions: Iterable[Position], timeout: float) -> bool:
        """True once every position is applied; False if ``timeout`` s pass first."""
        needed = list(positions)
        return self.wait_until(lambda: self.reached(needed), timeout)

    def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Re-check ``condition`` after every projected batch (or poll interval) until it
        holds; False if ``timeout`` s pass first."""
        deadline = time.monotonic() + timeout
        interval = self._recheck_interval()
        with self._changed:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(min(remaining, interval))
        return True
