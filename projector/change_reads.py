"""What the API's change stream reads: the audit index as the projector committed it,
with the rows its events touched.

``event_index`` and ``projector_checkpoints`` are written in one transaction per batch,
so the checkpoints say how far the index is complete: every offset below a partition's
checkpoint is there, with nothing missing in between. A tail therefore reads each
partition from its cursor up to its checkpoint and never sees a gap.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from projector.tables import (
    EventIndexRecord,
    JobRecord,
    ProjectorCheckpoint,
    RunRecord,
    WorkerRecord,
)

_JOB_SPEC_EVENTS = ("JobCreated", "JobUpdated")


@dataclass(frozen=True, slots=True)
class IndexedEvent:
    """One committed event, with what the read model holds now for its job, run, worker."""

    partition: int
    offset: int
    type: str
    occurred_at: datetime
    actor: str
    job_id: str | None
    run_id: str | None
    attempt: int | None
    payload: dict[str, Any]
    rejected: str | None
    job_name: str | None = None
    job_enabled: bool | None = None  # None: no job row (deleted, or never created)
    run_status: str | None = None
    worker_status: str | None = None


def committed_ends(session: Session) -> dict[int, int]:
    """Per partition, the next offset the projector will apply: the index is complete below."""
    rows = session.execute(select(ProjectorCheckpoint.partition, ProjectorCheckpoint.next_offset))
    return {partition: next_offset for partition, next_offset in rows}


def read_events(
    session: Session, start: Mapping[int, int], ends: Mapping[int, int], limit: int
) -> list[IndexedEvent]:
    """Events of each partition from ``start`` (0 if absent) below ``ends``, at most
    ``limit`` per partition: in offset order within a partition, and interleaved by
    ``occurred_at`` across partitions (any interleaving keeps positions exact; this one
    reads in time order)."""
    per_partition = [
        _partition_events(session, partition, start.get(partition, 0), end, limit)
        for partition, end in sorted(ends.items())
        if start.get(partition, 0) < end
    ]
    merged = heapq.merge(*per_partition, key=lambda event: event.occurred_at)
    return _with_rows(session, list(merged))


def _partition_events(
    session: Session, partition: int, begin: int, end: int, limit: int
) -> list[IndexedEvent]:
    index = EventIndexRecord
    query = (
        select(
            index.partition,
            index.offset,
            index.type,
            index.occurred_at,
            index.actor,
            index.job_id,
            index.run_id,
            index.attempt,
            index.payload,
            index.rejected,
        )
        .where(and_(index.partition == partition, index.offset >= begin, index.offset < end))
        .order_by(index.offset)
        .limit(limit)
    )
    return [IndexedEvent(*row) for row in session.execute(query)]


def _with_rows(session: Session, events: list[IndexedEvent]) -> list[IndexedEvent]:
    """The events with their job's name and status, their run's and worker's status."""
    job_ids = {e.job_id for e in events if e.job_id is not None}
    jobs = _jobs(session, job_ids)
    names = {**_names_of_gone_jobs(session, job_ids - jobs.keys()), **_names(jobs)}
    runs = _run_statuses(session, {e.run_id for e in events if e.run_id is not None})
    workers = _worker_statuses(session, {w for e in events if (w := _worker_id(e)) is not None})
    return [
        dataclasses.replace(
            event,
            job_name=names.get(event.job_id or ""),
            job_enabled=jobs[event.job_id][1] if event.job_id in jobs else None,
            run_status=runs.get(event.run_id or ""),
            worker_status=workers.get(_worker_id(event) or ""),
        )
        for event in events
    ]


def _worker_id(event: IndexedEvent) -> str | None:
    worker = event.payload.get("worker_id") if event.type.startswith("Worker") else None
    return worker if isinstance(worker, str) else None


def _jobs(session: Session, ids: Collection[str]) -> dict[str, tuple[str, bool]]:
    if not ids:
        return {}
    rows = session.execute(
        select(JobRecord.id, JobRecord.name, JobRecord.enabled).where(JobRecord.id.in_(ids))
    )
    return {job_id: (name, enabled) for job_id, name, enabled in rows}


def _names(jobs: Mapping[str, tuple[str, bool]]) -> dict[str, str]:
    return {job_id: name for job_id, (name, _enabled) in jobs.items()}


def _names_of_gone_jobs(session: Session, ids: Collection[str]) -> dict[str, str]:
    """The last name a deleted job had, from its history (its row is gone)."""
    if not ids:
        return {}
    index = EventIndexRecord
    rows = session.execute(
        select(index.job_id, index.payload)
        .where(index.job_id.in_(ids), index.type.in_(_JOB_SPEC_EVENTS), index.rejected.is_(None))
        .order_by(index.partition, index.offset)
    )
    names: dict[str, str] = {}
    for job_id, payload in rows:
        name = (payload.get("spec") or {}).get("name")
        if isinstance(job_id, str) and isinstance(name, str):
            names[job_id] = name  # later events overwrite earlier ones
    return names


def _run_statuses(session: Session, ids: Collection[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = session.execute(select(RunRecord.id, RunRecord.status).where(RunRecord.id.in_(ids)))
    return {run_id: status for run_id, status in rows}


def _worker_statuses(session: Session, ids: Collection[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = session.execute(
        select(WorkerRecord.id, WorkerRecord.status).where(WorkerRecord.id.in_(ids))
    )
    return {worker_id: status for worker_id, status in rows}
