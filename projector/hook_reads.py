"""Reads for the hook deliverer (``notify``): jobs with hooks, and the outcome and
delivery events of their runs, from the event index the projector already keeps.

Nothing here needs a table of its own: every outcome and every delivery attempt is an
event, indexed with its (partition, offset) and payload, so the deliverer's state is a
fold of indexed events and survives any restart.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import Session

from events.model import HOOK_NAMES, JobSpec, spec_from_dict
from projector.tables import EventIndexRecord, JobRecord, RunRecord


@dataclass(frozen=True, slots=True)
class IndexedEvent:
    partition: int
    offset: int
    event_id: str
    type: str
    job_id: str
    run_id: str
    attempt: int | None
    occurred_at: datetime
    payload: dict[str, Any]


def has_hook(spec: JobSpec) -> bool:
    return any(getattr(spec, name) is not None for name in HOOK_NAMES)


class HookedJobs:
    """The specs of the jobs that have a hook, re-parsed only when a job's version changes."""

    def __init__(self) -> None:
        self._specs: dict[str, tuple[int, JobSpec]] = {}

    def refresh(self, session: Session) -> dict[str, JobSpec]:
        query = select(JobRecord.id, JobRecord.version)
        versions: dict[str, int] = {job_id: v for job_id, v in session.execute(query)}
        stale = [
            job_id for job_id, v in versions.items() if self._specs.get(job_id, (None,))[0] != v
        ]
        if stale:
            specs = select(JobRecord.id, JobRecord.version, JobRecord.spec)
            for job_id, version, spec in session.execute(specs.where(JobRecord.id.in_(stale))):
                self._specs[job_id] = (version, spec_from_dict(spec))
        self._specs = {k: entry for k, entry in self._specs.items() if k in versions}
        return {job_id: spec for job_id, (_, spec) in self._specs.items() if has_hook(spec)}


def _indexed(types: Collection[str]) -> Select[Any]:
    record = EventIndexRecord
    columns = (
        record.partition,
        record.offset,
        record.event_id,
        record.type,
        record.job_id,
        record.run_id,
        record.attempt,
        record.occurred_at,
        record.payload,
    )
    # A rejected event (a stale outcome, say) did not happen as far as the run goes.
    return (
        select(*columns)
        .where(record.type.in_(types), record.rejected.is_(None), record.run_id.is_not(None))
        .order_by(record.partition, record.offset)
    )


def _rows(session: Session, query: Select[Any]) -> list[IndexedEvent]:
    return [IndexedEvent(*row) for row in session.execute(query)]


def events_since(
    session: Session, job_ids: Collection[str], types: Collection[str], since: datetime
) -> list[IndexedEvent]:
    """Events of these types and jobs that occurred at ``since`` or later, in log order."""
    if not job_ids:
        return []
    record = EventIndexRecord
    query = _indexed(types).where(record.job_id.in_(job_ids), record.occurred_at >= since)
    return _rows(session, query)


def events_between(
    session: Session,
    job_ids: Collection[str],
    types: Collection[str],
    ranges: Mapping[int, tuple[int, int]],
) -> list[IndexedEvent]:
    """Events of these types and jobs at offsets ``[start, end)`` of each partition."""
    if not job_ids or not ranges:
        return []
    record = EventIndexRecord
    spans: list[ColumnElement[bool]] = [
        and_(record.partition == p, record.offset >= start, record.offset < end)
        for p, (start, end) in ranges.items()
    ]
    return _rows(session, _indexed(types).where(record.job_id.in_(job_ids), or_(*spans)))


def events_of_runs(
    session: Session, run_ids: Collection[str], types: Collection[str]
) -> list[IndexedEvent]:
    if not run_ids:
        return []
    return _rows(session, _indexed(types).where(EventIndexRecord.run_id.in_(run_ids)))


def run_triggers(session: Session, run_ids: Sequence[str]) -> dict[str, str]:
    """Run id -> what requested it (schedule, manual ...), for the runs still projected."""
    if not run_ids:
        return {}
    query = select(RunRecord.id, RunRecord.trigger).where(RunRecord.id.in_(run_ids))
    return {run_id: trigger for run_id, trigger in session.execute(query)}
