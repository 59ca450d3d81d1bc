"""Read-model values turned into response bodies."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime

from api.schemas import AttemptOut, EventOut, JobOut, RunOut, WorkerOut
from api.secret_refs import join_headers
from leases.port import Lease
from projector.api_reads import EventEntry, WorkerSummary, schedule_type
from projector.job_projection import JobRow
from projector.run_projection import AttemptRow, RunRow
from timing import job_timing
from timing.job_timing import JobStatus


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 in UTC with a Z; milliseconds only when there are any."""
    if moment is None:
        return None
    spec = "seconds" if moment.microsecond == 0 else "milliseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def next_run(job: JobRow, now: datetime) -> datetime | None:
    spec = job.spec
    return job_timing.next_run(spec.schedule, spec.timezone, spec.enabled, now)


def job_status(job: JobRow, last_fire_at: datetime | None) -> JobStatus:
    """``paused``, ``done`` (a one-time job that fired) or ``active``: ``timing.job_timing``."""
    spec = job.spec
    return job_timing.job_status(spec.schedule, spec.timezone, spec.enabled, last_fire_at)


def job_out(
    job: JobRow, names: Mapping[str, str], now: datetime, last_fire_at: datetime | None = None
) -> JobOut:
    """``names`` maps dependency ids to names; a vanished dependency shows its id.
    ``last_fire_at``: the job's latest fire requested by its schedule (``job_status``)."""
    spec = job.spec
    typed: dict[str, object] = {}
    if spec.type == "python":
        typed.update(function=spec.function, pool=spec.pool)
    elif spec.type == "shell":
        typed["command"] = list(spec.argv) if spec.argv is not None else spec.command
    else:
        body = spec.body if spec.body is not None else spec.json_body
        typed.update(
            url=spec.url,
            method=spec.method,
            headers=join_headers(spec.headers, spec.secret_headers),
            body=body,
        )
    return JobOut(
        id=job.id,
        name=spec.name,
        type=spec.type,
        description=spec.description,
        schedule=spec.schedule,
        schedule_type=schedule_type(spec.schedule, spec.timezone),
        timezone=spec.timezone,
        parameters=spec.parameters,
        parameters_schema=spec.parameters_schema,
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
        status=job_status(job, last_fire_at),
        paused_reason=job.paused_reason,
        next_run=iso(next_run(job, now)),
        created_at=iso(job.created_at) or "",
        updated_at=iso(job.updated_at) or "",
        version=job.version,
        **typed,  # type: ignore[arg-type]
    )


def event_out(entry: EventEntry) -> EventOut:
    return EventOut(**{**dataclasses.asdict(entry), "occurred_at": iso(entry.occurred_at)})


def _seconds(ms: int | None, start: datetime | None, end: datetime | None) -> float | None:
    if ms is not None:
        return ms / 1000
    if start is not None and end is not None:
        return (end - start).total_seconds()
    return None


def attempt_out(attempt: AttemptRow) -> AttemptOut:
    return AttemptOut(
        attempt=attempt.attempt,
        status=attempt.status,
        worker=attempt.worker_id,
        lease_token=attempt.lease_token,
        queued_at=iso(attempt.queued_at),
        started_at=iso(attempt.started_at),
        finished_at=iso(attempt.finished_at),
        duration=_seconds(attempt.duration_ms, attempt.started_at, attempt.finished_at),
        exit_code=attempt.exit_code,
        error=attempt.error,
    )


def run_out(run: RunRow, job_name: str | None) -> RunOut:
    return RunOut(
        id=run.id,
        job_id=run.job_id,
        job_name=job_name,
        status=run.status,
        trigger=run.trigger,
        attempt=run.attempt,
        worker=run.worker_id,
        parameters=run.parameters,
        correlation_id=run.correlation_id,
        upstream_run_id=run.upstream_run_id,
        idempotency_key=run.idempotency_key,
        scheduled_for=iso(run.scheduled_for),
        requested_at=iso(run.requested_at) or "",
        queued_at=iso(run.queued_at),
        started_at=iso(run.started_at),
        finished_at=iso(run.finished_at),
        next_retry_at=iso(run.next_retry_at),
        duration=_seconds(run.duration_ms, run.started_at, run.finished_at),
        exit_code=run.exit_code,
        output=run.stdout,
        stderr=run.stderr,
        error=run.error,
        result=run.result,
        reason=run.reason,
        dead_lettered=run.dead_lettered,
        cancel_requested=run.cancel_requested,
        attempts=[attempt_out(a) for a in run.attempts],
    )


def worker_out(summary: WorkerSummary, heartbeat: Lease | None) -> WorkerOut:
    """``heartbeat``: the worker's live heartbeat lease, if it has one."""
    worker = summary.worker
    beat = heartbeat.renewed_at if heartbeat is not None else None
    return WorkerOut(
        id=worker.id,
        tags=list(worker.tags),
        concurrency=worker.concurrency,
        active_jobs=summary.active_jobs,
        status=worker.status,
        alive=heartbeat is not None,
        hostname=worker.hostname,
        pid=worker.pid,
        registered_at=iso(worker.registered_at) or "",
        last_heartbeat_at=None if beat is None else iso(datetime.fromtimestamp(beat, UTC)),
    )
