"""Every read the dashboard makes: plain values out, each bounded by what a page shows.

The dashboard's one read module (the API and the scheduler have theirs). Queries sort
and filter on indexed columns only and page by keys, so a page stays fast over a
million runs (bench/bench_dashboard.py).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal, TypeAlias, TypeVarTuple

from sqlalchemy import ColumnElement, Select, func, or_, select, tuple_, union_all
from sqlalchemy.orm import Session

from projector.job_projection import JobRow
from projector.rows import job_row
from projector.tables import (
    EventIndexRecord,
    JobActivityRecord,
    JobDependencyRecord,
    JobRecord,
    JobTagRecord,
    RunRecord,
    WorkerRecord,
)

_Ts = TypeVarTuple("_Ts")


@dataclass(frozen=True, slots=True)
class OverviewCounts:
    jobs: int
    running: int
    queued: int
    failed_last_24h: int  # runs that failed for good, finished in the last 24 hours
    dead_letters: int
    workers_alive: int


def overview_counts(session: Session, now: datetime) -> OverviewCounts:
    def count(*where: object) -> int:
        query = select(func.count()).select_from(RunRecord).where(*where)  # type: ignore[arg-type]
        return session.scalar(query) or 0

    alive = select(func.count()).select_from(WorkerRecord).where(WorkerRecord.status == "active")
    return OverviewCounts(
        jobs=session.scalar(select(func.count()).select_from(JobRecord)) or 0,
        running=count(RunRecord.status == "running"),
        queued=count(RunRecord.status == "queued"),
        failed_last_24h=count(
            RunRecord.status == "failed", RunRecord.finished_at >= now - timedelta(hours=24)
        ),
        dead_letters=count(RunRecord.dead_lettered.is_(True)),
        workers_alive=session.scalar(alive) or 0,
    )


# --- jobs: the overview's list and the job page ------------------------------------
# Jobs number in the thousands, not millions: the list pages by offset and counts its
# total; the per-job run reads below are bounded by ``last_n`` per job.

JobSortColumn: TypeAlias = Literal["name", "type", "schedule_type", "status", "last_run_at"]
JOB_SORT_COLUMNS: Final[tuple[JobSortColumn, ...]] = (
    "name",
    "type",
    "schedule_type",
    "status",
    "last_run_at",
)
# Runs that ran to an outcome: what a success rate and durations are taken over.
FINISHED: Final = ("completed", "failed")
MAX_SAMPLED_JOBS: Final = 200  # arms of one UNION ALL (SQLite allows 500)


@dataclass(frozen=True, slots=True)
class JobFilters:
    status: Literal["active", "paused"] | None = None
    tag: str | None = None
    type: str | None = None
    schedule_type: str | None = None
    q: str | None = None  # case-insensitive substring of the name


@dataclass(frozen=True, slots=True)
class JobSort:
    column: JobSortColumn = "name"
    descending: bool = False


@dataclass(frozen=True, slots=True)
class JobListItem:
    id: str
    name: str
    type: str
    schedule: str | None
    schedule_type: str
    timezone: str
    enabled: bool
    last_fire_at: datetime | None
    last_run_id: str | None
    last_run_status: str | None
    last_run_at: datetime | None


@dataclass(frozen=True, slots=True)
class JobPage:
    items: list[JobListItem]
    total: int


@dataclass(frozen=True, slots=True)
class RunSample:
    """A finished run, as much as a success rate and durations need."""

    status: str
    requested_at: datetime
    finished_at: datetime | None
    duration_ms: int | None


@dataclass(frozen=True, slots=True)
class JobDetail:
    job: JobRow
    last_fire_at: datetime | None
    last_run_status: str | None
    depends_on: list[str]  # names (the id of a vanished job)
    dependents: list[str]  # names of the jobs that depend on this one


@dataclass(frozen=True, slots=True)
class RunSummary:
    id: str
    status: str
    trigger: str
    attempt: int
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    partition: int
    offset: int
    type: str
    actor: str
    occurred_at: datetime
    run_id: str | None
    attempt: int | None
    payload: dict[str, Any]
    rejected: str | None


def job_page(
    session: Session, filters: JobFilters, sort: JobSort, offset: int, limit: int
) -> JobPage:
    """One page of the job list and how many jobs match."""
    columns = (
        JobRecord,
        JobActivityRecord.last_fire_at,
        JobActivityRecord.last_run_id,
        JobActivityRecord.last_run_status,
        JobActivityRecord.last_run_at,
    )
    query = _job_filters(select(*columns), filters).outerjoin(
        JobActivityRecord, JobActivityRecord.job_id == JobRecord.id
    )
    query = query.order_by(*_job_order(sort), JobRecord.name, JobRecord.id)
    rows = session.execute(query.offset(offset).limit(limit)).all()
    total = session.scalar(_job_filters(select(func.count()).select_from(JobRecord), filters))
    return JobPage([_list_item(*row) for row in rows], total or 0)


def _job_filters(query: Select[*_Ts], filters: JobFilters) -> Select[*_Ts]:
    if filters.status is not None:
        query = query.where(JobRecord.enabled.is_(filters.status == "active"))
    if filters.tag:
        tagged = select(JobTagRecord.job_id).where(JobTagRecord.tag == filters.tag)
        query = query.where(JobRecord.id.in_(tagged))
    if filters.type:
        query = query.where(JobRecord.type == filters.type)
    if filters.schedule_type:
        query = query.where(JobRecord.schedule_type == filters.schedule_type)
    if filters.q:
        name = func.lower(JobRecord.name)
        query = query.where(name.contains(filters.q.lower(), autoescape=True))
    return query


def _job_order(sort: JobSort) -> list[ColumnElement[Any]]:
    column: Any = {
        "name": JobRecord.name,
        "type": JobRecord.type,
        "schedule_type": JobRecord.schedule_type,
        # "active" sorts before "paused", as the status text does.
        "status": ~JobRecord.enabled,
        "last_run_at": JobActivityRecord.last_run_at,
    }[sort.column]
    ordered = column.desc() if sort.descending else column.asc()
    return [ordered.nulls_last()]  # never run: at the end either way, on both databases


def _list_item(record: JobRecord, *activity: Any) -> JobListItem:
    last_fire_at, last_run_id, last_run_status, last_run_at = activity
    return JobListItem(
        id=record.id,
        name=record.name,
        type=record.type,
        schedule=record.schedule,
        schedule_type=record.schedule_type,
        timezone=record.timezone,
        enabled=record.enabled,
        last_fire_at=last_fire_at,
        last_run_id=last_run_id,
        last_run_status=last_run_status,
        last_run_at=last_run_at,
    )


def job_tags(session: Session, limit: int = 500) -> list[str]:
    """The tags in use, for the overview's tag filter."""
    query = select(JobTagRecord.tag).distinct().order_by(JobTagRecord.tag).limit(limit)
    return list(session.scalars(query))


def finished_samples(
    session: Session, job_ids: Collection[str], last_n: int
) -> dict[str, list[RunSample]]:
    """Each job's newest ``last_n`` finished runs, newest first, in one statement.

    One ``UNION ALL`` arm per job, each a ``LIMIT`` walk of the job's newest runs
    (``ix_runs_job_requested``), so a page costs at most ``len(job_ids) * last_n`` rows
    however many runs the jobs have.
    """
    ids = sorted(set(job_ids))
    if not ids:
        return {}
    if len(ids) > MAX_SAMPLED_JOBS:
        raise ValueError(f"at most {MAX_SAMPLED_JOBS} jobs at a time, got {len(ids)}")
    columns = (
        RunRecord.job_id,
        RunRecord.status,
        RunRecord.requested_at,
        RunRecord.finished_at,
        RunRecord.duration_ms,
    )
    arms = [
        select(*columns)
        .where(RunRecord.job_id == job_id, RunRecord.status.in_(FINISHED))
        .order_by(RunRecord.requested_at.desc())
        .limit(last_n)
        .subquery()
        for job_id in ids
    ]
    union = union_all(*(select(*arm.c) for arm in arms)).subquery()
    query = select(union).order_by(union.c.job_id, union.c.requested_at.desc())
    samples: dict[str, list[RunSample]] = {job_id: [] for job_id in ids}
    for job_id, status, requested_at, finished_at, duration_ms in session.execute(query):
        samples[job_id].append(RunSample(status, requested_at, finished_at, duration_ms))
    return samples


def job_detail(session: Session, ref: str) -> JobDetail | None:
    """The job named ``ref`` (or with that id), with what its page shows around it."""
    found = session.scalars(
        select(JobRecord).where(or_(JobRecord.name == ref, JobRecord.id == ref))
    ).all()
    if not found:
        return None
    # A name wins over an id; of two jobs with one name (a lost race), the older wins.
    record = min(found, key=lambda r: (r.name != ref, r.created_at))
    job = job_row(record)
    activity = session.get(JobActivityRecord, job.id)
    names = dict(
        session.execute(
            select(JobRecord.id, JobRecord.name).where(JobRecord.id.in_(job.spec.depends_on))
        ).all()
    )
    dependents = select(JobRecord.name).join(
        JobDependencyRecord, JobDependencyRecord.job_id == JobRecord.id
    )
    dependents = dependents.where(JobDependencyRecord.depends_on_id == job.id)
    return JobDetail(
        job=job,
        last_fire_at=activity.last_fire_at if activity else None,
        last_run_status=activity.last_run_status if activity else None,
        depends_on=[names.get(dep, dep) for dep in job.spec.depends_on],
        dependents=list(session.scalars(dependents.order_by(JobRecord.name))),
    )


def recent_runs(session: Session, job_id: str, limit: int) -> list[RunSummary]:
    """The job's newest runs, newest first (``ix_runs_job_requested``)."""
    query = (
        select(
            RunRecord.id,
            RunRecord.status,
            RunRecord.trigger,
            RunRecord.attempt,
            RunRecord.requested_at,
            RunRecord.started_at,
            RunRecord.finished_at,
            RunRecord.duration_ms,
        )
        .where(RunRecord.job_id == job_id)
        .order_by(RunRecord.requested_at.desc(), RunRecord.id.desc())
        .limit(limit)
    )
    return [RunSummary(*row) for row in session.execute(query)]


def job_history(
    session: Session, job_id: str, limit: int, before: tuple[int, int] | None = None
) -> list[HistoryEntry]:
    """The job's events (its runs' too), newest first, ``limit`` at a time: the next
    page starts ``before`` the last one's (partition, offset) (``ix_event_index_job_offset``)."""
    record = EventIndexRecord
    query = select(
        record.partition,
        record.offset,
        record.type,
        record.actor,
        record.occurred_at,
        record.run_id,
        record.attempt,
        record.payload,
        record.rejected,
    ).where(record.job_id == job_id)
    if before is not None:
        query = query.where(tuple_(record.partition, record.offset) < tuple_(*before))
    query = query.order_by(record.partition.desc(), record.offset.desc()).limit(limit)
    return [HistoryEntry(*row) for row in session.execute(query)]
