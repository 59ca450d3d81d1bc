"""Read-model queries used by the API and the dashboard. Plain values out, no ORM rows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from projector.job_projection import JobRow
from projector.rows import job_row
from projector.tables import EventIndexRecord, JobDependencyRecord, JobRecord, JobTagRecord

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class JobFilter:
    tag: str | None = None
    type: str | None = None
    schedule_type: str | None = None
    enabled: bool | None = None
    q: str | None = None  # case-insensitive substring of the name
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class EventEntry:
    partition: int
    offset: int
    event_id: str
    type: str
    job_id: str | None
    run_id: str | None
    attempt: int | None
    occurred_at: datetime
    actor: str
    correlation_id: str | None
    causation_id: str | None
    payload: dict[str, Any]
    rejected: str | None


def find_job(session: Session, id_or_name: str) -> JobRow | None:
    query = select(JobRecord).where(or_(JobRecord.id == id_or_name, JobRecord.name == id_or_name))
    # An id wins over a name; of two jobs with one name (a lost race), the older wins.
    records = sorted(session.scalars(query), key=lambda r: (r.id != id_or_name, r.created_at))
    return job_row(records[0]) if records else None


def list_jobs(session: Session, criteria: JobFilter) -> tuple[list[JobRow], int]:
    """One page of jobs matching ``criteria``, ordered by name, and the total count."""
    query = _filtered(select(JobRecord), criteria)
    total = session.scalar(_filtered(select(func.count()).select_from(JobRecord), criteria))
    page = query.order_by(JobRecord.name).limit(criteria.limit).offset(criteria.offset)
    return [job_row(record) for record in session.scalars(page)], total or 0


def _filtered(query: Select[_T], criteria: JobFilter) -> Select[_T]:
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
    query = select(JobRecord.id, JobRecord.name).where(JobRecord.id.in_(wanted))
    return dict(session.execute(query).all())


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
    return [entry(record) for record in session.scalars(query)]


def entry(record: EventIndexRecord) -> EventEntry:
    return EventEntry(
        partition=record.partition,
        offset=record.offset,
        event_id=record.event_id,
        type=record.type,
        job_id=record.job_id,
        run_id=record.run_id,
        attempt=record.attempt,
        occurred_at=record.occurred_at,
        actor=record.actor,
        correlation_id=record.correlation_id,
        causation_id=record.causation_id,
        payload=record.payload,
        rejected=record.rejected,
    )


def count_unprojectable(session: Session) -> int:
    """Events the projector recorded as impossible to apply (``rejected: "unprojectable: …"``)."""
    query = select(func.count()).where(EventIndexRecord.rejected.like("unprojectable:%"))
    return session.scalar(query) or 0
