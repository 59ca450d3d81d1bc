"""Appending a command's events and waiting until reads show them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from api.auth import Caller
from api.context import ApiContext
from api.errors import Unavailable
from eventlog.port import Position
from events.errors import EventLogError
from events.model import Event, Payload, to_millis

log = logging.getLogger(__name__)


def api_event(
    ctx: ApiContext,
    caller: Caller,
    payload: Payload,
    job_id: str | None,
    *,
    run_id: str | None = None,
    attempt: int | None = None,
    correlation_id: str | None = None,
    at: datetime | None = None,
) -> Event:
    return Event(
        payload=payload,
        occurred_at=to_millis(at or ctx.clock()),
        actor=caller.name,
        job_id=job_id,
        run_id=run_id,
        attempt=attempt,
        correlation_id=correlation_id,
        actor_role=caller.role,
        request_id=caller.request_id,
    )


def append_and_wait(ctx: ApiContext, events: Sequence[Event]) -> bool:
    """Append ``events`` (durably) and wait, bounded, until the read model has them.

    Returns False if the read model did not catch up in time (the events are still
    appended). Raises ``Unavailable`` if the log refused them: nothing was appended.
    """
    positions = append_events(ctx, events)
    if ctx.progress.wait_for(positions, ctx.ryw_timeout):
        return True
    log.warning("read model lagging behind a write", extra={"job_id": events[0].job_id})
    return False


def append_events(ctx: ApiContext, events: Sequence[Event]) -> list[Position]:
    """Append ``events`` durably in one log call; where each landed, in order.

    Raises ``Unavailable`` if the log refused them (nothing, or with Kafka possibly part
    of them, was appended: events carry ids and run ids are derived, so a retry is safe).
    """
    try:
        positions = ctx.log.append([(e.key, ctx.codec.encode(e)) for e in events])
    except EventLogError as e:
        log.error("append failed", extra={"job_id": events[0].job_id, "error": str(e)})
        raise Unavailable(f"the event log is unavailable, nothing was changed: {e}") from e
    if len(events) == 1:
        [event], [position] = events, positions
        log.info(
            "event appended",
            extra={
                "event_type": event.type,
                "actor": event.actor,
                "job_id": event.job_id,
                "run_id": event.run_id,
                "partition": position.partition,
                "offset": position.offset,
            },
        )
    else:  # a batch: one record naming every run (a line per event cost as much as the rest)
        log.info(
            "events appended",
            extra={
                "event_types": sorted({e.type for e in events}),
                "actor": events[0].actor,
                "count": len(events),
                "run_ids": [e.run_id for e in events],
                "positions": [f"{p.partition}:{p.offset}" for p in positions],
            },
        )
    return positions
