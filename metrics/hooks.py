"""The observations roles make on their hot paths, as one hook object.

Every method of ``Metrics`` does nothing: it is what a role holds when metrics are off
(``CHRONOLOG_METRICS=off``), so the hot path pays one method call and no branch.
``metrics.prometheus.PrometheusMetrics`` records them. Only counter and histogram
observations happen here; anything that needs I/O is read at scrape time instead
(``metrics.state``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final


class Metrics:
    """Hot-path observations; the base class records nothing (metrics off)."""

    enabled = False

    def run_started(self, queue: str, lateness: float | None) -> None:
        """A worker started a run from ``queue``; ``lateness`` is start minus the
        scheduled fire time in seconds (None for runs nobody scheduled)."""

    def run_ended(self) -> None:
        """The run a worker started has stopped running (its slot is free again)."""

    def run_finished(self, job: str, queue: str, status: str, seconds: float | None) -> None:
        """A worker reported a run's outcome: ``status`` is succeeded, failed, timed_out
        or cancelled; ``seconds`` how long it ran (None if it never started)."""

    def worker_started(self, slots: int) -> None:
        """A worker process serves with ``slots`` runs at once."""

    def appended(self, seconds: float, events: int) -> None:
        """An append of ``events`` events to the log became durable after ``seconds``."""

    def applied(self, events: int) -> None:
        """The projector committed a batch of ``events`` events."""

    def decided(self, counts: Mapping[str, int]) -> None:
        """The scheduler appended its decisions: event type -> how many."""

    def triggered(self, created: int, replayed: int) -> None:
        """The API answered triggers: ``created`` new runs, ``replayed`` runs an earlier
        trigger with the same Idempotency-Key made."""


NO_METRICS: Final = Metrics()
