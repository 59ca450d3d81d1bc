"""Envelopes of the events the scheduler appends."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from events.model import Event, Payload, to_millis
from scheduler.views import RunView

ACTOR: Final = "scheduler"


def new_run_event(
    payload: Payload,
    *,
    job_id: str,
    run_id: str,
    now: datetime,
    correlation_id: str,
    causation_id: str | None = None,
) -> Event:
    """An event of a run the scheduler is creating now (attempt 1)."""
    return Event(
        payload=payload,
        occurred_at=occurred_at(now),
        actor=ACTOR,
        job_id=job_id,
        run_id=run_id,
        attempt=1,
        correlation_id=correlation_id,
        causation_id=causation_id,
    )


def run_event(
    payload: Payload,
    run: RunView,
    now: datetime,
    *,
    attempt: int | None = None,
    causation_id: str | None = None,
) -> Event:
    """An event of an existing run, for its current attempt unless ``attempt`` is given."""
    return Event(
        payload=payload,
        occurred_at=occurred_at(now),
        actor=ACTOR,
        job_id=run.job_id,
        run_id=run.run_id,
        attempt=run.attempt if attempt is None else attempt,
        correlation_id=run.correlation,
        causation_id=causation_id,
    )


def occurred_at(now: datetime) -> datetime:
    """``now`` as events carry it: UTC, whole milliseconds."""
    if now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got {now.isoformat()}")
    return to_millis(now.astimezone(UTC))
