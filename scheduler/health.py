"""Health of running runs: the timeout backstop and lost runs.

Rules:

- **Lost** (``lost``): a ``running`` run whose run lease (``run:<run id>``) is not live
  is ``RunLost(reason="lease expired")`` with the attempt's worker and lease token. The
  worker takes the lease *before* it appends ``RunStarted`` and appends its outcome
  *before* releasing it, so a missing lease means the worker is gone — unless the
  attempt's finished flag is up: the worker raises it as it releases the lease, so the
  run ended and its outcome is not projected yet; ``gather`` counts such runs as live.
  The loop must read the running runs before it inspects the leases, or a run that
  ended in between looks lost (harmless: its outcome precedes ``RunLost`` in the job's
  partition, so the projection rejects ``RunLost``, but noisy). Runs started less than ``grace`` ago
  (default 1 s) are left alone, to absorb clock skew between worker and scheduler.
  Queued runs hold no lease and are never lost by this rule (the queue reconcile
  re-pushes them).
- **Backstop** (``overdue``): a ``running`` run with no outcome ``grace`` (default 30 s,
  more than the worker's SIGTERM-to-SIGKILL grace) after its timeout is
  ``RunTimedOut(worker_id=None, lease_token=None)``. The timeout is the job's current
  one (the default 3600 s if the job was deleted).

``check_running`` applies both, one event per run, lost first. Either outcome is then
retried per policy (``retries.after_failure``).

- **Lost workers** (``lost_workers``): an ``active`` worker whose heartbeat lease
  (``worker:<id>``, three heartbeat intervals long, renewed every interval) is not live
  is ``WorkerLost``: it missed three heartbeats (killed, frozen, cut off). A worker takes
  the lease before it appends ``WorkerRegistered``, so a new one is never taken for lost;
  one that deregisters appends ``WorkerDeregistered`` before releasing it, so a
  ``WorkerLost`` read from a lagging read model lands after it and is rejected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from datetime import datetime, timedelta
from typing import Final

from events.model import Event, RunLost, RunTimedOut, WorkerLost
from leases.dispatch import run_lease_key, worker_lease_key
from projector.worker_projection import WorkerRow
from scheduler.envelope import ACTOR, occurred_at, run_event
from scheduler.views import JobView, RunView

TIMEOUT_GRACE: Final = timedelta(seconds=30)
LOST_GRACE: Final = timedelta(seconds=1)  # clock skew between processes on a host
DEFAULT_TIMEOUT: Final = 3600.0  # JobSpec's default, for runs of deleted jobs

_MS: Final = timedelta(milliseconds=1)


def lost(
    running_runs: Iterable[RunView],
    live_lease_keys: Set[str],
    now: datetime,
    grace: timedelta = LOST_GRACE,
) -> list[Event]:
    """Return ``RunLost`` for each running run, started over ``grace`` ago, without a live lease.

    Args:
        running_runs: runs in status ``running`` (others are ignored).
        live_lease_keys: the keys among ``run_lease_key(run)`` that the lease store holds.
    """
    started_before = now - grace
    return [
        run_event(_lost(run), run, now)
        for run in running_runs
        if _started_before(run, started_before) and run_lease_key(run.run_id) not in live_lease_keys
    ]


def overdue(
    running_runs: Iterable[RunView],
    jobs: Mapping[str, JobView],
    now: datetime,
    grace: timedelta = TIMEOUT_GRACE,
) -> list[Event]:
    """Return ``RunTimedOut`` for each running run past its job's timeout plus ``grace``."""
    events: list[Event] = []
    cutoffs: dict[str, datetime] = {}  # job id -> runs started before it are overdue
    for run in running_runs:
        cutoff = cutoffs.get(run.job_id)
        if cutoff is None:
            timeout = _timeout(jobs.get(run.job_id))
            cutoff = cutoffs[run.job_id] = now - timedelta(seconds=timeout) - grace
        if _started_before(run, cutoff):
            timeout = _timeout(jobs.get(run.job_id))
            elapsed = None if run.started_at is None else (now - run.started_at) // _MS
            payload = RunTimedOut(timeout=timeout, duration_ms=elapsed)
            events.append(run_event(payload, run, now))
    return events


def check_running(
    running_runs: Iterable[RunView],
    live_lease_keys: Set[str],
    jobs: Mapping[str, JobView],
    now: datetime,
) -> list[Event]:
    """``lost`` then ``overdue`` over the runs not lost: at most one event per run."""
    runs = list(running_runs)
    lost_events = lost(runs, live_lease_keys, now)
    gone = {event.run_id for event in lost_events}
    return lost_events + overdue([run for run in runs if run.run_id not in gone], jobs, now)


def lost_workers(
    workers: Iterable[WorkerRow], live_heartbeat_keys: Set[str], now: datetime
) -> list[Event]:
    """Return ``WorkerLost`` for each ``active`` worker whose heartbeat lease has lapsed.

    Args:
        workers: workers as the read model has them (others than ``active`` are ignored).
        live_heartbeat_keys: the keys among ``worker_lease_key(worker)`` the store holds.
    """
    return [
        Event(payload=WorkerLost(worker.id), occurred_at=occurred_at(now), actor=ACTOR)
        for worker in workers
        if worker.status == "active" and worker_lease_key(worker.id) not in live_heartbeat_keys
    ]


def _started_before(run: RunView, moment: datetime) -> bool:
    """The run is running and started before ``moment`` (compared, not subtracted: the
    rules look at every running run, thousands, each lease check).

    A running run without ``started_at`` (should not happen) counts as started long ago,
    so it cannot hang unnoticed.
    """
    if run.status != "running":
        return False
    return run.started_at is None or run.started_at < moment


def _timeout(job: JobView | None) -> float:
    return DEFAULT_TIMEOUT if job is None else job.spec.timeout


def _lost(run: RunView) -> RunLost:
    return RunLost(reason="lease expired", worker_id=run.worker_id, lease_token=run.lease_token)
