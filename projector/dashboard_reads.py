"""Every read the dashboard makes: plain values out, each bounded by what a page shows.

The dashboard's one read module (the API and the scheduler have theirs). Queries sort
and filter on indexed columns only and page by keys, so a page stays fast over a
million runs (bench/bench_dashboard.py).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal, TypeAlias, TypeVar, TypeVarTuple

from sqlalchemy import ColumnElement, Select, case, func, or_, select, tuple_, union_all
from sqlalchemy.orm import Session

from projector.job_projection import JobRow
from projector.rows import job_row, load_activity, load_runs, worker_row
from projector.run_projection import RunRow
from projector.tables import (
    EventIndexRecord,
    JobActivityRecord,
    JobDependencyRecord,
    JobRecord,
    JobTagRecord,
    RunRecord,
    WorkerRecord,
)
from projector.worker_projection import WorkerRow

_Ts = TypeVarTuple("_Ts")
_T = TypeVar("_T")


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
    actor_role: str | None = None  # the API caller's role (schema v3), else None


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


@dataclass(frozen=True, slots=True)
class SuccessCount:
    completed: int
    finished: int  # completed + failed


def success_counts(
    session: Session, job_ids: Collection[str], last_n: int
) -> dict[str, SuccessCount]:
    """Each job's completed and finished runs among its newest ``last_n`` finished runs.

    The overview's success rates: counted by the database in one statement (the arms of
    ``finished_samples``), so no run row is built in Python (at a page of 50 jobs that
    halved the job grid's time).
    """
    ids = sorted(set(job_ids))
    if not ids:
        return {}
    if len(ids) > MAX_SAMPLED_JOBS:
        raise ValueError(f"at most {MAX_SAMPLED_JOBS} jobs at a time, got {len(ids)}")
    arms = [
        select(RunRecord.job_id, RunRecord.status)
        .where(RunRecord.job_id == job_id, RunRecord.status.in_(FINISHED))
        .order_by(RunRecord.requested_at.desc())
        .limit(last_n)
        .subquery()
        for job_id in ids
    ]
    union = union_all(*(select(*arm.c) for arm in arms)).subquery()
    completed = func.sum(case((union.c.status == "completed", 1), else_=0))
    query = select(union.c.job_id, completed, func.count()).group_by(union.c.job_id)
    counts = {job_id: SuccessCount(0, 0) for job_id in ids}
    for job_id, done, finished in session.execute(query):
        counts[job_id] = SuccessCount(int(done or 0), int(finished))
    return counts


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
        record.actor_role,
    ).where(record.job_id == job_id)
    if before is not None:
        query = query.where(tuple_(record.partition, record.offset) < tuple_(*before))
    query = query.order_by(record.partition.desc(), record.offset.desc()).limit(limit)
    return [HistoryEntry(*row) for row in session.execute(query)]


# --- runs, run, workers, DAG ---

RUNS_PAGE_MAX: Final = 500
RUNS_TOTAL_CAP: Final = 10_000  # past this the runs page says "10,000+"
RUN_EVENTS_MAX: Final = 500
WORKERS_MAX: Final = 500
DAG_JOBS_MAX: Final = 500
PIPELINE_RUNS_MAX: Final = 1_000
RECENT_RUNS_SCANNED: Final = 5_000  # how far back the pipeline picker looks


@dataclass(frozen=True, slots=True)
class RunFilters:
    """The runs page's filters; each is an equality or range on an indexed column
    (``trigger`` excepted: it narrows rows the other conditions already bound)."""

    status: str | None = None
    job_id: str | None = None
    trigger: str | None = None
    since: datetime | None = None  # requested at or after
    until: datetime | None = None  # requested before


@dataclass(frozen=True, slots=True)
class RunKey:
    """Where a page of runs ended: the next page starts strictly after it (newest first)."""

    requested_at: datetime
    id: str


@dataclass(frozen=True, slots=True)
class RunListItem:
    id: str
    job_id: str
    job_name: str | None
    status: str
    trigger: str
    attempt: int
    duration_ms: int | None
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def key(self) -> RunKey:
        return RunKey(self.requested_at, self.id)


@dataclass(frozen=True, slots=True)
class RunTotal:
    count: int
    capped: bool  # more than ``count`` runs match: the page says "count+"


def job_id_by_name(session: Session, ref: str) -> str | None:
    """The id of the job named (or with the id) ``ref``; the name is indexed."""
    found = session.scalar(select(JobRecord.id).where(JobRecord.name == ref).limit(1))
    return found or session.scalar(select(JobRecord.id).where(JobRecord.id == ref))


def runs_page(
    session: Session,
    filters: RunFilters,
    limit: int,
    after: RunKey | None = None,
    skip: int = 0,
) -> list[RunListItem]:
    """Runs newest first by (requested_at, id), starting after ``after`` and then ``skip``
    rows: pages follow their predecessor's last key, so a deep page costs what the first
    does; ``skip`` is the bounded fallback from the nearest key a caller knows."""
    query = _run_filtered(select(RunRecord), filters)
    if after is not None:
        # The first condition is a range on the index; the second settles equal times.
        query = query.where(
            RunRecord.requested_at <= after.requested_at,
            or_(RunRecord.requested_at < after.requested_at, RunRecord.id < after.id),
        )
    query = query.order_by(RunRecord.requested_at.desc(), RunRecord.id.desc())
    records = list(session.scalars(query.offset(skip).limit(min(limit, RUNS_PAGE_MAX))))
    names = _job_names(session, {record.job_id for record in records})
    return [_run_item(record, names.get(record.job_id)) for record in records]


def runs_total(session: Session, filters: RunFilters, cap: int = RUNS_TOTAL_CAP) -> RunTotal:
    """How many runs match, counting at most ``cap + 1``: a count(*) over a million rows
    on every page turn costs more than the page, and nobody pages to row 10,001 by hand
    (the grid still goes on past it: a short page tells it where the end is)."""
    matching = _run_filtered(select(RunRecord.id), filters).limit(cap + 1).subquery()
    count = session.scalar(select(func.count()).select_from(matching)) or 0
    return RunTotal(min(count, cap), capped=count > cap)


def _run_filtered(query: Select[_T], filters: RunFilters) -> Select[_T]:
    conditions = [
        RunRecord.status == filters.status if filters.status else None,
        RunRecord.job_id == filters.job_id if filters.job_id else None,
        RunRecord.trigger == filters.trigger if filters.trigger else None,
        RunRecord.requested_at >= filters.since if filters.since else None,
        RunRecord.requested_at < filters.until if filters.until else None,
    ]
    return query.where(*(condition for condition in conditions if condition is not None))


def _run_item(record: RunRecord, job_name: str | None) -> RunListItem:
    return RunListItem(
        id=record.id,
        job_id=record.job_id,
        job_name=job_name,
        status=record.status,
        trigger=record.trigger,
        attempt=record.attempt,
        duration_ms=record.duration_ms,
        requested_at=record.requested_at,
        started_at=record.started_at,
        finished_at=record.finished_at,
    )


def _job_names(session: Session, job_ids: Collection[str]) -> dict[str, str]:
    if not job_ids:
        return {}
    query = select(JobRecord.id, JobRecord.name).where(JobRecord.id.in_(job_ids))
    return {job_id: name for job_id, name in session.execute(query)}


@dataclass(frozen=True, slots=True)
class RunEventItem:
    type: str
    actor: str
    occurred_at: datetime
    attempt: int | None
    payload: dict[str, Any]
    rejected: str | None  # why the projection did not apply it, else None
    actor_role: str | None = None  # the API caller's role (schema v3), else None


@dataclass(frozen=True, slots=True)
class RunDetail:
    run: RunRow  # with every attempt
    job_name: str | None
    events: tuple[RunEventItem, ...]  # oldest first, at most RUN_EVENTS_MAX


def run_detail(session: Session, run_id: str) -> RunDetail | None:
    """The run, its attempts, its job's name and its events; None if there is no run."""
    run = load_runs(session, [run_id]).get(run_id)
    if run is None:
        return None
    query = (
        select(EventIndexRecord)
        .where(EventIndexRecord.run_id == run_id)
        .order_by(EventIndexRecord.partition, EventIndexRecord.offset)  # one run, one partition
        .limit(RUN_EVENTS_MAX)
    )
    events = tuple(
        RunEventItem(r.type, r.actor, r.occurred_at, r.attempt, r.payload, r.rejected, r.actor_role)
        for r in session.scalars(query)
    )
    return RunDetail(run, _job_names(session, [run.job_id]).get(run.job_id), events)


@dataclass(frozen=True, slots=True)
class WorkerItem:
    worker: WorkerRow
    active_runs: int

    @property
    def utilisation(self) -> float:
        return self.active_runs / self.worker.concurrency if self.worker.concurrency else 0.0


def workers_overview(session: Session) -> list[WorkerItem]:
    """Workers the log knows (active first, then the newest), with their running runs."""
    active_first = case((WorkerRecord.status == "active", 0), else_=1)
    query = (
        select(WorkerRecord)
        .order_by(active_first, WorkerRecord.registered_at.desc())
        .limit(WORKERS_MAX)
    )
    workers = [worker_row(record) for record in session.scalars(query)]
    running = (
        select(RunRecord.worker_id, func.count())
        .where(RunRecord.status == "running", RunRecord.worker_id.is_not(None))
        .group_by(RunRecord.worker_id)
    )
    counts = {worker_id: count for worker_id, count in session.execute(running)}
    return [WorkerItem(worker, counts.get(worker.id, 0)) for worker in workers]


@dataclass(frozen=True, slots=True)
class DagNode:
    job_id: str
    name: str
    status: str | None  # its last run's (or, for a pipeline, that pipeline's run's) status


@dataclass(frozen=True, slots=True)
class DagGraph:
    nodes: tuple[DagNode, ...]  # jobs with a dependency or a dependent
    edges: tuple[tuple[str, str], ...]  # (upstream job id, dependent job id)
    unconnected: int  # jobs outside the graph


def dag_graph(session: Session, correlation_id: str | None = None) -> DagGraph:
    """The dependency graph; node statuses are each job's last run's, or with
    ``correlation_id`` the status of that pipeline's run of the job (None: not reached)."""
    edges = tuple(
        (upstream, dependent)
        for dependent, upstream in session.execute(
            select(JobDependencyRecord.job_id, JobDependencyRecord.depends_on_id)
        )
    )
    ids = sorted({job_id for edge in edges for job_id in edge})[:DAG_JOBS_MAX]
    names = _job_names(session, ids)
    statuses = (
        _pipeline_statuses(session, correlation_id)
        if correlation_id
        else {job_id: a.last_run_status for job_id, a in load_activity(session, ids).items()}
    )
    nodes = tuple(DagNode(i, names[i], statuses.get(i)) for i in ids if i in names)
    known = {node.job_id for node in nodes}
    kept = tuple(edge for edge in edges if edge[0] in known and edge[1] in known)
    jobs = session.scalar(select(func.count()).select_from(JobRecord)) or 0
    return DagGraph(nodes, kept, max(jobs - len(nodes), 0))


def _pipeline_statuses(session: Session, correlation_id: str) -> dict[str, str]:
    """Job id -> the status of the pipeline's latest run of it."""
    query = (
        select(RunRecord.job_id, RunRecord.status)
        .where(RunRecord.correlation_id == correlation_id)
        .order_by(RunRecord.requested_at)
        .limit(PIPELINE_RUNS_MAX)
    )
    return {job_id: status for job_id, status in session.execute(query)}


def recent_pipelines(session: Session, limit: int = 20) -> list[str]:
    """Correlation ids of recent pipeline runs (those that triggered a dependent), newest
    first, looking only at the newest RECENT_RUNS_SCANNED runs: the cost stays bounded."""
    recent = (
        select(RunRecord.correlation_id, RunRecord.trigger, RunRecord.requested_at)
        .order_by(RunRecord.requested_at.desc())
        .limit(RECENT_RUNS_SCANNED)
        .subquery()
    )
    newest = func.max(recent.c.requested_at)
    query = (
        select(recent.c.correlation_id)
        .where(recent.c.trigger == "dependency", recent.c.correlation_id.is_not(None))
        .group_by(recent.c.correlation_id)
        .order_by(newest.desc())
        .limit(limit)
    )
    return [str(value) for value in session.scalars(query)]
