"""Read-model queries about runs and workers, for the API, scheduler and dashboard."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from projector.activity import JobActivity
from projector.queries import EventEntry, entry
from projector.rows import load_activity, load_runs, run_row, worker_row
from projector.run_projection import RunRow
from projector.tables import EventIndexRecord, JobActivityRecord, RunRecord, WorkerRecord
from projector.worker_projection import WorkerRow

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class RunFilter:
    job_id: str | None = None
    status: str | None = None
    since: datetime | None = None  # requested at or after
    until: datetime | None = None  # requested before
    dead_lettered: bool | None = None
    limit: int = 50
    offset: int = 0


def get_run(session: Session, run_id: str) -> RunRow | None:
    """The run with every attempt."""
    return load_runs(session, [run_id]).get(run_id)


def get_runs(session: Session, run_ids: Collection[str]) -> dict[str, RunRow]:
    return load_runs(session, run_ids)


def list_runs(session: Session, criteria: RunFilter) -> tuple[list[RunRow], int]:
    """A page of runs, newest first (without their attempts), and the total count."""
    total = session.scalar(_filtered(select(func.count()).select_from(RunRecord), criteria)) or 0
    query = _filtered(select(RunRecord), criteria).order_by(
        RunRecord.requested_at.desc(), RunRecord.id
    )
    page = session.scalars(query.limit(criteria.limit).offset(criteria.offset))
    return [run_row(record, ()) for record in page], total


def _filtered(query: Select[_T], criteria: RunFilter) -> Select[_T]:
    if criteria.job_id is not None:
        query = query.where(RunRecord.job_id == criteria.job_id)
    if criteria.status is not None:
        query = query.where(RunRecord.status == criteria.status)
    if criteria.since is not None:
        query = query.where(RunRecord.requested_at >= criteria.since)
    if criteria.until is not None:
        query = query.where(RunRecord.requested_at < criteria.until)
    if criteria.dead_lettered is not None:
        query = query.where(RunRecord.dead_lettered == criteria.dead_lettered)
    return query


def runs_in_status(
    session: Session,
    statuses: Collection[str],
    *,
    dead_lettered: bool | None = None,
    limit: int = 10_000,
) -> list[RunRow]:
    """Runs in any of ``statuses``, oldest request first, with their attempts."""
    query = select(RunRecord.id).where(RunRecord.status.in_(statuses))
    if dead_lettered is not None:
        query = query.where(RunRecord.dead_lettered == dead_lettered)
    query = query.order_by(RunRecord.requested_at, RunRecord.id).limit(limit)
    ids = list(session.scalars(query))
    runs = load_runs(session, ids)
    return [runs[run_id] for run_id in ids if run_id in runs]


def run_events(session: Session, run_id: str) -> list[EventEntry]:
    """The run's events, oldest first (one run lives in one partition)."""
    query = (
        select(EventIndexRecord)
        .where(EventIndexRecord.run_id == run_id)
        .order_by(EventIndexRecord.partition, EventIndexRecord.offset)
    )
    return [entry(record) for record in session.scalars(query)]


def job_activity(session: Session, job_ids: Collection[str]) -> dict[str, JobActivity]:
    return load_activity(session, job_ids)


def last_fires(session: Session, job_ids: Collection[str]) -> dict[str, datetime]:
    """Job id -> the latest fire time its schedule requested a run for (jobs that fired)."""
    if not job_ids:
        return {}
    query = select(JobActivityRecord.job_id, JobActivityRecord.last_fire_at).where(
        JobActivityRecord.job_id.in_(job_ids), JobActivityRecord.last_fire_at.is_not(None)
    )
    return {job_id: at for job_id, at in session.execute(query) if at is not None}


@dataclass(frozen=True, slots=True)
class WorkerSummary:
    worker: WorkerRow
    active_jobs: int


def list_workers(session: Session, include_gone: bool = False) -> list[WorkerSummary]:
    query = select(WorkerRecord).order_by(WorkerRecord.registered_at)
    if not include_gone:
        query = query.where(WorkerRecord.status == "active")
    workers = [worker_row(record) for record in session.scalars(query)]
    running = select(RunRecord.worker_id, func.count()).where(RunRecord.status == "running")
    counts: dict[Any, int] = dict(session.execute(running.group_by(RunRecord.worker_id)).all())
    return [WorkerSummary(worker, counts.get(worker.id, 0)) for worker in workers]


def max_lease_token(session: Session) -> int:
    """The highest fencing token the log has seen, to re-seed a lease store that lost it."""
    return session.scalar(select(func.max(RunRecord.lease_token))) or 0


def queued_by_queue(session: Session) -> dict[str, int]:
    """How many runs wait in each queue (status ``queued``)."""
    query = (
        select(RunRecord.queue, func.count())
        .where(RunRecord.status == "queued", RunRecord.queue.is_not(None))
        .group_by(RunRecord.queue)
    )
    return {queue: count for queue, count in session.execute(query).all() if queue is not None}
