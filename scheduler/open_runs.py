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


@dataclass(frozen=True, slots=True)
class Merge:
    """What the runs that changed do to the view."""

    stay: dict[str, OpenRun]  # open runs the view holds, in their new state (same place)
    leave: set[str]  # runs no longer open (ended, skipped, cancelled)
    joined: list[OpenRun]  # open runs new to the view, in request order


def merge(known: Collection[str], changed: Iterable[OpenRun]) -> Merge:
    """How the ``changed`` runs change a view holding the runs ``known``: open ones
    replace what was there (a request time never changes, so they keep their place) or
    join it, the others leave."""
    stay: dict[str, OpenRun] = {}
    leave: set[str] = set()
    joined: dict[str, OpenRun] = {}
    for run in changed:
        run_id = run.view.run_id
        if run.view.status not in OPEN:
            leave.add(run_id)
            stay.pop(run_id, None)
            joined.pop(run_id, None)
        elif run_id in known:
            stay[run_id] = run
        else:
            joined[run_id] = run
    return Merge(stay, leave, in_request_order(joined.values()))


def in_request_order(runs: Iterable[OpenRun]) -> list[OpenRun]:
    """Oldest request first, as a full read returns them (the rules' tie-breaks)."""
    return sorted(runs, key=_request_order)


def _request_order(run: OpenRun) -> tuple[datetime, str]:
    return run.view.requested_at, run.view.run_id


class OpenRuns:
    """The open runs as of the last ``refresh``."""

    def __init__(self, full_read_interval: timedelta) -> None:
        self._full_read_interval = full_read_interval
        # Oldest request first. Changed runs are merged in place: copying and re-walking
        # 10,000 open runs for each change was most of the scheduler's time under load.
        self._runs: dict[str, OpenRun] = {}
        # Derived from ``_runs`` once per change, not once per round.
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
            self._runs = {run.view.run_id: run for run in map(open_run, states)}  # in order
            self._read_all_at = now
            self._derive()
        else:
            states = reads.runs_changed_since(session, self._since)
            if states:
                self.apply(merge(self._runs.keys(), map(open_run, states)))
        self._since = dict(checkpoints)
        return len(states)

    def apply(self, change: Merge) -> None:
        """Merge the runs that changed into the view, in place, in request order."""
        runs = self._runs
        for run_id in change.leave:
            runs.pop(run_id, None)
        runs.update(change.stay)  # a key already present keeps its place
        if change.joined:
            last = next(reversed(runs.values()), None)
            if last is None or _request_order(last) < _request_order(change.joined[0]):
                runs.update((run.view.run_id, run) for run in change.joined)  # all newer
            else:  # an older request joined (a late projection): put it in its place
                ordered = in_request_order([*runs.values(), *change.joined])
                self._runs = {run.view.run_id: run for run in ordered}
        self._derive()

    def _derive(self) -> None:
        self._views = [run.view for run in self._runs.values()]
        self._failures = [r.failure for r in self._runs.values() if r.failure is not None]
        self._groups = grouped(self._views)

    @property
    def runs(self) -> list[OpenRun]:
        return list(self._runs.values())

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
