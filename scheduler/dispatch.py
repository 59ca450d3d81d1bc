"""Dispatch: push queued runs into the lease store's queues, and reconcile the queues
with the read model (the queues are derived state; losing them loses no run)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from events.dispatch import Ticket, encode_ticket, finished_flag, run_lease_key
from events.model import Event, JobSpec, RunQueued
from leases.port import LeaseStore, QueueItem
from projector import queries, run_queries
from projector.run_projection import RunRow

log = logging.getLogger(__name__)

RECONCILE_GRACE = timedelta(seconds=2)  # a popped run may take this long to show its lease


class Dispatcher:
    def __init__(self, leases: LeaseStore) -> None:
        self._leases = leases

    def dispatch(
        self,
        events: Sequence[Event],
        specs: Mapping[str, JobSpec],
        parameters: Mapping[str, dict[str, Any]],
    ) -> int:
        """Push every run these (already appended) events queued; return how many."""
        pushed = 0
        for event in events:
            if not isinstance(event.payload, RunQueued) or event.run_id is None:
                continue
            spec = specs.get(event.job_id or "")
            if spec is None:
                continue  # the job was deleted; reconciliation skips such runs too
            ticket = Ticket(
                event.run_id,
                spec_job_id(event),
                event.attempt or 1,
                spec,
                parameters.get(event.run_id, {}),
                event.correlation_id,
            )
            pushed += self._push(event.payload.queue, event.payload.priority, ticket)
        return pushed

    def _push(self, queue: str, priority: int, ticket: Ticket) -> bool:
        item = QueueItem(ticket.run_id, priority, encode_ticket(ticket))
        return self._leases.push(queue, item)

    def reconcile(self, session: Session, now: datetime) -> int:
        """Re-push queued runs that no queue holds and no worker has; return how many."""
        queued = [r for r in run_queries.runs_in_status(session, ["queued"]) if _settled(r, now)]
        if not queued:
            return 0
        in_queues = {q: self._leases.queued_ids(q) for q in {r.queue or "default" for r in queued}}
        leased = self._leases.inspect([run_lease_key(r.id) for r in queued])
        specs = _specs(session, {r.job_id for r in queued})
        pushed = 0
        for run in queued:
            queue = run.queue or "default"
            if run.id in in_queues[queue] or run_lease_key(run.id) in leased:
                continue
            if self._leases.has_flag(finished_flag(run.id, run.attempt)) or run.job_id not in specs:
                continue
            ticket = Ticket(
                run.id,
                run.job_id,
                run.attempt,
                specs[run.job_id],
                run.parameters,
                run.correlation_id,
            )
            if self._push(queue, run.priority, ticket):
                pushed += 1
                log.warning(
                    "re-pushed a queued run missing from its queue", extra={"run_id": run.id}
                )
        return pushed


def spec_job_id(event: Event) -> str:
    assert event.job_id is not None, "run events carry their job id"
    return event.job_id


def _settled(run: RunRow, now: datetime) -> bool:
    return run.queued_at is not None and now - run.queued_at > RECONCILE_GRACE


def _specs(session: Session, job_ids: set[str]) -> Mapping[str, JobSpec]:
    found = {job_id: queries.find_job(session, job_id) for job_id in job_ids}
    return {job_id: job.spec for job_id, job in found.items() if job is not None}
