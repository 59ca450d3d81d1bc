"""Retry decisions and backoff (``scheduler.retries``)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from events.model import JobSpec, RunDeadLettered, RunRetryScheduled
from scheduler.retries import MAX_RETRY_DELAY, FailureKind, after_failure, backoff_delay
from scheduler.views import JobView, RunView

NOW = datetime(2026, 7, 1, 9, 0, 0, 500_250, tzinfo=UTC)
NOW_MS = datetime(2026, 7, 1, 9, 0, 0, 500_000, tzinfo=UTC)
HOUR = MAX_RETRY_DELAY.total_seconds()


def spec(**fields: Any) -> JobSpec:
    return JobSpec(name="j", type="shell", command="true", **fields)


def failed_run(attempt: int) -> RunView:
    return RunView("run-1", "job-1", "failing", "schedule", attempt, NOW, "corr-1")


# --- backoff -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "attempt", "low", "high"),
    [
        # exponential, default 1 s: 1 s, 2 s, 4 s, 8 s ... within +-10 %
        ({}, 1, 0.9, 1.1),
        ({}, 2, 1.8, 2.2),
        ({}, 3, 3.6, 4.4),
        ({}, 4, 7.2, 8.8),
        ({"retry_delay": 5.0}, 3, 18.0, 22.0),
        # the doubling stops at an hour, the jitter goes on...
        ({}, 12, 0.9 * 2048, 1.1 * 2048),
        ({}, 13, 0.9 * HOUR, 1.1 * HOUR),
        ({}, 10_000, 0.9 * HOUR, 1.1 * HOUR),
        # ...unless the base delay alone is longer
        ({"retry_delay": 7200.0}, 1, 6480.0, 7920.0),
        ({"retry_delay": 7200.0}, 5, 6480.0, 7920.0),
        # fixed: exactly the delay, every time
        ({"retry_backoff": "fixed", "retry_delay": 5.0}, 1, 5.0, 5.0),
        ({"retry_backoff": "fixed", "retry_delay": 5.0}, 9, 5.0, 5.0),
        ({"retry_backoff": "fixed", "retry_delay": 0.0}, 1, 0.0, 0.0),
    ],
)
def test_given_backoff_when_delay_then_within_jitter_bounds(
    fields: dict[str, Any], attempt: int, low: float, high: float
) -> None:
    delays = {backoff_delay(spec(**fields), attempt, random.Random(seed)) for seed in range(200)}

    assert all(timedelta(seconds=low) <= d <= timedelta(seconds=high) for d in delays)
    assert all(d % timedelta(milliseconds=1) == timedelta(0) for d in delays)
    assert (len(delays) > 1) is (low < high)  # jittered, except fixed delays


def test_given_seeded_rng_when_delay_then_reproducible() -> None:
    expected = timedelta(milliseconds=round(4000 * random.Random(42).uniform(0.9, 1.1)))

    assert backoff_delay(spec(), 3, random.Random(42)) == expected


def test_given_attempt_zero_when_delay_then_refused() -> None:
    with pytest.raises(ValueError, match="attempt must be >= 1"):
        backoff_delay(spec(), 0, random.Random(1))


# --- retry or dead letter ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "attempt", "kind", "exit_code", "expected"),
    [
        # retries=3 means 4 attempts
        ({}, 1, "failed", 1, "retry"),
        ({}, 3, "failed", 1, "retry"),
        ({}, 4, "failed", 1, "failed on attempt 4; no retries left (retries=3)"),
        ({"retries": 0}, 1, "failed", 1, "failed on attempt 1; no retries left (retries=0)"),
        (
            {"retries": 1},
            2,
            "timed_out",
            None,
            "timed out on attempt 2; no retries left (retries=1)",
        ),
        ({"retries": 1}, 2, "lost", None, "was lost on attempt 2; no retries left (retries=1)"),
        # timeouts and lost runs are retried like failures
        ({}, 1, "timed_out", None, "retry"),
        ({}, 1, "lost", None, "retry"),
        # a non-retryable exit code ends it at once
        (
            {"non_retryable_exit_codes": (2, 64)},
            1,
            "failed",
            64,
            "exit code 64 is not retryable (attempt 1)",
        ),
        ({"non_retryable_exit_codes": (2,)}, 1, "failed", 1, "retry"),
        ({"non_retryable_exit_codes": (2,)}, 1, "timed_out", None, "retry"),
    ],
)
def test_given_failed_attempt_when_after_failure_then_retry_or_dead_letter(
    fields: dict[str, Any], attempt: int, kind: FailureKind, exit_code: int | None, expected: str
) -> None:
    job = JobView("job-1", spec(**fields), NOW)

    [event] = after_failure(
        failed_run(attempt), job, NOW, random.Random(1), kind=kind, exit_code=exit_code
    )

    if expected == "retry":
        assert isinstance(event.payload, RunRetryScheduled)
        assert event.payload.next_attempt == attempt + 1
    else:
        assert event.payload == RunDeadLettered(reason=expected, attempts=attempt)
    assert (event.run_id, event.attempt, event.correlation_id) == ("run-1", attempt, "corr-1")


def test_given_retry_when_scheduled_then_at_now_plus_jittered_delay() -> None:
    job = JobView("job-1", spec(), NOW)

    [event] = after_failure(failed_run(2), job, NOW, random.Random(42), kind="failed")

    delay = backoff_delay(job.spec, 2, random.Random(42))
    assert event.payload == RunRetryScheduled(
        next_attempt=3, retry_at=NOW_MS + delay, delay_ms=delay // timedelta(milliseconds=1)
    )
    assert event.occurred_at == NOW_MS


def test_given_deleted_job_when_after_failure_then_dead_lettered() -> None:
    [event] = after_failure(failed_run(1), None, NOW, random.Random(1), kind="failed")

    assert event.payload == RunDeadLettered(reason="job deleted", attempts=1)
