"""Schedule previews: a job's next fire times, or a schedule's before the job exists.

Both answer with ``timing.previews`` (the scheduler's own maths), each fire time in UTC
and in the schedule's timezone, with DST notes. A job without a schedule answers 200
with no fires and a ``reason``: asking is not a conflict, the answer is "never".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, NaiveDatetime
from sqlalchemy.orm import Session

from api.auth import VIEWER
from api.dependencies import Context
from api.errors import FieldProblem, Invalid, NotFound
from projector import api_reads
from timing.previews import EARLIEST_AFTER, LATEST_AFTER, MAX_PREVIEW, Preview, preview
from timing.schedules import InvalidSchedule, InvalidTimezone, Schedule, parse_schedule

router = APIRouter(tags=["schedules"])

NO_SCHEDULE = "the job has no schedule: it runs only when triggered"
PAUSED = "the job is paused: it fires at these times only if resumed before them"


class FireOut(BaseModel):
    at: datetime = Field(description="the fire time in UTC")
    local: datetime = Field(description="the same instant in the schedule's timezone")
    dst: Literal["shifted", "ambiguous"] | None = Field(
        None,
        description="shifted: the cron's wall time falls in a DST gap and fires at its end; "
        "ambiguous: the local time happens twice (fold says which occurrence)",
    )
    fold: int | None = Field(
        None, description="ambiguous only: 0 the first occurrence, 1 the second"
    )
    detail: str | None = None


class SkippedOut(BaseModel):
    wall_time: NaiveDatetime = Field(description="a local time a DST gap removes")
    detail: str


class PreviewOut(BaseModel):
    schedule: str | None = Field(description="the schedule, normalised")
    schedule_type: str
    timezone: str
    after: datetime
    fires: list[FireOut]
    skipped: list[SkippedOut] = Field(
        description="wall times a cron with '*' hours does not fire because a DST gap removes them"
    )
    reason: str | None = Field(
        None, description="why there are no fires, or why they may not happen"
    )


class PreviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schedule: str = Field(description="a cron expression, macro, 'every 5m', or an ISO time")
    timezone: str = "UTC"
    count: int = Field(10, ge=1, le=MAX_PREVIEW)
    after: AwareDatetime | NaiveDatetime | None = Field(
        None, description="list fire times after this (default: now); UTC if it has no offset"
    )


Count = Annotated[int, Query(ge=1, le=MAX_PREVIEW, description="how many fire times")]
After = Annotated[
    datetime | None,
    Query(description="list fire times after this ISO time (default: now); UTC without offset"),
]


@router.get("/api/jobs/{ref}/fires", dependencies=[VIEWER])
def job_fires(ref: str, ctx: Context, count: Count = 10, after: After = None) -> PreviewOut:
    """The job's next fire times, as its scheduler will fire them; ``ref`` is its id or name."""
    with Session(ctx.engine) as session:
        job = api_reads.find_job(session, ref)
    if job is None:
        raise NotFound(f"no job with id or name {ref!r}")
    start = _start(after, ctx.clock())
    schedule = _parsed(job.spec.schedule, job.spec.timezone)
    if schedule.kind == "none":
        return _answer(schedule, start, Preview([], []), NO_SCHEDULE)
    return _answer(
        schedule, start, preview(schedule, start, count), None if job.spec.enabled else PAUSED
    )


@router.post("/api/schedules/preview", dependencies=[VIEWER])
def schedule_preview(body: PreviewBody, ctx: Context) -> PreviewOut:
    """A schedule's next fire times in a timezone, before any job has it."""
    start = _start(body.after, ctx.clock())
    schedule = _parsed(body.schedule, body.timezone)
    if schedule.kind == "none":
        raise Invalid.of([FieldProblem("schedule", "empty: give a schedule to preview")])
    return _answer(schedule, start, preview(schedule, start, body.count), None)


def _parsed(expression: str | None, timezone: str) -> Schedule:
    try:
        return parse_schedule(expression, timezone)
    except InvalidTimezone as e:
        raise Invalid.of([FieldProblem("timezone", str(e))]) from e
    except InvalidSchedule as e:
        raise Invalid.of([FieldProblem("schedule", str(e))]) from e


def _start(after: datetime | None, now: datetime) -> datetime:
    """``after`` (UTC if it has no offset), else now; refused outside 1970..8999."""
    if after is None:
        return now
    start = after if after.tzinfo is not None else after.replace(tzinfo=UTC)
    try:
        in_range = EARLIEST_AFTER <= start < LATEST_AFTER
    except OverflowError:  # e.g. 0001-01-01T00:00+14:00 is before year 1 in UTC
        in_range = False
    if not in_range:
        raise Invalid.of([FieldProblem("after", "must be from 1970-01-01 to 8999-12-31 (UTC)")])
    return start


def _answer(schedule: Schedule, after: datetime, found: Preview, reason: str | None) -> PreviewOut:
    fires = [
        FireOut(at=f.at, local=f.local, dst=f.dst, fold=f.fold, detail=f.detail)
        for f in found.fires
    ]
    if not fires and reason is None:
        reason = "the schedule fires no more after this time"
    return PreviewOut(
        schedule=schedule.expression,
        schedule_type=schedule.kind,
        timezone=schedule.timezone,
        after=after,
        fires=fires,
        skipped=[SkippedOut(wall_time=s.wall_time, detail=s.detail) for s in found.skipped],
        reason=reason,
    )
