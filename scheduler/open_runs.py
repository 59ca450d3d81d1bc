"""The scheduler's view of the open runs, kept between rounds.

A round reads only the runs that changed since the checkpoints the previous round saw
(``scheduler_reads.runs_changed_since``) and merges them into this view; it reads every
open run when it has no view yet (it just took the lead) and every ``full_read_interval``
as a safety net. The merge is a pure function; ``OpenRuns`` holds the state and does the
reads.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from projector import scheduler_reads as reads
from projector.run_projection import OPEN
from scheduler.decide import Failure, Grouped, grouped
from scheduler.views import RunView


@dataclass(frozen=True, slots=True)
class OpenRun:
    view: RunView
    queue: str | None  # the queue it was queued on, if it was
    failure: Failure | None  # for a ``failing`` run: how its latest attempt ended


def open_run(state: reads.RunState) -> OpenRun:
    view = RunView(*state.run)
    failure = None
    if view.status == "failing":
        kind = state.outcome or "failed"
        failure = Failure(view, kind, state.exit_code, state.retryable, state.error)
    return OpenRun(view, state.queue, failure)


def merge(runs: Mapping[str, OpenRun], changed: Iterable[OpenRun]) -> dict[str, OpenRun]:
    """``runs`` with the ``changed`` runs in their new state: open ones replace (or join)
    what was there, the others (ended, skipped, cancelled) leave."""
    merged = dict(runs)
    for run in changed:
        if run.view.status in OPEN:
            merged[run.view.run_id] = run
        else:
            merged.pop(run.view.run_id, None)
    return merged


def in_request_order(runs: Iterable[OpenRun]) -> list[OpenRun]:
    """Oldest request first, as a full read returns them (the rules' tie-breaks)."""
    return sorted(runs, key=lambda run: (run.view.requested_at, run.view.run_id))


def _reordered(
    ordered: list[OpenRun], runs: Mapping[str, OpenRun], *, joined: Collection[str]
) -> list[OpenRun]:
    """``runs`` in request order; a sort only when runs joined (a request time never
    changes, so the previous order holds for the others)."""
    if joined:
        return in_request_order(runs.values())
    return [runs[r.view.run_id] for r in ordered if r.view.run_id in runs]


class OpenRuns:
    """The open runs as of the last ``refresh``."""

    def __init__(self, full_read_interval: timedelta) -> None:
        self._full_read_interval = full_read_interval
        self._runs: dict[str, OpenRun] = {}
        self._ordered: list[OpenRun] = []
        # Derived from ``_ordered`` once per change, not once per round.
        self._views: list[RunView] = []
        self._failures: list[Failure] = []
        self._groups = grouped([])
        self._since: dict[int, int] | None = None  # None: the next refresh reads everything
        self._read_all_at = datetime.min

    def forget(self) -> None:
        """Read every open run on the next refresh (a new leader trusts no earlier view)."""
        self._since = None

    def refresh(self, session: Session, checkpoints: Mapping[int, int], now: datetime) -> int:
        """Bring the view up to the read model; return how many rows were read.

        ``checkpoints``: the projector's checkpoints, read *before* this refresh reads
        any run, so what is committed after them is read again by the next refresh.
        """
        if self._since is None or now - self._read_all_at >= self._full_read_interval:
            states = reads.open_runs(session)
            self._runs = {run.view.run_id: run for run in map(open_run, states)}
            self._ordered = list(self._runs.values())  # already in request order
            self._read_all_at = now
            self._derive()
        else:
            states = reads.runs_changed_since(session, self._since)
            if states:
                merged = merge(self._runs, map(open_run, states))
                self._ordered = _reordered(self._ordered, merged, joined=merged.keys() - self._runs)
                self._runs = merged
                self._derive()
        self._since = dict(checkpoints)
        return len(states)

    def _derive(self) -> None:
        self._views = [run.view for run in self._ordered]
        self._failures = [r.failure for r in self._ordered if r.failure is not None]
        self._groups = grouped(self._views)

    @property
    def runs(self) -> list[OpenRun]:
        return self._ordered

    @property
    def views(self) -> list[RunView]:
        """The open runs as the rules read them, oldest request first."""
        return self._views

    def queue_of(self, run_id: str) -> str | None:
        """The queue the open run ``run_id`` was queued on, if it was. (Looked up when a
        cancel needs it, not mapped for every open run at each change: under load that
        map was a seventh of the scheduler's time.)"""
        run = self._runs.get(run_id)
        return None if run is None else run.queue

    @property
    def groups(self) -> Grouped:
        """``views`` grouped by status and slot-holding job."""
        return self._groups

    @property
    def failures(self) -> list[Failure]:
        """The ``failing`` runs and how their latest attempts ended."""
        return self._failures
