"""Loading rows into the projection's plain dataclasses and writing them back.

Every table is written the same way: the rows a batch touched are deleted and the live
ones inserted again (COPY on PostgreSQL, else an executemany), which is simpler than
diffing and one statement per table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from events.disclosure import public_payload
from events.model import spec_from_dict
from projector.activity import JobActivity
from projector.bulk import insert_rows
from projector.job_projection import JobRow
from projector.run_projection import AttemptRow, RunRow
from projector.tables import (
    EventIndexRecord,
    JobActivityRecord,
    JobDependencyRecord,
    JobRecord,
    JobTagRecord,
    RunAttemptRecord,
    RunRecord,
    WorkerRecord,
    core_table,
)
from projector.worker_projection import WorkerRow
from timing.schedules import parse_schedule

_RUN_COLUMNS = tuple(f.name for f in dataclasses.fields(RunRow) if f.name != "attempts")
_ATTEMPT_COLUMNS = tuple(f.name for f in dataclasses.fields(AttemptRow))
_ACTIVITY_COLUMNS = tuple(f.name for f in dataclasses.fields(JobActivity))
_WORKER_COLUMNS = tuple(f.name for f in dataclasses.fields(WorkerRow))


# --- jobs --------------------------------------------------------------------------


def load_jobs(session: Session, ids: Collection[str]) -> dict[str, JobRow]:
    if not ids:
        return {}
    records = session.scalars(select(JobRecord).where(JobRecord.id.in_(ids)))
    return {record.id: job_row(record) for record in records}


def replace_jobs(session: Session, existing: Sequence[str], live: Sequence[JobRow]) -> None:
    if existing:
        session.execute(delete(JobTagRecord).where(JobTagRecord.job_id.in_(existing)))
        session.execute(delete(JobDependencyRecord).where(JobDependencyRecord.job_id.in_(existing)))
        session.execute(delete(JobRecord).where(JobRecord.id.in_(existing)))
    if not live:
        return
    insert_rows(session, core_table(JobRecord), [job_record_values(row) for row in live])
    tags = [{"job_id": r.id, "tag": tag} for r in live for tag in set(r.spec.tags)]
    deps = [{"job_id": r.id, "depends_on_id": d} for r in live for d in set(r.spec.depends_on)]
    if tags:
        insert_rows(session, core_table(JobTagRecord), tags)
    if deps:
        insert_rows(session, core_table(JobDependencyRecord), deps)


def job_row(record: JobRecord) -> JobRow:
    return JobRow(
        id=record.id,
        spec=spec_from_dict(record.spec),
        created_at=record.created_at,
        updated_at=record.updated_at,
        version=record.version,
        rescheduled_at=record.rescheduled_at,
        paused_reason=record.paused_reason,
    )


def job_record_values(row: JobRow) -> dict[str, Any]:
    spec = row.spec
    return {
        "id": row.id,
        "name": spec.name,
        "type": spec.type,
        "schedule": spec.schedule,
        "schedule_type": schedule_type(spec.schedule, spec.timezone),
        "timezone": spec.timezone,
        "queue": spec.queue,
        "priority": spec.priority,
        "enabled": spec.enabled,
        "spec": spec,  # serialised by the engine's orjson
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "version": row.version,
        "rescheduled_at": row.rescheduled_at,
        "paused_reason": row.paused_reason,
    }


def schedule_type(expression: str | None, timezone: str) -> str:
    try:
        return parse_schedule(expression, timezone).kind
    except ValueError:  # validated at the API; only a future syntax could land here
        return "unknown"


# --- runs --------------------------------------------------------------------------


def load_runs(session: Session, ids: Collection[str]) -> dict[str, RunRow]:
    if not ids:
        return {}
    # The runs first, then their attempts: under PostgreSQL's READ COMMITTED a commit in
    # between can only make the attempts newer than the run, never older (a run read as
    # completed always comes with its finished attempt).
    runs = session.scalars(select(RunRecord).where(RunRecord.id.in_(ids))).all()
    attempts: dict[str, list[AttemptRow]] = {}
    query = (
        select(RunAttemptRecord)
        .where(RunAttemptRecord.run_id.in_(ids))
        .order_by(RunAttemptRecord.attempt)
    )
    for record in session.scalars(query):
        attempts.setdefault(record.run_id, []).append(attempt_row(record))
    return {record.id: run_row(record, attempts.get(record.id, [])) for record in runs}


def run_row(record: RunRecord, attempts: Sequence[AttemptRow]) -> RunRow:
    values = {name: getattr(record, name) for name in _RUN_COLUMNS}
    return RunRow(**values, attempts=tuple(attempts))


def attempt_row(record: RunAttemptRecord) -> AttemptRow:
    return AttemptRow(**{name: getattr(record, name) for name in _ATTEMPT_COLUMNS})


def replace_runs(
    session: Session,
    existing: Sequence[str],
    live: Sequence[RunRow],
    positions: Mapping[str, tuple[int, int]] | None = None,
) -> None:
    """Write the batch's run rows; ``positions``: run id -> (partition, offset) of the
    last event applied to it, kept as the row's change position (migration 0009)."""
    if existing:
        session.execute(delete(RunAttemptRecord).where(RunAttemptRecord.run_id.in_(existing)))
        session.execute(delete(RunRecord).where(RunRecord.id.in_(existing)))
    if not live:
        return
    stamps = positions or {}
    insert_rows(session, core_table(RunRecord), [_run_values(r, stamps.get(r.id)) for r in live])
    attempts = [
        {"run_id": run.id, **{n: getattr(a, n) for n in _ATTEMPT_COLUMNS}}
        for run in live
        for a in run.attempts
    ]
    if attempts:
        insert_rows(session, core_table(RunAttemptRecord), attempts)


def _run_values(run: RunRow, position: tuple[int, int] | None) -> dict[str, Any]:
    values = {n: getattr(run, n) for n in _RUN_COLUMNS}
    if position is not None:
        values["change_partition"], values["change_offset"] = position
    return values


# --- job activity and workers ------------------------------------------------------


def load_activity(session: Session, job_ids: Collection[str]) -> dict[str, JobActivity]:
    if not job_ids:
        return {}
    records = session.scalars(
        select(JobActivityRecord).where(JobActivityRecord.job_id.in_(job_ids))
    )
    return {r.job_id: JobActivity(**{n: getattr(r, n) for n in _ACTIVITY_COLUMNS}) for r in records}


def replace_activity(
    session: Session, existing: Sequence[str], live: Sequence[JobActivity]
) -> None:
    if existing:
        session.execute(delete(JobActivityRecord).where(JobActivityRecord.job_id.in_(existing)))
    if live:
        rows = [{n: getattr(a, n) for n in _ACTIVITY_COLUMNS} for a in live]
        insert_rows(session, core_table(JobActivityRecord), rows)


def load_workers(session: Session, ids: Collection[str]) -> dict[str, WorkerRow]:
    if not ids:
        return {}
    records = session.scalars(select(WorkerRecord).where(WorkerRecord.id.in_(ids)))
    return {r.id: worker_row(r) for r in records}


def worker_row(record: WorkerRecord) -> WorkerRow:
    values = {n: getattr(record, n) for n in _WORKER_COLUMNS}
    return WorkerRow(**{**values, "tags": tuple(record.tags)})


def replace_workers(session: Session, existing: Sequence[str], live: Sequence[WorkerRow]) -> None:
    if existing:
        session.execute(delete(WorkerRecord).where(WorkerRecord.id.in_(existing)))
    if live:
        rows = [{n: getattr(w, n) for n in _WORKER_COLUMNS} for w in live]
        insert_rows(session, core_table(WorkerRecord), rows)


# --- the audit index of events -----------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
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
    payload: dict[str, Any]  # without secrets (``events.disclosure``)
    rejected: str | None
    actor_role: str | None = None  # the API caller's role (schema v3)
    request_id: str | None = None


def event_entry(record: EventIndexRecord) -> EventEntry:
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
        payload=public_payload(record.type, record.payload),
        rejected=record.rejected,
        actor_role=record.actor_role,
        request_id=record.request_id,
    )
