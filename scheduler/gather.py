"""Reading one round's inputs from the read model and the lease store (the I/O edge)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from events.dispatch import run_lease_key
from leases.port import LeaseStore
from projector import run_queries
from projector.rows import job_row, load_activity, run_row
from projector.run_projection import OPEN, RunRow
from projector.tables import JobRecord, RunRecord
from scheduler.decide import Failure, Snapshot
from scheduler.views import DependencyState, JobView, RunView


@dataclass(frozen=True)
class Gathered:
    snapshot: Snapshot
    runs: dict[str, RunRow]  # open runs by id, for their parameters and queues


def gather(session: Session, leases: LeaseStore, completed_since: datetime) -> Gathered:
    jobs = _jobs(session)
    open_rows = run_queries.runs_in_status(session, OPEN)
    running = [run_lease_key(r.id) for r in open_rows if r.status == "running"]
    live = set(leases.inspect(running)) if running else set()  # after reading the runs
    failed = run_queries.runs_in_status(session, ["failed"], dead_lettered=False)
    upstreams = {u for job in jobs.values() for u in job.spec.depends_on}
    snapshot = Snapshot(
        jobs=jobs,
        open_runs=[run_view(r) for r in open_rows],
        live_run_leases=live,
        failures=[Failure(run_view(r), r.outcome or "failed", r.exit_code) for r in failed],
        completed=_completed(session, upstreams, completed_since),
        dependencies=_dependency_state(session, jobs, upstreams),
    )
    return Gathered(snapshot, {r.id: r for r in open_rows})


def _jobs(session: Session) -> dict[str, JobView]:
    rows = [job_row(record) for record in session.scalars(select(JobRecord))]
    activity = load_activity(session, [row.id for row in rows])
    return {
        row.id: JobView(
            job_id=row.id,
            spec=row.spec,
            created_at=row.created_at,
            last_fire_at=a.last_fire_at if (a := activity.get(row.id)) else None,
            rescheduled_at=row.rescheduled_at,
        )
        for row in rows
    }


def run_view(run: RunRow) -> RunView:
    return RunView(
        run_id=run.id,
        job_id=run.job_id,
        status=run.status,
        trigger=run.trigger,  # type: ignore[arg-type]
        attempt=run.attempt,
        requested_at=run.requested_at,
        correlation_id=run.correlation_id,
        started_at=run.started_at,
        finished_at=run.finished_at,
        next_retry_at=run.next_retry_at,
        worker_id=run.worker_id,
        lease_token=run.lease_token,
    )


def _completed(session: Session, upstreams: Collection[str], since: datetime) -> list[RunView]:
    if not upstreams:
        return []
    query = select(RunRecord).where(
        RunRecord.job_id.in_(upstreams),
        RunRecord.status == "completed",
        RunRecord.finished_at > since,
    )
    return [run_view(run_row(record, ())) for record in session.scalars(query)]


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
