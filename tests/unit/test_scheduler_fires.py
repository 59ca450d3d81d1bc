"""Schedule fires and misfires (``scheduler.fires``).

Berlin springs forward on 29 March 2026 (02:00 CET -> 03:00 CEST): 02:30 does not exist.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from events.ids import fire_run_id
from events.model import Event, JobSpec, RunRequested, RunSkipped
from scheduler.fires import due_fires, invalid_schedules, next_wakeup
from scheduler.views import JobView


def utc(day: int, hour: int = 0, minute: int = 0, second: int = 0, month: int = 7) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


def job(
    schedule: str | None,
    created_at: datetime,
    last_fire_at: datetime | None = None,
    rescheduled_at: datetime | None = None,
    **spec: Any,
) -> JobView:
    full = JobSpec(name="j", type="shell", command="true", schedule=schedule, **spec)
    return JobView("job-1", full, created_at, last_fire_at, rescheduled_at)


def outcome(events: list[Event]) -> tuple[list[datetime], list[datetime]]:
    """(fire times that run, fire times recorded as skipped), each in event order."""
    times = {
        e.run_id: e.payload.scheduled_for for e in events if isinstance(e.payload, RunRequested)
    }
    skipped = [e.run_id for e in events if isinstance(e.payload, RunSkipped)]
    ran = [t for run_id, t in times.items() if run_id not in skipped]
    return [t for t in ran if t is not None], [t for r in skipped if (t := times[r]) is not None]


def without_ids(events: list[Event]) -> list[Event]:
    return [dataclasses.replace(event, event_id="") for event in events]


# --- when fires are due -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "now", "ran", "skipped"),
    [
        # first fire is strictly after creation: 09:00:30 -> 09:01
        (job("* * * * *", utc(1, 9, 0, 30)), utc(1, 9, 0, 59), [], []),
        (job("* * * * *", utc(1, 9, 0, 30)), utc(1, 9, 1), [utc(1, 9, 1)], []),
        (job("* * * * *", utc(1, 9, 0, 30)), utc(1, 9, 1, 40), [utc(1, 9, 1)], []),
        # already requested: nothing new until the next time
        (job("* * * * *", utc(1, 9), utc(1, 9, 1)), utc(1, 9, 1, 40), [], []),
        # one due time, however late, is an ordinary fire
        (job("0 9 * * *", utc(1), utc(1, 9)), utc(2, 15), [utc(2, 9)], []),
        # misfire, catchup off: the latest runs, the others are recorded as skipped
        (
            job("*/15 * * * *", utc(1), utc(1, 8)),
            utc(1, 9, 5),
            [utc(1, 9)],
            [utc(1, 8, 15), utc(1, 8, 30), utc(1, 8, 45)],
        ),
        # misfire of a sparse schedule over years of downtime
        (
            job("@yearly", datetime(2020, 5, 1, tzinfo=UTC), datetime(2023, 1, 1, tzinfo=UTC)),
            utc(1),
            [datetime(2026, 1, 1, tzinfo=UTC)],
            [datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)],
        ),
        # misfire, catchup on: every missed time runs
        (
            job("*/15 * * * *", utc(1), utc(1, 8), catchup=True),
            utc(1, 9, 5),
            [utc(1, 8, 15), utc(1, 8, 30), utc(1, 8, 45), utc(1, 9)],
            [],
        ),
        # fire times during a pause (resumed 08:50) are neither run nor misfires
        (job("*/15 * * * *", utc(1), utc(1, 8), utc(1, 8, 50)), utc(1, 9, 5), [utc(1, 9)], []),
        # interval: aligned to the epoch, first fire after creation
        (job("every 5m", utc(1, 10, 2)), utc(1, 10, 5), [utc(1, 10, 5)], []),
        # one-time: fires once
        (job("2026-07-01T10:00:00Z", utc(1)), utc(1, 9, 59), [], []),
        (job("2026-07-01T10:00:00Z", utc(1)), utc(1, 11), [utc(1, 10)], []),
        (job("2026-07-01T10:00:00Z", utc(1), utc(1, 10)), utc(3), [], []),
        # paused, or no schedule: nothing
        (job("* * * * *", utc(1), enabled=False), utc(1, 9), [], []),
        (job(None, utc(1)), utc(1, 9), [], []),
        # DST: 02:30 Berlin on the spring-forward day fires once, at 03:00 CEST
        (
            job("30 2 * * *", utc(1, month=1), utc(28, 1, 30, month=3), timezone="Europe/Berlin"),
            utc(29, 23, month=3),
            [utc(29, 1, month=3)],
            [],
        ),
        (
            job("30 2 * * *", utc(1, month=1), utc(29, 1, month=3), timezone="Europe/Berlin"),
            utc(30, 12, month=3),
            [utc(30, 0, 30, month=3)],
            [],
        ),
    ],
)
def test_given_job_when_due_fires_then_runs_and_misfire_records(
    given: JobView, now: datetime, ran: list[datetime], skipped: list[datetime]
) -> None:
    assert outcome(due_fires([given], now)) == (ran, skipped)


def test_given_berlin_0230_job_when_loop_runs_through_spring_forward_day_then_fires_once() -> None:
    given = job("30 2 * * *", utc(1, month=1), utc(28, 1, 30, month=3), timezone="Europe/Berlin")
    fires: list[datetime] = []
    now = utc(28, 12, month=3)
    while now < utc(29, 22, month=3):
        ran, _ = outcome(due_fires([given], now))
        fires += ran
        given = dataclasses.replace(given, last_fire_at=max([given.fires_after, *ran]))
        now += timedelta(minutes=5)

    assert fires == [utc(29, 1, month=3)]


def test_given_fire_when_requested_then_envelope_is_deterministic_and_own_correlation() -> None:
    given = job("*/15 * * * *", utc(1), utc(1, 8))
    now = datetime(2026, 7, 1, 9, 5, 0, 123456, tzinfo=UTC)

    first, second = due_fires([given], now), due_fires([given], now)

    assert without_ids(first) == without_ids(second)
    fired = first[-1]
    assert fired.payload == RunRequested(trigger="schedule", scheduled_for=utc(1, 9))
    assert fired.run_id == fire_run_id("job-1", utc(1, 9)) == fired.correlation_id
    assert (fired.actor, fired.job_id, fired.attempt) == ("scheduler", "job-1", 1)
    assert fired.occurred_at == datetime(2026, 7, 1, 9, 5, 0, 123000, tzinfo=UTC)


def test_given_misfire_when_skips_recorded_then_each_names_the_run_that_ran() -> None:
    events = due_fires([job("*/15 * * * *", utc(1), utc(1, 8))], utc(1, 9, 5))

    skips = [(e.causation_id, e.payload) for e in events if isinstance(e.payload, RunSkipped)]
    ran = fire_run_id("job-1", utc(1, 9))
    assert [payload.reason for _, payload in skips] == ["misfire"] * 3
    assert {causation for causation, _ in skips} == {ran}
    assert all(ran in (payload.detail or "") for _, payload in skips)


# --- caps -----------------------------------------------------------------------------------


def test_given_misfire_over_record_cap_when_due_then_latest_recorded_and_rest_counted() -> None:
    events = due_fires([job("*/15 * * * *", utc(1), utc(1, 8))], utc(1, 9, 5), misfire_records=2)

    assert outcome(events) == ([utc(1, 9)], [utc(1, 8, 30), utc(1, 8, 45)])
    oldest_skip = events[1].payload
    assert isinstance(oldest_skip, RunSkipped)
    assert "1 earlier missed fire time(s) since 2026-07-01T08:00:00+00:00" in (
        oldest_skip.detail or ""
    )


def test_given_day_of_per_second_misfires_when_due_then_capped_and_quick() -> None:
    given = job("every 1s", utc(1), utc(1))

    events = due_fires([given], utc(2))

    ran, skipped = outcome(events)
    assert ran == [utc(2)]
    assert skipped == [utc(2) - timedelta(seconds=s) for s in range(100, 0, -1)]
    assert "earlier missed fire times since" in str(events[1].payload)


def test_given_catchup_backlog_when_due_then_earliest_batch_and_next_round_continues() -> None:
    given = job("every 1s", utc(1), utc(1), catchup=True)

    first, _ = outcome(due_fires([given], utc(2), catchup_batch=3))
    later = dataclasses.replace(given, last_fire_at=first[-1])
    second, _ = outcome(due_fires([later], utc(2), catchup_batch=3))

    assert first + second == [utc(1) + timedelta(seconds=s) for s in range(1, 7)]


@pytest.mark.parametrize(("catchup_batch", "misfire_records"), [(0, 10), (10, -1)])
def test_given_bad_limits_when_due_fires_then_refused(
    catchup_batch: int, misfire_records: int
) -> None:
    with pytest.raises(ValueError, match="bad limits"):
        due_fires([], utc(1), catchup_batch=catchup_batch, misfire_records=misfire_records)


# --- wake-up and invalid schedules ------------------------------------------------------------


@pytest.mark.parametrize(
    ("jobs", "now", "expected"),
    [
        ([], utc(1, 8, 5), None),
        ([job("*/15 * * * *", utc(1), utc(1, 8))], utc(1, 8, 5), utc(1, 8, 15)),
        ([job("*/15 * * * *", utc(1), utc(1, 8))], utc(1, 8, 20), utc(1, 8, 20)),  # due now
        (
            [job("*/15 * * * *", utc(1), utc(1, 8)), job("every 1m", utc(1, 8, 4))],
            utc(1, 8, 5),
            utc(1, 8, 5),
        ),
        ([job("every 1m", utc(1, 8, 5, 30))], utc(1, 8, 5, 40), utc(1, 8, 6)),
        ([job("*/15 * * * *", utc(1), enabled=False)], utc(1, 8, 5), None),
        ([job("2026-07-01T10:00:00Z", utc(1), utc(1, 10))], utc(1, 11), None),
    ],
)
def test_given_jobs_when_next_wakeup_then_earliest_fire_not_before_now(
    jobs: list[JobView], now: datetime, expected: datetime | None
) -> None:
    assert next_wakeup(jobs, now) == expected


def test_given_unknown_timezone_when_deciding_then_job_passed_over_and_reported() -> None:
    broken = dataclasses.replace(job("* * * * *", utc(1), timezone="Mars/Olympus"), job_id="bad")
    good = job("* * * * *", utc(1))

    assert [e.job_id for e in due_fires([broken, good], utc(1, 0, 1))] == ["job-1"]
    assert list(invalid_schedules([broken, good])) == ["bad"]
    assert "Mars/Olympus" in invalid_schedules([broken])["bad"]


# --- what a fire carries --------------------------------------------------------------------


@pytest.mark.parametrize("catchup", [False, True])
def test_every_fire_carries_the_jobs_parameters(catchup: bool) -> None:
    # Three due times: a misfire (catchup off) records two skipped runs and runs one.
    given = job("every 1m", utc(1, 9), utc(1, 9), catchup=catchup, parameters={"k": "v"})
    events = due_fires([given], utc(1, 9, 3))
    requests = [e.payload for e in events if isinstance(e.payload, RunRequested)]
    assert len(requests) == 3
    assert [r.parameters for r in requests] == [{"k": "v"}] * 3
