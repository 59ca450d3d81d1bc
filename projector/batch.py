"""Apply one batch of log records to the read model inside the caller's transaction.

The batch loads the rows its events touch, folds the events over them with the pure
projection functions, then writes the changed rows, the audit index and the new
checkpoints. The caller commits all of it at once: that is the exactly-once step.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Executable, Table, delete, insert, select
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.orm import Session

from events.codec import EventCodec
from events.errors import MalformedEvent
from events.log import LogRecord
from events.model import Event
from events.schedules import parse_schedule
from projector.job_projection import JOB_EVENTS, JobRow, Rejected, apply_job_event
from projector.serialize import spec_from_json
from projector.tables import (
    EventIndexRecord,
    JobDependencyRecord,
    JobRecord,
    JobTagRecord,
    ProjectorCheckpoint,
    core_table,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BatchResult:
    applied: int
    rejected: int
    checkpoints: dict[int, int]  # partition -> next offset


def apply_batch(session: Session, records: Sequence[LogRecord], codec: EventCodec) -> BatchResult:
    """Project ``records`` (in log order per partition) and advance the checkpoints."""
    decoded = [(record, _decode(record, codec)) for record in records]
    jobs = JobBatch.load(session, [event for _, event in decoded if isinstance(event, Event)])
    index_rows: list[dict[str, Any]] = []
    rejected = 0
    for record, event in decoded:
        reason = jobs.apply(event) if isinstance(event, Event) else event
        rejected += reason is not None
        index_rows.append(_index_row(record, event, reason))
    jobs.flush(session)
    if index_rows:
        session.execute(insert(core_table(EventIndexRecord)), index_rows)
    checkpoints = _next_offsets(records)
    write_checkpoints(session, checkpoints)
    return BatchResult(len(records) - rejected, rejected, checkpoints)


def _decode(record: LogRecord, codec: EventCodec) -> Event | str:
    """The event, or why these bytes can never be an event.

    An unknown schema fingerprint is not caught: it means a newer writer, and the
    projector must stop and be upgraded rather than skip events.
    """
    try:
        return codec.decode(record.value)
    except MalformedEvent as e:
        log.error(
            "undecodable record skipped",
            extra={"partition": record.partition, "offset": record.offset, "error": str(e)},
        )
        return f"undecodable: {e}"


def _index_row(record: LogRecord, event: Event | str, rejected: str | None) -> dict[str, Any]:
    if not isinstance(event, Event):
        return {
            "partition": record.partition,
            "offset": record.offset,
            "event_id": f"undecodable-{record.partition}-{record.offset}",
            "type": "Undecodable",
            "job_id": record.key,
            "occurred_at": record.timestamp,
            "actor": "unknown",
            "payload": {},
            "rejected": rejected,
        }
    return {
        "partition": record.partition,
        "offset": record.offset,
        "event_id": event.event_id,
        "type": event.type,
        "job_id": event.job_id,
        "run_id": event.run_id,
        "attempt": event.attempt,
        "occurred_at": event.occurred_at,
        "actor": event.actor,
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id,
        "payload": event.payload,  # serialised by the engine's orjson
        "rejected": rejected,
    }


def _next_offsets(records: Iterable[LogRecord]) -> dict[int, int]:
    offsets: dict[int, int] = {}
    for record in records:
        offsets[record.partition] = max(offsets.get(record.partition, 0), record.offset + 1)
    return offsets


def write_checkpoints(session: Session, checkpoints: dict[int, int]) -> None:
    if not checkpoints:
        return
    now = datetime.now(UTC)  # bookkeeping only; never read by a projection
    rows = [{"partition": p, "next_offset": o, "updated_at": now} for p, o in checkpoints.items()]
    session.execute(upsert(session, core_table(ProjectorCheckpoint), rows, key="partition"))


def upsert(session: Session, table: Table, rows: list[dict[str, Any]], key: str) -> Executable:
    """INSERT ... ON CONFLICT (key) DO UPDATE, in the dialect of the session."""
    dialects = {"sqlite": sqlite_dialect, "postgresql": postgresql_dialect}
    statement = dialects[session.get_bind().dialect.name].insert(table).values(rows)
    changed = {c.name: statement.excluded[c.name] for c in table.c if c.name != key}
    result: Executable = statement.on_conflict_do_update(index_elements=[key], set_=changed)
    return result


def read_checkpoints(session: Session, partitions: Iterable[int] | None = None) -> dict[int, int]:
    query = select(ProjectorCheckpoint.partition, ProjectorCheckpoint.next_offset)
    if partitions is not None:
        query = query.where(ProjectorCheckpoint.partition.in_(list(partitions)))
    return {partition: offset for partition, offset in session.execute(query)}


class JobBatch:
    """The job rows one batch touches, folded in memory and written back once."""

    def __init__(self, loaded: dict[str, JobRow]) -> None:
        self._loaded = set(loaded)
        self._rows: dict[str, JobRow | None] = dict(loaded)
        self._touched: set[str] = set()

    @classmethod
    def load(cls, session: Session, events: Sequence[Event]) -> JobBatch:
        ids = {e.job_id for e in events if isinstance(e.payload, JOB_EVENTS)}
        if not ids:
            return cls({})
        query = select(JobRecord).where(JobRecord.id.in_(ids))
        return cls({record.id: job_row(record) for record in session.scalars(query)})

    def apply(self, event: Event) -> str | None:
        """Fold ``event`` if it is a job event; return why it was rejected, if it was."""
        if not isinstance(event.payload, JOB_EVENTS) or event.job_id is None:
            return None
        job_id = event.job_id
        outcome = apply_job_event(self._rows.get(job_id), event)
        if isinstance(outcome, Rejected):
            return outcome.reason
        self._rows[job_id] = outcome
        self._touched.add(job_id)
        return None

    def flush(self, session: Session) -> None:
        if not self._touched:
            return
        ids = list(self._touched)
        # Replace touched rows wholesale: simpler than diffing, and one statement each.
        if existing := [job_id for job_id in ids if job_id in self._loaded]:
            session.execute(delete(JobTagRecord).where(JobTagRecord.job_id.in_(existing)))
            session.execute(
                delete(JobDependencyRecord).where(JobDependencyRecord.job_id.in_(existing))
            )
            session.execute(delete(JobRecord).where(JobRecord.id.in_(existing)))
        live = [row for job_id in ids if (row := self._rows[job_id]) is not None]
        if not live:
            return
        session.execute(insert(core_table(JobRecord)), [job_record_values(row) for row in live])
        tags = [{"job_id": r.id, "tag": tag} for r in live for tag in set(r.spec.tags)]
        deps = [{"job_id": r.id, "depends_on_id": d} for r in live for d in set(r.spec.depends_on)]
        if tags:
            session.execute(insert(core_table(JobTagRecord)), tags)
        if deps:
            session.execute(insert(core_table(JobDependencyRecord)), deps)


def job_row(record: JobRecord) -> JobRow:
    return JobRow(
        id=record.id,
        spec=spec_from_json(record.spec),
        created_at=record.created_at,
        updated_at=record.updated_at,
        version=record.version,
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
    }


def schedule_type(expression: str | None, timezone: str) -> str:
    try:
        return parse_schedule(expression, timezone).kind
    except ValueError:  # validated at the API; only a future syntax could land here
        return "unknown"
