"""Every read the API does, in one place: plain values out, no ORM rows.

The API (``api/``) reads the read model only through this module (see
``tests/unit/test_read_modules.py``); the scheduler has ``scheduler_reads`` and the
dashboard ``dashboard_reads``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from events.model import spec_from_dict
from projector.job_projection import JobRow
from projector.poison import UNPROJECTABLE
from projector.rows import (
    EventEntry,
    event_entry,
    job_row,
    load_runs,
    rows_by_key,
    run_columns,
    run_from_values,
    schedule_type,
    worker_row,
)
from projector.run_projection import RunRow
from projector.tables import (
    ApiTokenRecord,
    EventIndexRecord,
    JobActivityRecord,
    JobDependencyRecord,
    JobRecord,
    JobTagRecord,
    RunRecord,
    WorkerRecord,
)
from projector.token_projection import TokenRow
from projector.token_rows import token_row
from projector.worker_projection import WorkerRow

__all__ = [
    "EventEntry",
    "JobFilter",
    "RunFilter",
    "TokenRow",
    "WorkerSummary",
    "any_token",
    "count_unprojectable",
    "dependency_graph",
    "dependents",
    "find_job",
    "find_token",
    "get_run",
    "job_events",
    "job_names",
    "last_fires",
    "list_jobs",
    "list_runs",
    "list_tokens",
    "list_workers",
    "queued_by_queue",
    "resolve_jobs",
    "run_events",
    "schedule_type",
    "token_by_hash",
]

_T = TypeVar("_T")


# --- jobs --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobFilter:
    tag: str | None = None
    type: str | None = None
    schedule_type: str | None = None
    enabled: bool | None = None
    q: str | None = None  # case-insensitive substring of the name
    limit: int = 50
    offset: int = 0


def find_job(session: Session, id_or_name: str) -> JobRow | None:
    query = select(JobRecord).where(or_(JobRecord.id == id_or_name, JobRecord.name == id_or_name))
    # An id wins over a name; of two jobs with one name (a lost race), the older wins.
    records = sorted(session.scalars(query), key=lambda r: (r.id != id_or_name, r.created_at))
    return job_row(records[0]) if records else None


def find_jobs(session: Session, refs: Collection[str]) -> dict[str, JobRow]:
    """``find_job`` for many ids or names at once; refs naming no job are left out."""
    wanted = list(set(refs))
    # Every trigger reads its jobs: two reads by key (projector.keyed_reads), by id and
    # by name, each on its index. A row: the name, then JobRow's fields in order.
    by_id = {row[1]: row for row in _JOBS_BY_ID.fetch(session, wanted)}
    rows = [
        *by_id.values(),
        *(r for r in _JOBS_BY_NAME.fetch(session, wanted) if r[1] not in by_id),
    ]
    found = {}
    for ref in wanted:
        # The same rule as ``find_job``: an id wins over a name, then the older job.
        matching = [row for row in rows if ref in (row[1], row[0])]
        if matching:
            _name, id_, spec, created_at, *rest = min(matching, key=lambda r: (r[1] != ref, r[3]))
            found[ref] = JobRow(id_, spec_from_dict(spec), created_at, *rest)
    return found


_JOB_COLUMNS: Final = ("name", *(f.name for f in dataclasses.fields(JobRow)))
_JOBS_BY_ID: Final = rows_by_key(JobRecord, _JOB_COLUMNS, "id")
_JOBS_BY_NAME: Final = rows_by_key(JobRecord, _JOB_COLUMNS, "name")


@dataclass(frozen=True, slots=True)
class RunState:
    job_id: str
    status: str
    reason: str | None


def run_states(session: Session, run_ids: Collection[str]) -> dict[str, RunState]:
    """The status of each of ``run_ids`` the read model has (no attempts, no output)."""
    if not run_ids:
        return {}
    query = select(RunRecord.id, RunRecord.job_id, RunRecord.status, RunRecord.reason).where(
        RunRecord.id.in_(list(run_ids))
    )
    return {
        id_: RunState(job, status, reason) for id_, job, status, reason in session.execute(query)
    }


def list_jobs(session: Session, criteria: JobFilter) -> tuple[list[JobRow], int]:
    """One page of jobs matching ``criteria``, ordered by name, and the total count."""
    query = _jobs_filtered(select(JobRecord), criteria)
    total = session.scalar(_jobs_filtered(select(func.count()).select_from(JobRecord), criteria))
    page = query.order_by(JobRecord.name).limit(criteria.limit).offset(criteria.offset)
    return [job_row(record) for record in session.scalars(page)], total or 0


def _jobs_filtered(query: Select[_T], criteria: JobFilter) -> Select[_T]:
    if criteria.tag is not None:
        tagged = select(JobTagRecord.job_id).where(JobTagRecord.tag == criteria.tag)
        query = query.where(JobRecord.id.in_(tagged))
    if criteria.type is not None:
        query = query.where(JobRecord.type == criteria.type)
    if criteria.schedule_type is not None:
        query = query.where(JobRecord.schedule_type == criteria.schedule_type)
    if criteria.enabled is not None:
        query = query.where(JobRecord.enabled == criteria.enabled)
    if criteria.q:
        query = query.where(
            func.lower(JobRecord.name).contains(criteria.q.lower(), autoescape=True)
        )
    return query


def resolve_jobs(session: Session, refs: Iterable[str]) -> dict[str, str]:
    """Map each job id or name in ``refs`` that exists to its job id."""
    wanted = set(refs)
    if not wanted:
        return {}
    query = select(JobRecord.id, JobRecord.name).where(
        or_(JobRecord.id.in_(wanted), JobRecord.name.in_(wanted))
    )
    found: dict[str, str] = {}
    for job_id, name in session.execute(query):
        if name in wanted:
            found.setdefault(name, job_id)
        if job_id in wanted:
            found[job_id] = job_id
    return found


def job_names(session: Session, ids: Iterable[str]) -> dict[str, str]:
    wanted = set(ids)
    if not wanted:
        return {}
    return dict(rows_by_key(JobRecord, ("id", "name"), "id").fetch(session, wanted))


def dependency_graph(session: Session) -> dict[str, set[str]]:
    """Job id -> the ids it depends on, for every job with dependencies."""
    graph: dict[str, set[str]] = {}
    query = select(JobDependencyRecord.job_id, JobDependencyRecord.depends_on_id)
    for job_id, upstream in session.execute(query):
        graph.setdefault(job_id, set()).add(upstream)
    return graph


def dependents(session: Session, job_id: str) -> list[str]:
    """Names of the jobs that depend on ``job_id``."""
    query = (
        select(JobRecord.name)
        .join(JobDependencyRecord, JobDependencyRecord.job_id == JobRecord.id)
        .where(JobDependencyRecord.depends_on_id == job_id)
        .order_by(JobRecord.name)
    )
    return list(session.scalars(query))


def job_events(session: Session, job_id: str, limit: int | None = None) -> list[EventEntry]:
    """The job's events (and its runs'), oldest first: one key lives in one partition."""
    query = (
        select(EventIndexRecord)
        .where(EventIndexRecord.job_id == job_id)
        .order_by(EventIndexRecord.partition, EventIndexRecord.offset)
        .limit(limit)
    )
    return [event_entry(record) for record in session.scalars(query)]


def count_unprojectable(session: Session) -> int:
    """How many events were recorded as rejected because they could not be projected
    (values the read model cannot hold, a projection that raised, rows the database
    refused). Any at all means the log holds events the read model does not show."""
    query = (
        select(func.count())
        .select_from(EventIndexRecord)
        .where(EventIndexRecord.rejected.startswith(UNPROJECTABLE, autoescape=True))
    )
    return session.scalar(query) or 0


# --- runs and workers --------------------------------------------------------------


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


def list_runs(session: Session, criteria: RunFilter) -> tuple[list[RunRow], int]:
    """A page of runs, newest first (without their attempts), and the total count."""
    total = (
        session.scalar(_runs_filtered(select(func.count()).select_from(RunRecord), criteria)) or 0
    )
    # Core columns into plain tuples: a page of ORM instances cost more than the rows.
    query = _runs_filtered(select(*run_columns()), criteria).order_by(
        RunRecord.requested_at.desc(), RunRecord.id
    )
    page = session.execute(query.limit(criteria.limit).offset(criteria.offset))
    return [run_from_values(values) for values in page], total


def _runs_filtered(query: Select[_T], criteria: RunFilter) -> Select[_T]:
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


def run_events(session: Session, run_id: str) -> list[EventEntry]:
    """The run's events, oldest first (one run lives in one partition)."""
    query = (
        select(EventIndexRecord)
        .where(EventIndexRecord.run_id == run_id)
        .order_by(EventIndexRecord.partition, EventIndexRecord.offset)
    )
    return [event_entry(record) for record in session.scalars(query)]


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


def queued_by_queue(session: Session) -> dict[str, int]:
    """How many runs wait in each queue (status ``queued``)."""
    query = (
        select(RunRecord.queue, func.count())
        .where(RunRecord.status == "queued", RunRecord.queue.is_not(None))
        .group_by(RunRecord.queue)
    )
    return {queue: count for queue, count in session.execute(query).all() if queue is not None}


def job_queues(session: Session) -> set[str]:
    """Every queue a job sends its runs to (the queues whose depth /metrics reports)."""
    return set(session.scalars(select(JobRecord.queue).distinct()))


# --- API tokens --------------------------------------------------------------------


def token_by_hash(session: Session, token_hash: str) -> TokenRow | None:
    """The token with this SHA-256 (revoked and expired ones too: the caller decides)."""
    record = session.scalars(
        select(ApiTokenRecord).where(ApiTokenRecord.token_hash == token_hash)
    ).first()
    return token_row(record) if record is not None else None


def find_token(session: Session, name: str) -> TokenRow | None:
    record = session.get(ApiTokenRecord, name)
    return token_row(record) if record is not None else None


def list_tokens(session: Session) -> list[TokenRow]:
    return [token_row(r) for r in session.scalars(select(ApiTokenRecord).order_by("name"))]


def any_token(session: Session) -> bool:
    """Whether a token was ever made (a revoked one counts: the API stays closed)."""
    return session.scalars(select(ApiTokenRecord.name).limit(1)).first() is not None
