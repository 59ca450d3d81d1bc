"""Retries: after an attempt fails, times out or is lost, retry it later or give up.

Rules:

- The rule decides ``failing`` runs: their attempt failed, timed out or was lost.
- A job makes at most ``retries + 1`` attempts: attempt ``n`` (1-based) is retried when
  ``n <= retries``, unless the worker said another attempt cannot help
  (``RunFailed.retryable`` false: job code that cannot load, a refused URL), or its exit
  code is in ``non_retryable_exit_codes``. A non-retryable failure is dead-lettered at
  once with the reason ``not retryable: <error>``.
- A retry is ``RunRetryScheduled(next_attempt=n + 1, retry_at, delay_ms)``; the run waits
  in ``retrying`` until ``concurrency.due_retries`` queues it.
- Otherwise the run is ``RunDeadLettered(reason, attempts=n)`` (-> ``failed``, for good);
  the loop then calls ``dependencies.on_dead_letter`` for it.
- Delays (``backoff_delay``): ``fixed`` waits ``retry_delay`` exactly. ``exponential`` waits
  ``retry_delay * 2 ** (n - 1)`` (1 s, 2 s, 4 s, 8 s ... for the default 1 s) times a
  uniform jitter factor in ``[0.9, 1.1]``, so retries of jobs that failed together spread
  out while the doubling stays recognisable. The doubling stops at ``MAX_RETRY_DELAY``
  (1 h, or ``retry_delay`` if that is longer); the jitter still applies there, so capped
  retries wait 54 to 66 minutes rather than all firing on the same second.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Final, Literal, TypeAlias

from events.model import Event, JobSpec, RunDeadLettered, RunRetryScheduled
from scheduler.envelope import occurred_at, run_event
from scheduler.views import JobView, RunView

FailureKind: TypeAlias = Literal["failed", "timed_out", "lost"]

MAX_RETRY_DELAY: Final = timedelta(hours=1)
RETRY_JITTER: Final = 0.1
"""Exponential delays are multiplied by a uniform factor in ``1 +- RETRY_JITTER``."""

_MAX_DOUBLINGS: Final = 64  # far past any cap; keeps 2 ** n a sane float
_MAX_QUOTED_ERROR: Final = 1000  # characters of the error a dead-letter reason quotes
_FAILURE_WORDS: Final[dict[FailureKind, str]] = {
    "failed": "failed",
    "timed_out": "timed out",
    "lost": "was lost",
}


def backoff_delay(spec: JobSpec, attempt: int, rng: random.Random) -> timedelta:
    """Return how long to wait before the attempt after ``attempt`` (whole milliseconds)."""
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    if spec.retry_backoff == "fixed":
        seconds = spec.retry_delay
    else:
        cap = max(MAX_RETRY_DELAY.total_seconds(), spec.retry_delay)
        grown = spec.retry_delay * 2.0 ** min(attempt - 1, _MAX_DOUBLINGS)
        seconds = min(grown, cap) * rng.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER)
    return timedelta(milliseconds=round(seconds * 1000))


def after_failure(
    run: RunView,
    job: JobView | None,
    now: datetime,
    rng: random.Random,
    *,
    kind: FailureKind,
    exit_code: int | None = None,
    retryable: bool = True,
    error: str | None = None,
) -> list[Event]:
    """Decide what follows attempt ``run.attempt`` ending as ``kind``: a retry or a dead letter.

    Args:
        run: the run, status ``failing``, ``attempt`` the attempt that just ended.
        job: its job; None if the job was deleted (then the run is dead-lettered).
        kind: how the attempt ended (the read model's ``outcome``).
        exit_code: the attempt's exit code, if it had one.
        retryable: False when the worker reported that no attempt can succeed.
        error: the attempt's error, quoted by a non-retryable dead letter.
    """
    if job is None:
        return [_dead_letter(run, "job deleted", now)]
    if not retryable:
        return [_dead_letter(run, f"not retryable: {_quoted(error)}", now)]
    reason = _dead_letter_reason(run, job.spec, kind, exit_code)
    if reason is not None:
        return [_dead_letter(run, reason, now)]
    delay = backoff_delay(job.spec, run.attempt, rng)
    retry = RunRetryScheduled(
        next_attempt=run.attempt + 1,
        retry_at=occurred_at(now) + delay,
        delay_ms=delay // timedelta(milliseconds=1),
    )
    return [run_event(retry, run, now)]


def _dead_letter(run: RunView, reason: str, now: datetime) -> Event:
    return run_event(RunDeadLettered(reason=reason, attempts=run.attempt), run, now)


def _dead_letter_reason(
    run: RunView, spec: JobSpec, kind: FailureKind, exit_code: int | None
) -> str | None:
    """Why the run may not be retried, or None if it may."""
    if exit_code is not None and exit_code in spec.non_retryable_exit_codes:
        return f"exit code {exit_code} is not retryable (attempt {run.attempt})"
    if run.attempt > spec.retries:
        return (
            f"{_FAILURE_WORDS[kind]} on attempt {run.attempt}; no retries left "
            f"(retries={spec.retries})"
        )
    return None


def _quoted(error: str | None) -> str:
    if not error:
        return "no error given"
    if len(error) <= _MAX_QUOTED_ERROR:
        return error
    return error[: _MAX_QUOTED_ERROR - 1] + "…"
