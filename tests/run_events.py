"""Run events for the projection tests: one run of one job, folded without rejections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from events.model import Event, Payload
from projector.job_projection import Rejected
from projector.run_projection import RunRow, apply_run_event

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def ev(payload: Payload, attempt: int = 1, second: int = 0) -> Event:
    return Event(
        payload=payload,
        occurred_at=T0 + timedelta(seconds=second),
        actor="test",
        job_id="job-1",
        run_id="run-1",
        attempt=attempt,
    )


def fold(*events: Event) -> RunRow:
    run: RunRow | None = None
    for event in events:
        outcome = apply_run_event(run, event)
        assert not isinstance(outcome, Rejected), outcome
        run = outcome
    assert run is not None
    return run
