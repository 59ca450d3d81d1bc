"""Assembling one round's snapshot from the read model and the lease store (the I/O edge).

Every read of the read model is in ``projector.scheduler_reads``; this module turns its
facts into the views the rules read and adds what only the lease store knows.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from leases.dispatch import finished_flag, run_lease_key
from leases.port import LeaseStore
from projector import scheduler_reads as reads
from scheduler.decide import Snapshot
from scheduler.open_runs import OpenRuns
from scheduler.views import DependencyState, JobView, RunView


@dataclass(frozen=True)
class Gathered:
    snapshot: Snapshot
    queue_of: Callable[[str], str | None]  # open run id -> the queue it was queued on, if any


def gather(
    session: Session,
    leases: LeaseStore,
    completed_since: datetime,
    cache: reads.JobCache,
    open_runs: OpenRuns,
    *,
    check_leases: bool = True,
) -> Gathered:
    """One round's snapshot; ``open_runs``: the open runs, just refreshed (read before
    the leases are inspected, or a run that ended in between would look lost).

    ``check_leases=False`` skips inspecting the running runs' leases, and the round looks
    for no lost or timed-out run (``Snapshot.check_running``); the next check finds them.
    """
    jobs = {job_id: JobView(*facts) for job_id, facts in cache.jobs(session).items()}
    views = open_runs.views
    live: set[str] = set()
    if check_leases:  # after reading the runs
        running = open_runs.groups.by_status.get("running", [])
        keys = [run_lease_key(r.run_id) for r in running]
        live = set(leases.inspect(keys)) if keys else set()
        leaseless = [r for r in running if run_lease_key(r.run_id) not in live]
        live |= _finished_meanwhile(leases, leaseless)
    upstreams = {u for job in jobs.values() for u in job.spec.depends_on}
    completed = reads.completed_since(session, upstreams, completed_since)
    snapshot = Snapshot(
        jobs=jobs,
        open_runs=views,
        live_run_leases=live,
        failures=open_runs.failures,
        completed=[RunView(*facts) for facts in completed],
        dependencies=_dependency_state(session, jobs, upstreams),
        groups=open_runs.groups,
        check_running=check_leases,
    )
    return Gathered(snapshot, open_runs.queue_of)


def _finished_meanwhile(leases: LeaseStore, leaseless: Sequence[RunView]) -> set[str]:
    """The lease keys of ``leaseless`` runs whose attempt has ended: a worker raises the
    attempt's finished flag as it releases the lease, after appending the outcome, so
    such a run is not lost, only not yet projected. Under load the projector lags the
    workers by thousands of runs, and each would otherwise get a RunLost (rejected by
    the projection, but noise in the log and the audit trail)."""
    if not leaseless:
        return set()
    flags = {finished_flag(r.run_id, r.attempt): r for r in leaseless}
    return {run_lease_key(flags[flag].run_id) for flag in leases.raised_flags(list(flags))}


def _dependency_state(
    session: Session, jobs: Mapping[str, JobView], upstreams: Collection[str]
) -> DependencyState:
    dependents = [j for j in jobs.values() if j.spec.depends_on]
    if not dependents:
        return DependencyState()
    successes = reads.last_successes(session, upstreams)
    triggered = reads.last_dependency_requests(session, [j.job_id for j in dependents])
    # A job created after its upstreams last succeeded must wait for their next success.
    since = {j.job_id: max(j.created_at, triggered.get(j.job_id, j.created_at)) for j in dependents}
    return DependencyState(last_success_at=successes, last_triggered_at=since)
