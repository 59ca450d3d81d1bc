"""Loading rows into the projection's plain dataclasses and writing them back.

Every table is written the same way: the rows a batch touched and that still exist are
upserted in place (``INSERT ... ON CONFLICT DO UPDATE``: one statement per table, new
and existing rows alike) and the ones that are gone deleted. Dependent rows (a run's
attempts, a job's tags and dependencies) are written only where they changed.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, tuple_
from sqlalchemy.orm import Session

from events.disclosure import public_payload
from events.model import spec_from_dict
from projector.activity import JobActivity
from projector.bulk import insert_rows, upsert_rows
from projector.fold import Changes, evolve
from projector.job_projection import JobRow
from projector.keyed_reads import KeyedRead
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
_JOB_COLUMNS = tuple(f.name for f in dataclasses.fields(JobRow))


@functools.cache
def rows_by_key(
    model: type[Any],
    columns: tuple[str, ...],
    key: str,
    order_by: str | None = None,
    *,
    lock: bool = False,
) -> KeyedRead:
    """``columns`` of the rows of ``model``'s table whose ``key`` is one of the keys given
    to ``fetch`` (see ``projector.keyed_reads``)."""
    return KeyedRead(core_table(model), columns, key, order_by, lock)


# --- jobs --------------------------------------------------------------------------


def load_jobs(session: Session, ids: Collection[str]) -> dict[str, JobRow]:
    if not ids:
        return {}
    query = rows_by_key(JobRecord, _JOB_COLUMNS, "id")
    # JobRow's fields in order: id, spec, then the other columns.
    return {
        id_: JobRow(id_, spec_from_dict(spec), *rest)
        for id_, spec, *rest in query.fetch(session, ids)
    }


def write_jobs(session: Session, changes: Changes[JobRow]) -> None:
    if changes.gone:
        session.execute(delete(JobTagRecord).where(JobTagRecord.job_id.in_(changes.gone)))
        session.execute(
            delete(JobDependencyRecord).where(JobDependencyRecord.job_id.in_(changes.gone))
        )
        session.execute(delete(JobRecord).where(JobRecord.id.in_(changes.gone)))
    if not changes.live:
        return
    values = [job_record_values(row) for row in changes.live]
    upsert_rows(session, core_table(JobRecord), values, "replace")
    _write_members(session, JobTagRecord, "tag", changes, lambda r: r.spec.tags)
    _write_members(
        session, JobDependencyRecord, "depends_on_id", changes, lambda r: r.spec.depends_on
    )


def _write_members(
    session: Session,
    model: type[JobTagRecord] | type[JobDependencyRecord],
    column: str,
    changes: Changes[JobRow],
    members: Callable[[JobRow], Sequence[str]],
) -> None:
    """A job's set of tags (or dependencies): what left is deleted, what came inserted."""
    added: list[dict[str, str]] = []
    removed: list[tuple[str, str]] = []
    for row in changes.live:
        before = changes.before.get(row.id)
        old = set(members(before)) if before is not None else set()
        new = set(members(row))
        added += [{"job_id": row.id, column: m} for m in new - old]
        removed += [(row.id, m) for m in old - new]
    table = core_table(model)
    if removed:
        pairs = tuple_(table.c.job_id, table.c[column]).in_(removed)
        session.execute(delete(table).where(pairs))
    if added:
        insert_rows(session, table, added)


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
    # Core selects into plain tuples: ORM instances cost more to build than the rows.
    runs = rows_by_key(RunRecord, _RUN_COLUMNS, "id").fetch(session, ids)
    attempts: dict[str, list[AttemptRow]] = {}
    query = rows_by_key(RunAttemptRecord, ("run_id", *_ATTEMPT_COLUMNS), "run_id", "attempt")
    for run_id, *values in query.fetch(session, ids):
        attempts.setdefault(run_id, []).append(AttemptRow(*values))
    # RunRow's fields are _RUN_COLUMNS in order, then its attempts.
    return {v[0]: RunRow(*v, tuple(attempts.get(v[0], ()))) for v in runs}  # type: ignore[call-arg]


def run_columns() -> list[Any]:
    """The columns of a run row, for Core selects that ``run_from_values`` turns into rows."""
    table = core_table(RunRecord)
    return [table.c[n] for n in _RUN_COLUMNS]


def run_from_values(values: Sequence[Any]) -> RunRow:
    """A run (without its attempts) from the values of ``run_columns``, in order."""
    return RunRow(*values, ())  # type: ignore[call-arg]


def run_row(record: RunRecord, attempts: Sequence[AttemptRow]) -> RunRow:
    values = {name: getattr(record, name) for name in _RUN_COLUMNS}
    return RunRow(**values, attempts=tuple(attempts))


def attempt_row(record: RunAttemptRecord) -> AttemptRow:
    return AttemptRow(**{name: getattr(record, name) for name in _ATTEMPT_COLUMNS})


def write_runs(
    session: Session,
    changes: Changes[RunRow],
    positions: Mapping[str, tuple[int, int]] | None = None,
) -> None:
    """Write the batch's run rows; ``positions``: run id -> (partition, offset) of the
    last event applied to it, kept as the row's change position (migration 0009)."""
    if changes.gone:
        gone = changes.gone
        session.execute(delete(RunAttemptRecord).where(RunAttemptRecord.run_id.in_(gone)))
        session.execute(delete(RunRecord).where(RunRecord.id.in_(gone)))
    if not changes.live:
        return
    stamps = positions or {}
    values = [_run_values(r, stamps.get(r.id)) for r in changes.live]
    upsert_rows(session, core_table(RunRecord), values, "replace")
    attempts: list[dict[str, Any]] = []
    dropped: list[tuple[str, int]] = []
    for run in changes.live:
        before = changes.before.get(run.id)
        old = {a.attempt: a for a in before.attempts} if before is not None else {}
        attempts += [
            {"run_id": run.id, **{n: getattr(a, n) for n in _ATTEMPT_COLUMNS}}
            for a in run.attempts
            if old.get(a.attempt) != a  # new or changed (plain values: == is exact)
        ]
        dropped += [(run.id, n) for n in old.keys() - {a.attempt for a in run.attempts}]
    if dropped:
        table = core_table(RunAttemptRecord)
        session.execute(delete(table).where(tuple_(table.c.run_id, table.c.attempt).in_(dropped)))
    upsert_rows(session, core_table(RunAttemptRecord), attempts, "replace")


def _run_values(run: RunRow, position: tuple[int, int] | None) -> dict[str, Any]:
    values = {n: getattr(run, n) for n in _RUN_COLUMNS}
    if position is not None:
        values["change_partition"], values["change_offset"] = position
    return values


# --- job activity and workers ------------------------------------------------------


def load_activity(session: Session, job_ids: Collection[str]) -> dict[str, JobActivity]:
    if not job_ids:
        return {}
    query = rows_by_key(JobActivityRecord, _ACTIVITY_COLUMNS, "job_id")
    return {values[0]: JobActivity(*values) for values in query.fetch(session, job_ids)}


def write_activity(session: Session, changes: Changes[JobActivity]) -> None:
    if changes.gone:
        gone = changes.gone
        session.execute(delete(JobActivityRecord).where(JobActivityRecord.job_id.in_(gone)))
    rows = [{n: getattr(a, n) for n in _ACTIVITY_COLUMNS} for a in changes.live]
    upsert_rows(session, core_table(JobActivityRecord), rows, "replace")


def load_workers(session: Session, ids: Collection[str]) -> dict[str, WorkerRow]:
    if not ids:
        return {}
    query = rows_by_key(WorkerRecord, _WORKER_COLUMNS, "id")
    loaded = (WorkerRow(*values) for values in query.fetch(session, ids))
    return {row.id: evolve(row, tags=tuple(row.tags)) for row in loaded}  # JSON list -> tuple


def worker_row(record: WorkerRecord) -> WorkerRow:
    values = {n: getattr(record, n) for n in _WORKER_COLUMNS}
    return WorkerRow(**{**values, "tags": tuple(record.tags)})


def write_workers(session: Session, changes: Changes[WorkerRow]) -> None:
    if changes.gone:
        session.execute(delete(WorkerRecord).where(WorkerRecord.id.in_(changes.gone)))
    rows = [{n: getattr(w, n) for n in _WORKER_COLUMNS} for w in changes.live]
    upsert_rows(session, core_table(WorkerRecord), rows, "replace")


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
