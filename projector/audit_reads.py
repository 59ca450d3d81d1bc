"""The audit: events made on behalf of an API caller, across all jobs, newest first.

The API's second read module (``tests/unit/test_read_modules.py``). An event is in the
audit when it has an ``actor_role``: the scheduler, the workers and every event from
before schema v3 have none. Each query runs on one of the partial indexes of migration
0006 (``ix_event_index_audit*``) and pages by key, so a page costs the same at the
millionth event as at the first.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Select, select, tuple_, union_all
from sqlalchemy.orm import Session, aliased

from events.disclosure import public_payload
from projector.api_reads import find_job, job_names
from projector.tables import EventIndexRecord

__all__ = [
    "AUDIT_LIMIT",
    "AuditEntry",
    "AuditFilter",
    "AuditKey",
    "audit_page",
    "audit_query",
    "job_id_of",
]

AUDIT_LIMIT: Final = 1000
# Events that carry a job's spec, hence its name: the name of a deleted job comes from them.
_NAMING_EVENTS: Final = ("JobCreated", "JobUpdated")


@dataclass(frozen=True, slots=True, order=True)
class AuditKey:
    """An audited event's place in the audit's order; unique, as (partition, offset) is."""

    occurred_at: datetime
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor: str | None = None
    actions: tuple[str, ...] = ()  # event types; empty: all of them
    job_id: str | None = None
    since: datetime | None = None  # occurred at or after
    until: datetime | None = None  # occurred before
    before: AuditKey | None = None  # the page starts after this key (the last page's last)
    limit: int = 100


@dataclass(frozen=True, slots=True)
class AuditEntry:
    key: AuditKey
    event_id: str
    type: str
    actor: str
    actor_role: str
    request_id: str | None
    job_id: str | None
    job_name: str | None  # the job's name now, or the last it had if it was deleted
    run_id: str | None
    payload: dict[str, Any]  # without secrets (``events.disclosure``)
    rejected: str | None  # why the projection did not apply it, if it did not


def job_id_of(session: Session, ref: str) -> str:
    """The id of the job with id or name ``ref``; else ``ref`` itself, taken as the id
    of a deleted job (its events stay in the audit)."""
    job = find_job(session, ref)
    return job.id if job is not None else ref


def audit_page(session: Session, criteria: AuditFilter) -> tuple[list[AuditEntry], AuditKey | None]:
    """A page of audited events, newest first, and the key to pass as ``before`` for the
    next page (None on the last page)."""
    found = list(session.scalars(audit_query(criteria)))
    page = found[: criteria.limit]
    names = _job_names(session, {r.job_id for r in page if r.job_id is not None})
    entries = [_entry(r, names.get(r.job_id) if r.job_id else None) for r in page]
    more = len(found) > criteria.limit
    return entries, entries[-1].key if more and entries else None


def audit_query(criteria: AuditFilter) -> Select[EventIndexRecord]:
    """The page's query: one row more than ``limit``, to tell whether a page follows.

    Several actions are one newest-first page per action, merged: each reads its action's
    index range, where one ``type IN (...)`` would walk every audited event (SQLite) or
    sort every event of those types (PostgreSQL) for a page of rare ones.
    """
    actions = list(dict.fromkeys(criteria.actions))  # an action named twice is read once
    if len(actions) <= 1:
        return _page(criteria, actions[0] if actions else None)
    pages = [_page(criteria, action).subquery() for action in actions]
    merged = union_all(*(select(page) for page in pages)).subquery()
    record = aliased(EventIndexRecord, merged)
    return select(record).order_by(*_newest_first(record)).limit(criteria.limit + 1)


def _page(criteria: AuditFilter, action: str | None) -> Select[EventIndexRecord]:
    record = EventIndexRecord
    # Spelled as in the partial indexes' WHERE, so SQLite's planner can use them.
    query = select(record).where(record.actor_role.is_not(None))
    if criteria.actor is not None:
        query = query.where(record.actor == criteria.actor)
    if action is not None:
        query = query.where(record.type == action)
    if criteria.job_id is not None:
        query = query.where(record.job_id == criteria.job_id)
    if criteria.since is not None:
        query = query.where(record.occurred_at >= criteria.since)
    if criteria.until is not None:
        query = query.where(record.occurred_at < criteria.until)
    if criteria.before is not None:
        key = criteria.before
        position = tuple_(record.occurred_at, record.partition, record.offset)
        query = query.where(position < tuple_(key.occurred_at, key.partition, key.offset))
    return query.order_by(*_newest_first(record)).limit(criteria.limit + 1)


def _newest_first(record: Any) -> tuple[ColumnElement[Any], ...]:
    return (record.occurred_at.desc(), record.partition.desc(), record.offset.desc())


def _entry(record: EventIndexRecord, job_name: str | None) -> AuditEntry:
    return AuditEntry(
        key=AuditKey(record.occurred_at, record.partition, record.offset),
        event_id=record.event_id,
        type=record.type,
        actor=record.actor,
        actor_role=record.actor_role or "",
        request_id=record.request_id,
        job_id=record.job_id,
        job_name=job_name,
        run_id=record.run_id,
        payload=public_payload(record.type, record.payload),
        rejected=record.rejected,
    )


def _job_names(session: Session, ids: Collection[str]) -> dict[str, str]:
    names = job_names(session, ids)
    gone = [job_id for job_id in ids if job_id not in names]
    return {**_names_from_history(session, gone), **names}


def _names_from_history(session: Session, job_ids: Sequence[str]) -> dict[str, str]:
    """The last name each deleted job had, from its latest audited JobCreated or
    JobUpdated event: one index seek per job (``ix_event_index_audit_job``, newest
    first). A job created and last changed before schema v3 has none: its name is
    unknown (None)."""
    record = EventIndexRecord
    names: dict[str, str] = {}
    for job_id in job_ids:
        query = (
            select(record.payload)
            .where(record.actor_role.is_not(None), record.job_id == job_id)
            .where(record.type.in_(_NAMING_EVENTS), record.rejected.is_(None))
            .order_by(*_newest_first(record))
            .limit(1)
        )
        payload = session.scalar(query)
        name = payload.get("spec", {}).get("name") if isinstance(payload, dict) else None
        if isinstance(name, str):
            names[job_id] = name
    return names
