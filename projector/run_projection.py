"""Pure projection of run events: ``(current run, event) -> new run | rejection``.

This is where the exactly-once promise is kept on the read side: a start or an outcome
that no longer applies (another attempt is current, a newer lease token took over, the
attempt already ended, the run was cancelled) is rejected and recorded, never applied.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from functools import singledispatch
from typing import Any, Final, Literal, TypeAlias

from events.model import (
    RUN_PAYLOADS,
    Event,
    Payload,
    RunCancelled,
    RunCancelRequested,
    RunDeadLettered,
    RunFailed,
    RunLost,
    RunQueued,
    RunRequested,
    RunRetryRequested,
    RunRetryScheduled,
    RunSkipped,
    RunStarted,
    RunSucceeded,
    RunTimedOut,
)
from projector.fold import evolve
from projector.job_projection import Rejected

RunStatus: TypeAlias = Literal[
    "pending",
    "queued",
    "running",
    "failing",
    "retrying",
    "completed",
    "failed",
    "cancelled",
    "skipped",
]
# ``failing``: an attempt failed, timed out or was lost, and the scheduler has yet to
# choose between a retry (``retrying``) and the final failure (``failed``). It is open,
# so a client never sees ``failed`` before the run has failed for good.
OPEN: Final = frozenset({"pending", "queued", "running", "failing", "retrying"})
TERMINAL: Final = frozenset({"completed", "failed", "cancelled", "skipped"})

RUN_EVENTS: Final = RUN_PAYLOADS


@dataclass(frozen=True, slots=True)
class AttemptRow:
    attempt: int
    status: str  # queued, running, succeeded, failed, timed_out, lost, cancelled
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    worker_id: str | None = None
    lease_token: int | None = None
    exit_code: int | None = None
    error: str | None = None
    duration_ms: int | None = None


@dataclass(frozen=True, slots=True)
class RunRow:
    id: str
    job_id: str
    status: RunStatus
    trigger: str
    attempt: int
    requested_at: datetime
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    correlation_id: str | None = None
    idempotency_key: str | None = None
    upstream_run_id: str | None = None
    scheduled_for: datetime | None = None
    queue: str | None = None
    priority: int = 0
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    next_retry_at: datetime | None = None
    worker_id: str | None = None
    lease_token: int | None = None
    outcome: str | None = None  # the latest attempt's ending: succeeded, failed, timed_out ...
    retryable: bool = True  # False: the latest attempt failed in a way no retry can mend
    exit_code: int | None = None
    error: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    result: Any = None
    duration_ms: int | None = None
    reason: str | None = None  # why it was skipped, cancelled or dead-lettered
    dead_lettered: bool = False
    cancel_requested: bool = False
    traceparent: str | None = None  # W3C trace context of the request (tracing on)
    attempts: tuple[AttemptRow, ...] = ()

    def current_attempt(self) -> AttemptRow | None:
        return (
            self.attempts[-1]
            if self.attempts and self.attempts[-1].attempt == self.attempt
            else None
        )


RunOutcome: TypeAlias = RunRow | Rejected


def apply_run_event(current: RunRow | None, event: Event) -> RunOutcome:
    """Fold one run event into its run's row (all of a run's events share a partition)."""
    if not isinstance(event.payload, RunRequested) and current is None:
        return Rejected(f"run {event.run_id} does not exist")
    return _apply(event.payload, current, event)


@singledispatch
def _apply(payload: Payload, run: RunRow | None, event: Event) -> RunOutcome:
    raise TypeError(f"{type(payload).__name__} is not a run event")


@_apply.register
def _requested(payload: RunRequested, run: RunRow | None, event: Event) -> RunOutcome:
    if run is not None:
        return Rejected(f"run {run.id} was already requested")
    assert event.run_id is not None and event.job_id is not None
    return RunRow(
        id=event.run_id,
        job_id=event.job_id,
        status="pending",
        trigger=payload.trigger,
        attempt=event.attempt or 1,
        requested_at=event.occurred_at,
        parameters=payload.parameters,
        correlation_id=event.correlation_id,
        idempotency_key=payload.idempotency_key,
        upstream_run_id=payload.upstream_run_id,
        scheduled_for=payload.scheduled_for,
        traceparent=payload.traceparent,
    )


@_apply.register
def _queued(payload: RunQueued, run: RunRow | None, event: Event) -> RunOutcome:
    assert run is not None
    if run.status not in ("pending", "retrying"):
        return Rejected(f"run {run.id} is {run.status}, not waiting to be queued")
    attempt = event.attempt or run.attempt
    return evolve(
        run,
        status="queued",
        attempt=attempt,
        queue=payload.queue,
        priority=payload.priority,
        queued_at=event.occurred_at,
        next_retry_at=None,
        attempts=(*run.attempts, AttemptRow(attempt, "queued", queued_at=event.occurred_at)),
    )


@_apply.register
def _skipped(payload: RunSkipped, run: RunRow | None, event: Event) -> RunOutcome:
    assert run is not None
    if run.status not in ("pending", "retrying"):
        return Rejected(f"run {run.id} is {run.status}, too late to skip")
    return evolve(
        run,
        status="skipped",
        reason=payload.reason,
        error=payload.detail,
        finished_at=event.occurred_at,
    )


@_apply.register
def _started(payload: RunStarted, run: RunRow | None, event: Event) -> RunOutcome:
    assert run is not None
    if stale := _stale_attempt(run, event, expect="queued"):
        return stale
    attempt = evolve(
        _current(run),
        status="running",
        started_at=event.occurred_at,
        worker_id=payload.worker_id,
        lease_token=payload.lease_token,
    )
    return evolve(
        run,
        status="running",
        started_at=event.occurred_at,
        worker_id=payload.worker_id,
        lease_token=payload.lease_token,
        attempts=(*run.attempts[:-1], attempt),
    )


@_apply.register
def _succeeded(payload: RunSucceeded, run: RunRow | None, event: Event) -> RunOutcome:
    assert run is not None
    if stale := _stale_outcome(run, event, payload.lease_token):
        return stale
    ended = _end(
        run,
        event,
        "succeeded",
        "completed",
        exit_code=payload.exit_code,
        duration_ms=payload.duration_ms,
    )
    return evolve(ended, stdout=payload.stdout, stderr=payload.stderr, result=payload.result)


@_apply.register
def _failed(payload: RunFailed, run: RunRow | None, event: Event) -> RunOutcome:
    assert run is not None
    if stale := _stale_outcome(run, event, payload.lease_token):
        return stale
    ended = _end(
        run,
        event,
        "failed",
        "failing",
        exit_code=payload.exit_code,
        error=payload.error,
        duration_ms=payload.duration_ms,
    )
    return evolve(ended, stdout=payload.stdout, stderr=payload.stderr, retryable=payload.retryable)


@_apply.register
def _timed_out(payload: RunTimedOut, run: RunRow | None, event: Event) -> RunOutcome:
    assert run is not None
    if stale := _stale_outcome(run, event, payload.lease_token):
        return stale
    error = f"timed out after {payload.timeout:g} s"
    ended = _end(run, event, "timed_out", "failing", error=error, duration_ms=payload.duration_ms)
    return evolve(ended, stdout=payload.stdout, stderr=payload.stderr)


@_apply.register
def _lost(payload: RunLost, run: RunRow | None, event: Event) -> RunOutcome:
    assert run is not None
    if stale := _stale_outcome(run, event, payload.lease_token):
        return stale
    return _end(run, event, "lost", "failing", error=f"lost: {payload.reason}")


@_apply.register
def _cancelled(payload: RunCancelled, run: RunRow | None, event: Event) -> RunOutcome:
    assert run is not None
    if stale := _stale_cancel(payload, run, event):
        return stale
    ended = _cancel(payload, run, event)
    if isinstance(ended, Rejected):
        return ended
    return evolve(
        ended,
        reason=payload.reason or "cancelled",
        stdout=payload.stdout or ended.stdout,
        stderr=payload.stderr or ended.stderr,
    )


def _stale_cancel(payload: RunCancelled, run: RunRow, event: Event) -> Rejected | None:
    if event.attempt is None or event.attempt == run.attempt:
        return None
    # A cancel by the API or the scheduler (no lease token) of a run that was failing when
    # it was sent, and that the scheduler moved to its next attempt in the meantime: the
    # run waits, nobody holds it, and the cancel still means it.
    if payload.lease_token is None and run.status == "retrying" and event.attempt < run.attempt:
        return None
    # E.g. a worker that lost its lease stopped attempt 1 after attempt 2 was queued.
    return Rejected(
        f"stale: attempt {event.attempt} of run {run.id}, current attempt is {run.attempt}"
    )


def _cancel(payload: RunCancelled, run: RunRow, event: Event) -> RunOutcome:
    """The run, cancelled in whatever status it was in, before reason and output."""
    if run.status == "running" and (stale := _stale_outcome(run, event, payload.lease_token)):
        return stale
    if run.status in ("running", "queued"):  # queued: taken off the queue before any worker had it
        return _end(run, event, "cancelled", "cancelled")
    if run.status in ("pending", "retrying"):
        return evolve(run, status="cancelled", outcome="cancelled", finished_at=event.occurred_at)
    if run.status == "failing":
        return _cancel_failing(payload, run, event)
    return Rejected(f"run {run.id} is {run.status}, nothing to cancel")


def _cancel_failing(payload: RunCancelled, run: RunRow, event: Event) -> RunOutcome:
    """The attempt has ended and no worker holds the run; its outcome stays on the run."""
    if payload.lease_token is not None:
        return Rejected(f"stale: run {run.id} attempt {run.attempt} has already ended")
    return evolve(run, status="cancelled", finished_at=event.occurred_at)


@_apply.register
def _retry_scheduled(payload: RunRetryScheduled, run: RunRow | None, event: Event) -> RunOutcome:
    assert run is not None
    if run.status != "failing":
        return Rejected(f"run {run.id} is {run.status}, only failing runs are retried")
    return _next_attempt(run, payload.next_attempt, payload.retry_at)


@_apply.register
def _retry_requested(payload: RunRetryRequested, run: RunRow | None, event: Event) -> RunOutcome:
    assert run is not None
    if run.status != "failed":
        return Rejected(f"run {run.id} is {run.status}, only failed runs are retried by hand")
    reopened = _next_attempt(run, payload.next_attempt, event.occurred_at)
    if isinstance(reopened, Rejected):
        return reopened
    return evolve(reopened, reason=payload.reason)


def _next_attempt(run: RunRow, next_attempt: int, retry_at: datetime) -> RunOutcome:
    """The run waiting (``retrying``) for attempt ``next_attempt`` until ``retry_at``."""
    if next_attempt != run.attempt + 1:
        return Rejected(
            f"run {run.id}: retry of attempt {next_attempt - 1}, current is {run.attempt}"
        )
    return evolve(
        run,
        status="retrying",
        attempt=next_attempt,
        next_retry_at=retry_at,
        dead_lettered=False,
        finished_at=None,
    )


@_apply.register
def _dead_lettered(payload: RunDeadLettered, run: RunRow | None, event: Event) -> RunOutcome:
    assert run is not None
    if run.status != "failing":
        return Rejected(f"run {run.id} is {run.status}, only failing runs are dead-lettered")
    # The only way into ``failed``: the scheduler has given up on the run.
    return evolve(run, status="failed", dead_lettered=True, reason=payload.reason)


@_apply.register
def _cancel_requested(payload: RunCancelRequested, run: RunRow | None, event: Event) -> RunOutcome:
    assert run is not None
    if run.status in TERMINAL:
        return Rejected(f"run {run.id} is {run.status}, nothing to cancel")
    return evolve(run, cancel_requested=True, reason=payload.reason)


# --- helpers -----------------------------------------------------------------------


def _current(run: RunRow) -> AttemptRow:
    attempt = run.current_attempt()
    assert attempt is not None, f"run {run.id} has no attempt {run.attempt}"
    return attempt


def _stale_attempt(run: RunRow, event: Event, expect: str) -> Rejected | None:
    attempt = event.attempt or run.attempt
    if attempt != run.attempt:
        return Rejected(
            f"stale: attempt {attempt} of run {run.id}, current attempt is {run.attempt}"
        )
    if run.status != expect:
        return Rejected(f"stale: run {run.id} attempt {attempt} is {run.status}, not {expect}")
    return None


def _stale_outcome(run: RunRow, event: Event, token: int | None) -> Rejected | None:
    """An outcome applies to the current, running attempt, from its lease holder."""
    if stale := _stale_attempt(run, event, expect="running"):
        return stale
    if token is not None and run.lease_token is not None and token != run.lease_token:
        return Rejected(
            f"stale: lease token {token} of run {run.id}, current token is {run.lease_token}"
        )
    return None


def _end(
    run: RunRow,
    event: Event,
    outcome: str,
    status: RunStatus,
    *,
    exit_code: int | None = None,
    error: str | None = None,
    duration_ms: int | None = None,
) -> RunRow:
    attempt = evolve(
        _current(run),
        status=outcome,
        finished_at=event.occurred_at,
        exit_code=exit_code,
        error=error,
        duration_ms=duration_ms,
    )
    return evolve(
        run,
        status=status,
        outcome=outcome,
        retryable=True,
        finished_at=event.occurred_at,
        exit_code=exit_code,
        error=error,
        duration_ms=duration_ms,
        attempts=(*run.attempts[:-1], attempt),
    )
