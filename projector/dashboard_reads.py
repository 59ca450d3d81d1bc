"""Every read the dashboard makes: plain values out, each bounded by what a page shows.

The dashboard's one read module (the API and the scheduler have theirs). Queries sort
and filter on indexed columns only and page by keys, so a page stays fast over a
million runs (bench/bench_dashboard.py).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.orm import Session

from projector.rows import load_activity, load_runs, worker_row
from projector.run_projection import RunRow
from projector.tables import (
    EventIndexRecord,
    JobDependencyRecord,
    JobRecord,
    RunRecord,
    WorkerRecord,
)
from projector.worker_projection import WorkerRow

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
        RunEventItem(r.type, r.actor, r.occurred_at, r.attempt, r.payload, r.rejected)
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
