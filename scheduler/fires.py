"""Schedule fires: which runs are due, and what to do with fire times missed in downtime.

Rules:

- A job fires when it is enabled and has a cron, interval or one-time schedule. Its fire
  times still to decide are those strictly after ``JobView.fires_after`` (creation, the
  last fire already requested, or a resume / schedule change) and at or before ``now``.
  A job created at 09:00:30 with ``* * * * *`` first fires at 09:01.
- Each fire is ``RunRequested(trigger="schedule", scheduled_for=t, parameters=<the
  job's>)`` with the deterministic run id ``fire_run_id(job, t)``; the run is its own
  correlation id (a schedule fire starts a pipeline). The parameters are recorded on the
  run, so the log says what ran even after the job's parameters change.
- One due time is an ordinary fire, however late. Two or more are a **misfire**:
  - ``catchup=False``: the latest due time runs; each earlier one is recorded as a run
    (``RunRequested`` then ``RunSkipped(reason="misfire")``, caused by the run that ran
    instead) so the audit trail shows what was missed. At most ``misfire_records`` are
    recorded, the latest ones; the oldest recorded one says that earlier ones were not
    (and how many, when counting them took no extra work).
  - ``catchup=True``: every due time runs, the earliest ``catchup_batch`` per round; the
    next round continues after the last one requested.
- A one-time schedule fires once: after its fire is requested no fire time is left.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from events.ids import fire_run_id
from events.model import Event, RunRequested, RunSkipped
from scheduler.envelope import new_run_event
from scheduler.views import JobView
from timing.schedules import InvalidSchedule, InvalidTimezone, Schedule, parse_schedule

MAX_MISFIRE_RECORDS: Final = 100
"""Skipped fire times recorded per misfire (``catchup=False``)."""
CATCHUP_BATCH: Final = 100
"""Missed fire times requested per job and round (``catchup=True``)."""

_FIRST_SPAN: Final = timedelta(minutes=1)
_PAGE: Final = 1000


@dataclass(frozen=True, slots=True)
class _Missed:
    """The latest missed fire times, ascending, and what is known of the earlier ones."""

    times: list[datetime]
    unrecorded: int  # earlier missed fire times found but not kept
    exact: bool  # False: there are more earlier ones, not counted


def due_fires(
    jobs: Iterable[JobView],
    now: datetime,
    *,
    catchup_batch: int = CATCHUP_BATCH,
    misfire_records: int = MAX_MISFIRE_RECORDS,
) -> list[Event]:
    """Return the schedule fires due at ``now``, with misfire records; see the module doc."""
    if catchup_batch < 1 or misfire_records < 0:
        raise ValueError(f"bad limits: {catchup_batch=}, {misfire_records=}")
    events: list[Event] = []
    for job in jobs:
        schedule = _schedule(job)
        if schedule is not None:
            events.extend(_job_fires(job, schedule, now, catchup_batch, misfire_records))
    return events


def next_wakeup(jobs: Iterable[JobView], now: datetime) -> datetime | None:
    """Return when ``due_fires`` will next have something to do: the earliest fire time
    still to decide, ``now`` if one is already due, or None if no job has one."""
    fires = [
        fire
        for job in jobs
        if _schedule(job) is not None
        and (fire := first_fire_after(job.spec.schedule, job.spec.timezone, job.fires_after))
        is not None
    ]
    return max(min(fires), now) if fires else None


@functools.lru_cache(maxsize=65_536)
def first_fire_after(expression: str | None, timezone: str, after: datetime) -> datetime | None:
    """The first fire time strictly after ``after``. Cached: it is a pure function of its
    arguments, and a job's ``fires_after`` stays put until it fires, so each round finds
    most jobs not due without running croniter again."""
    return parse_schedule(expression, timezone).next_fire(after)


def invalid_schedules(jobs: Iterable[JobView]) -> dict[str, str]:
    """Return job id -> error for jobs whose stored schedule no longer parses (e.g. a
    timezone gone from tzdata). ``due_fires`` passes them over; the loop logs these."""
    errors: dict[str, str] = {}
    for job in jobs:
        try:
            parse_schedule(job.spec.schedule, job.spec.timezone)
        except (InvalidSchedule, InvalidTimezone) as e:
            errors[job.job_id] = str(e)
    return errors


def _schedule(job: JobView) -> Schedule | None:
    """The job's schedule if it should fire: enabled, valid, and not ``none``."""
    if not job.spec.enabled:
        return None
    try:
        schedule = parse_schedule(job.spec.schedule, job.spec.timezone)
    except (InvalidSchedule, InvalidTimezone):
        return None  # reported by invalid_schedules
    return None if schedule.kind == "none" else schedule


def _job_fires(
    job: JobView, schedule: Schedule, now: datetime, catchup_batch: int, misfire_records: int
) -> list[Event]:
    first = first_fire_after(job.spec.schedule, job.spec.timezone, job.fires_after)
    if first is None or first > now:
        return []
    limit = catchup_batch if job.spec.catchup else 2
    due = schedule.fires_between(job.fires_after, now, limit)
    if job.spec.catchup or len(due) < 2:
        return [_fire(job, fire, now) for fire in due]
    missed = _latest_missed(schedule, job.fires_after, now, misfire_records + 1)
    return _misfire(job, missed, now)


def _misfire(job: JobView, missed: _Missed, now: datetime) -> list[Event]:
    """The latest missed time runs; the earlier ones are recorded as skipped."""
    *skipped, latest = missed.times
    ran = fire_run_id(job.job_id, latest)
    events: list[Event] = []
    for index, fire in enumerate(skipped):
        detail = (
            f"missed fire time {fire.isoformat()}: catchup is off, so only the latest "
            f"missed fire time {latest.isoformat()} runs (run {ran})"
        )
        if index == 0:
            detail += _unrecorded_note(missed, job.fires_after)
        events.append(_fire(job, fire, now))
        events.append(_skip(job, fire, now, detail, caused_by=ran))
    events.append(_fire(job, latest, now))
    return events


def _unrecorded_note(missed: _Missed, since: datetime) -> str:
    if not missed.exact:
        return f"; earlier missed fire times since {since.isoformat()} are not recorded"
    if missed.unrecorded:
        return (
            f"; {missed.unrecorded} earlier missed fire time(s) since {since.isoformat()} "
            "are not recorded"
        )
    return ""


def _fire(job: JobView, fire: datetime, now: datetime) -> Event:
    run_id = fire_run_id(job.job_id, fire)
    return new_run_event(
        RunRequested(trigger="schedule", scheduled_for=fire, parameters=dict(job.spec.parameters)),
        job_id=job.job_id,
        run_id=run_id,
        now=now,
        correlation_id=run_id,
    )


def _skip(job: JobView, fire: datetime, now: datetime, detail: str, caused_by: str) -> Event:
    run_id = fire_run_id(job.job_id, fire)
    return new_run_event(
        RunSkipped(reason="misfire", detail=detail),
        job_id=job.job_id,
        run_id=run_id,
        now=now,
        correlation_id=run_id,
        causation_id=caused_by,
    )


# --- the latest fire times of a long downtime, without walking all of it ----------------


def _latest_missed(schedule: Schedule, after: datetime, until: datetime, count: int) -> _Missed:
    """Return the last ``count`` fire times in ``(after, until]``.

    Looks back from ``until`` over doubling spans, so a month of a per-second schedule
    costs about ``2 * count`` fire computations, not millions.
    """
    start = _window_start(schedule, after, until, count)
    latest: deque[datetime] = deque(maxlen=count)
    total = 0
    for fire in _paged(schedule, start, until):
        latest.append(fire)
        total += 1
    first = schedule.next_fire(after)
    exact = start == after or first is None or first > start
    return _Missed(list(latest), unrecorded=total - len(latest), exact=exact)


def _window_start(schedule: Schedule, after: datetime, until: datetime, count: int) -> datetime:
    """A start ``s >= after`` with ``count`` fire times in ``(s, until]``, else ``after``."""
    span = _FIRST_SPAN
    while span < until - after:
        start = until - span
        if len(schedule.fires_between(start, until, count)) >= count:
            return start
        span *= 2
    return after


def _paged(schedule: Schedule, start: datetime, end: datetime) -> Iterator[datetime]:
    """All fire times in ``(start, end]``, fetched a page at a time."""
    while page := schedule.fires_between(start, end, _PAGE):
        yield from page
        start = page[-1]
