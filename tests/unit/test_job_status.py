"""What a job says about itself: ``status`` (active, paused, done) and the pause reason
(issue 8, item 6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.views import job_out, job_status
from events.model import Event, JobCreated, JobPaused, JobResumed, JobSpec, JobUpdated, Payload
from projector.job_projection import JobRow, Rejected, apply_job_event

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
ONCE = "2026-11-22T10:00:00+00:00"
AT = datetime(2026, 11, 22, 10, tzinfo=UTC)


def event(payload: Payload, minutes: int = 0) -> Event:
    return Event(
        payload=payload, occurred_at=T0 + timedelta(minutes=minutes), actor="api", job_id="job-1"
    )


def fold(*payloads: Payload) -> JobRow:
    row: JobRow | None = None
    for minutes, payload in enumerate(payloads):
        outcome = apply_job_event(row, event(payload, minutes))
        assert isinstance(outcome, JobRow), outcome
        row = outcome
    assert row is not None
    return row


def spec(schedule: str | None = ONCE, **fields: object) -> JobSpec:
    return JobSpec(name="j", type="shell", command="true", schedule=schedule, **fields)  # type: ignore[arg-type]


# --- the pause reason ----------------------------------------------------------------------


def test_the_pause_reason_is_kept_on_the_job_until_it_is_resumed() -> None:
    paused = fold(JobCreated(spec()), JobPaused("maintenance"))
    assert (paused.spec.enabled, paused.paused_reason) == (False, "maintenance")
    still = fold(JobCreated(spec()), JobPaused("maintenance"), JobUpdated(spec(enabled=False)))
    assert still.paused_reason == "maintenance"
    resumed = fold(JobCreated(spec()), JobPaused("maintenance"), JobResumed())
    assert (resumed.spec.enabled, resumed.paused_reason) == (True, None)


def test_enabling_a_paused_job_through_an_update_clears_the_reason() -> None:
    row = fold(JobCreated(spec()), JobPaused("maintenance"), JobUpdated(spec(), ("enabled",)))
    assert row.paused_reason is None


def test_a_pause_without_a_reason_has_none() -> None:
    assert fold(JobCreated(spec()), JobPaused()).paused_reason is None
    assert isinstance(apply_job_event(None, event(JobPaused("x"))), Rejected)


def test_the_job_response_shows_the_pause_reason() -> None:
    out = job_out(fold(JobCreated(spec()), JobPaused("maintenance")), {}, T0)
    assert (out.status, out.paused_reason) == ("paused", "maintenance")


# --- status --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "last_fire_at", "status"),
    [
        # a one-time job: active until its fire is requested, then done
        (fold(JobCreated(spec())), None, "active"),
        (fold(JobCreated(spec())), AT, "done"),
        # moved to a later time after it fired: waiting again
        (fold(JobCreated(spec("2026-11-23T10:00:00+00:00"))), AT, "active"),
        # paused says paused, fired or not
        (fold(JobCreated(spec()), JobPaused("x")), AT, "paused"),
        # recurring and unscheduled jobs never are done
        (fold(JobCreated(spec("every 5m"))), AT, "active"),
        (fold(JobCreated(spec("0 9 * * *"))), AT, "active"),
        (fold(JobCreated(spec(None))), None, "active"),
    ],
)
def test_job_status(row: JobRow, last_fire_at: datetime | None, status: str) -> None:
    assert job_status(row, last_fire_at) == status


def test_a_fired_one_time_job_says_done_with_no_next_run() -> None:
    out = job_out(fold(JobCreated(spec())), {}, AT + timedelta(seconds=1), AT)
    assert (out.status, out.next_run, out.schedule_type) == ("done", None, "once")


def test_a_one_time_job_still_waiting_says_active_with_its_next_run() -> None:
    out = job_out(fold(JobCreated(spec())), {}, T0)
    assert (out.status, out.next_run) == ("active", "2026-11-22T10:00:00Z")
