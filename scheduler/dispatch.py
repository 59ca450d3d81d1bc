"""Dispatch: push queued runs into the lease store's queues, and reconcile the queues
with the read model (the queues are derived state; losing them loses no run)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence, Set
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from chronolog import tracing
from events.model import Event, JobSpec, RunQueued, RunRequested
from leases.dispatch import Ticket, encode_ticket, finished_flag, run_lease_key
from leases.port import LeaseStore, QueueItem
from projector import scheduler_reads as reads
from projector.scheduler_reads import QueuedRun

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
        fire_times: Mapping[str, datetime | None] | None = None,
        traceparents: Mapping[str, str | None] | None = None,
    ) -> int:
        """Push every run these (already appended) events queued; return how many.

        ``fire_times`` and ``traceparents``: those of runs requested earlier; runs
        requested by these events take theirs from the events. Each ticket carries the
        traceparent of its dispatch span (tracing on), the execution's parent."""
        fired = {**(fire_times or {}), **requested_fire_times(events)}
        traced = {**(traceparents or {}), **requested_traceparents(events)}
        items: list[tuple[str, QueueItem]] = []
        for event in events:
            if not isinstance(event.payload, RunQueued) or event.run_id is None:
                continue
            spec = specs.get(event.job_id or "")
            if spec is None:
                continue  # the job was deleted; reconciliation skips such runs too
            job_id, attempt = spec_job_id(event), event.attempt or 1
            ticket = Ticket(
                event.run_id,
                job_id,
                attempt,
                spec,
                parameters.get(event.run_id, {}),
                event.correlation_id,
                fired.get(event.run_id),
                tracing.hop(
                    "chronolog.dispatch", traced.get(event.run_id), event.run_id, job_id, attempt
                ),
            )
            items.append(_item(event.payload.queue, event.payload.priority, ticket))
        return sum(self._leases.push_many(items)) if items else 0

    def reconcile(self, session: Session, now: datetime) -> int:
        """Re-push queued runs that no queue holds and no worker has; return how many.

        Reads in batches (the queued runs, each queue's ids once, the runs' leases in
        one call), decides with pure functions, then pushes.
        """
        # Old enough that a worker holding one would show its lease by now.
        queued = reads.queued_before(session, now - RECONCILE_GRACE)
        if not queued:
            return 0
        in_queues = {q: self._leases.queued_ids(q) for q in {r.queue for r in queued}}
        leased = self._leases.inspect([run_lease_key(r.run_id) for r in queued])
        unheld = held_by_nobody(queued, in_queues, leased.keys())
        if not unheld:
            return 0
        # Per run, but only for the few no queue or worker holds (a finished attempt
        # whose outcome the read model has not applied yet).
        finished = {
            r.run_id for r in unheld if self._leases.has_flag(finished_flag(r.run_id, r.attempt))
        }
        missing = [r for r in unheld if r.run_id not in finished]
        specs = reads.job_specs(session, {r.job_id for r in missing})
        parameters = reads.run_parameters(session, [r.run_id for r in missing])
        items = [_item(*ticket) for ticket in repush_tickets(missing, specs, parameters)]
        added = self._leases.push_many(items) if items else []
        for (_, item), was_added in zip(items, added, strict=True):
            if was_added:
                log.warning(
                    "re-pushed a queued run missing from its queue", extra={"run_id": item.id}
                )
        return sum(added)


def _item(queue: str, priority: int, ticket: Ticket) -> tuple[str, QueueItem]:
    return queue, QueueItem(ticket.run_id, priority, encode_ticket(ticket))


def held_by_nobody(
    queued: Sequence[QueuedRun], in_queues: Mapping[str, Set[str]], leased: Set[str]
) -> list[QueuedRun]:
    """The queued runs that their queue does not hold and no worker has leased."""
    return [
        r
        for r in queued
        if r.run_id not in in_queues.get(r.queue, ()) and run_lease_key(r.run_id) not in leased
    ]


def repush_tickets(
    missing: Sequence[QueuedRun],
    specs: Mapping[str, JobSpec],
    parameters: Mapping[str, dict[str, Any]],
) -> list[tuple[str, int, Ticket]]:
    """(queue, priority, ticket) to push again for each missing run whose job still exists."""
    return [
        (
            run.queue,
            run.priority,
            Ticket(
                run.run_id,
                run.job_id,
                run.attempt,
                specs[run.job_id],
                parameters.get(run.run_id, {}),
                run.correlation_id,
                run.scheduled_for,
                tracing.hop(
                    "chronolog.dispatch", run.traceparent, run.run_id, run.job_id, run.attempt
                ),
            ),
        )
        for run in missing
        if run.job_id in specs
    ]


def requested_fire_times(events: Sequence[Event]) -> dict[str, datetime | None]:
    """The fire time of each run these events request."""
    return {
        event.run_id: event.payload.scheduled_for
        for event in events
        if isinstance(event.payload, RunRequested) and event.run_id is not None
    }


def requested_traceparents(events: Sequence[Event]) -> dict[str, str | None]:
    """The traceparent of each run these events request."""
    return {
        event.run_id: event.payload.traceparent
        for event in events
        if isinstance(event.payload, RunRequested) and event.run_id is not None
    }


def spec_job_id(event: Event) -> str:
    assert event.job_id is not None, "run events carry their job id"
    return event.job_id
