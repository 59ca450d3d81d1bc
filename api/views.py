"""Read-model values turned into response bodies."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime

from api.schemas import EventOut, JobOut
from events.schedules import parse_schedule
from projector.job_projection import JobRow
from projector.queries import EventEntry
from projector.rows import schedule_type


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 in UTC with a Z; milliseconds only when there are any."""
    if moment is None:
        return None
    spec = "seconds" if moment.microsecond == 0 else "milliseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def next_run(job: JobRow, now: datetime) -> datetime | None:
    if not job.spec.enabled:
        return None
    try:
        return parse_schedule(job.spec.schedule, job.spec.timezone).next_fire(now)
    except ValueError:
        return None


def job_out(job: JobRow, names: Mapping[str, str], now: datetime) -> JobOut:
    """``names`` maps dependency ids to names; a vanished dependency shows its id."""
    spec = job.spec
    typed: dict[str, object] = {}
    if spec.type == "python":
        typed["function"] = spec.function
    elif spec.type == "shell":
        typed["command"] = list(spec.argv) if spec.argv is not None else spec.command
    else:
        typed.update(url=spec.url, method=spec.method, headers=dict(spec.headers), body=spec.body)
    return JobOut(
        id=job.id,
        name=spec.name,
        type=spec.type,
        description=spec.description,
        schedule=spec.schedule,
        schedule_type=schedule_type(spec.schedule, spec.timezone),
        timezone=spec.timezone,
        parameters=spec.parameters,
        tags=list(spec.tags),
        depends_on=[names.get(dep, dep) for dep in spec.depends_on],
        timeout=spec.timeout,
        retries=spec.retries,
        retry_delay=spec.retry_delay,
        retry_backoff=spec.retry_backoff,
        max_concurrency=spec.max_concurrency,
        concurrency_policy=spec.concurrency_policy,
        priority=spec.priority,
        queue=spec.queue,
        enabled=spec.enabled,
        catchup=spec.catchup,
        non_retryable_exit_codes=list(spec.non_retryable_exit_codes),
        status="active" if spec.enabled else "paused",
        next_run=iso(next_run(job, now)),
        created_at=iso(job.created_at) or "",
        updated_at=iso(job.updated_at) or "",
        version=job.version,
        **typed,  # type: ignore[arg-type]
    )


def event_out(entry: EventEntry) -> EventOut:
    return EventOut(**{**dataclasses.asdict(entry), "occurred_at": iso(entry.occurred_at)})
