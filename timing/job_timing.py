"""A job's status and fire times, from its schedule (``timing.schedules``): what the API
and the dashboard show of a job. Pure: the caller gives ``now``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypeAlias

from timing.schedules import parse_schedule

JobStatus: TypeAlias = Literal["active", "paused", "done"]


def next_fires(schedule: str | None, timezone: str, now: datetime, count: int) -> list[datetime]:
    """The schedule's next ``count`` fire times after ``now`` (fewer if it stops), in UTC."""
    try:
        parsed = parse_schedule(schedule, timezone)
    except ValueError:  # validated at the API; only a future syntax could land here
        return []
    fires: list[datetime] = []
    after = now
    while len(fires) < count and (fire := parsed.next_fire(after)) is not None:
        fires.append(fire)
        after = fire
    return fires


def next_run(schedule: str | None, timezone: str, enabled: bool, now: datetime) -> datetime | None:
    """When the job fires next; a paused job does not."""
    fires = next_fires(schedule, timezone, now, 1) if enabled else []
    return fires[0] if fires else None


def job_status(
    schedule: str | None, timezone: str, enabled: bool, last_fire_at: datetime | None
) -> JobStatus:
    """``paused``; ``done`` for a one-time job whose fire was requested; else ``active``.

    ``last_fire_at`` is the latest fire time the job's schedule requested a run for. A
    one-time job is done when no fire time of its schedule is left after it (a job moved
    to a later time after it fired is active again).
    """
    if not enabled:
        return "paused"
    if last_fire_at is None:
        return "active"
    try:
        parsed = parse_schedule(schedule, timezone)
    except ValueError:
        return "active"
    done = parsed.kind == "once" and parsed.next_fire(last_fire_at) is None
    return "done" if done else "active"
