"""Reading one round's inputs from the read model and the lease store (the I/O edge)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from events.dispatch import run_lease_key
from events.model import JobSpec, spec_from_dict
from leases.port import LeaseStore
from projector.rows import load_activity
from projector.run_projection import OPEN
from projector.tables import JobActivityRecord, JobRecord, RunRecord
from scheduler.decide import Failure, Snapshot
from scheduler.views import DependencyState, JobView, RunView


@dataclass(frozen=True)
class Gathered:
    snapshot: Snapshot
    queues: dict[str, str]  # open run id -> the queue it was queued on, if it was


# Only what the rules read: loading whole rows (attempts, output, JSON) for every open
# run each round was most of the scheduler's time under load.
_VIEW_COLUMNS = (
    RunRecord.id,
    RunRecord.job_id,
    RunRecord.status,
    RunRecord.trigger,
    RunRecord.attempt,
    RunRecord.requested_at,
    RunRecord.correlation_id,
    RunRecord.started_at,
    RunRecord.finished_at,
    RunRecord.next_retry_at,
    RunRecord.worker_id,
    RunRecord.lease_token,
)


class JobCache:
    """Parsed job specs by (job id, version): a round re-reads only the specs that changed."""

    def __init__(self) -> None:
        self._specs: dict[str, tuple[int, JobSpec]] = {}

    def jobs(self, session: Session) -> dict[str, JobView]:
        columns = (JobRecord.id, JobRecord.version, JobRecord.created_at, JobRecord.rescheduled_at)
        rows = session.execute(select(*columns)).all()
        stale = [
            job_id for job_id, version, *_ in rows if self._specs.get(job_id, (None,))[0] != version
        ]
        if stale:
            query = select(JobRecord.id, JobRecord.version, JobRecord.spec).where(
                JobRecord.id.in_(stale)
            )
            for job_id, version, spec in session.execute(query):
                self._specs[job_id] = (version, spec_from_dict(spec))
        live = {job_id for job_id, *_ in rows}
        self._specs = {job_id: entry for job_id, entry in self._specs.items() if job_id in live}
        fired = _last_fires(session)
        return {
            job_id: JobView(job_id, self._specs[job_id][1], created, fired.get(job_id), rescheduled)
            for job_id, _, created, rescheduled in rows
            if job_id in self._specs
        }


def _last_fires(session: Session) -> dict[str, datetime]:
    query = select(JobActivityRecord.job_id, JobActivityRecord.last_fire_at).where(
        JobActivityRecord.last_fire_at.is_not(None)
    )
    return {job_id: at for job_id, at in session.execute(query) if at is not None}


def gather(
    session: Session, leases: LeaseStore, completed_since: datetime, cache: JobCache
) -> Gathered:
    jobs = cache.jobs(session)
    open_runs, queues = _open_runs(session)
    running = [run_lease_key(r.run_id) for r in open_runs if r.status == "running"]
    live = set(leases.inspect(running)) if running else set()  # after reading the runs
    upstreams = {u for job in jobs.values() for u in job.spec.depends_on}
    snapshot = Snapshot(
        jobs=jobs,
        open_runs=open_runs,
        live_run_leases=live,
        failures=_failures(session),
        completed=_completed(session, upstreams, completed_since),
        dependencies=_dependency_state(session, jobs, upstreams),
    )
    return Gathered(snapshot, queues)


def _open_runs(session: Session) -> tuple[list[RunView], dict[str, str]]:
    query = (
        select(*_VIEW_COLUMNS, RunRecord.queue)
        .where(RunRecord.status.in_(OPEN))
        .order_by(RunRecord.requested_at, RunRecord.id)
    )
    views, queues = [], {}
    for *values, queue in session.execute(query):
        views.append(_view(values))
        if queue is not None:
            queues[values[0]] = queue
    return views, queues


def _view(values: Sequence[Any]) -> RunView:
    """A view from ``_VIEW_COLUMNS`` values; the statuses and triggers are the read model's."""
    return RunView(*values)


def _failures(session: Session) -> list[Failure]:
    """The ``failing`` runs, which wait for a retry or a dead letter."""
    facts = (RunRecord.outcome, RunRecord.exit_code, RunRecord.retryable, RunRecord.error)
    query = select(*_VIEW_COLUMNS, *facts).where(RunRecord.status == "failing")
    return [
        Failure(_view(values), outcome or "failed", code, retryable, error)
        for *values, outcome, code, retryable, error in session.execute(query)
    ]


def run_parameters(session: Session, run_ids: Collection[str]) -> dict[str, dict[str, Any]]:
    """The parameters of the runs about to be dispatched."""
    if not run_ids:
        return {}
    query = select(RunRecord.id, RunRecord.parameters).where(RunRecord.id.in_(run_ids))
    return {run_id: parameters for run_id, parameters in session.execute(query)}


def _completed(session: Session, upstreams: Collection[str], since: datetime) -> list[RunView]:
    if not upstreams:
        return []
    query = select(*_VIEW_COLUMNS).where(
        RunRecord.job_id.in_(upstreams),
        RunRecord.status == "completed",
        RunRecord.finished_at > since,
    )
    return [_view(values) for values in session.execute(query)]


def _dependency_state(
    session: Session, jobs: dict[str, JobView], upstreams: Collection[str]
) -> DependencyState:
    dependents = [j for j in jobs.values() if j.spec.depends_on]
    if not dependents:
        return DependencyState()
    activity = load_activity(session, upstreams)
    successes = {job_id: a.last_success_at for job_id, a in activity.items() if a.last_success_at}
    triggered = _last_dependency_requests(session, [j.job_id for j in dependents])
    # A job created after its upstreams last succeeded must wait for their next success.
    since = {j.job_id: max(j.created_at, triggered.get(j.job_id, j.created_at)) for j in dependents}
    return DependencyState(last_success_at=successes, last_triggered_at=since)


def _last_dependency_requests(session: Session, job_ids: list[str]) -> dict[str, datetime]:
    """Latest dependency-triggered request per job, not counting ``upstream_failed`` skips."""
    not_placeholder = (RunRecord.status != "skipped") | (RunRecord.reason != "upstream_failed")
    query: Any = (
        select(RunRecord.job_id, func.max(RunRecord.requested_at))
        .where(RunRecord.job_id.in_(job_ids), RunRecord.trigger == "dependency", not_placeholder)
        .group_by(RunRecord.job_id)
    )
    return {job_id: at for job_id, at in session.execute(query).all()}
