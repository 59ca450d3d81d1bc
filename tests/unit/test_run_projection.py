"""The run lifecycle as a fold, and the fencing of stale starts and outcomes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from events.model import (
    Event,
    RunCancelled,
    RunCancelRequested,
    RunDeadLettered,
    RunFailed,
    RunLost,
    RunQueued,
    RunRequested,
    RunRetryScheduled,
    RunSkipped,
    RunStarted,
    RunSucceeded,
    RunTimedOut,
)
from projector.job_projection import Rejected
from projector.run_projection import apply_run_event
from tests.run_events import T0, ev, fold

REQUESTED = ev(RunRequested(trigger="manual", parameters={"x": 1}))
QUEUED = ev(RunQueued(queue="default", priority=5), second=1)
STARTED = ev(RunStarted(worker_id="w1", lease_token=7), second=2)


def test_a_successful_run() -> None:
    ok = ev(
        RunSucceeded(
            worker_id="w1",
            lease_token=7,
            duration_ms=1500,
            exit_code=0,
            stdout="done",
            result={"n": 1},
        ),
        second=4,
    )
    run = fold(REQUESTED, QUEUED, STARTED, ok)
    assert (run.status, run.outcome, run.worker_id, run.lease_token) == (
        "completed",
        "succeeded",
        "w1",
        7,
    )
    assert (run.requested_at, run.queued_at, run.started_at, run.finished_at) == (
        T0,
        T0 + timedelta(seconds=1),
        T0 + timedelta(seconds=2),
        T0 + timedelta(seconds=4),
    )
    assert (run.stdout, run.result, run.duration_ms, run.parameters) == (
        "done",
        {"n": 1},
        1500,
        {"x": 1},
    )
    assert [(a.attempt, a.status, a.worker_id) for a in run.attempts] == [(1, "succeeded", "w1")]


def test_failure_retry_then_success_keeps_every_attempt() -> None:
    failed = ev(
        RunFailed(worker_id="w1", lease_token=7, duration_ms=10, error="exit code 1", exit_code=1),
        second=3,
    )
    retry = ev(
        RunRetryScheduled(next_attempt=2, retry_at=T0 + timedelta(seconds=5), delay_ms=2000),
        second=3,
    )
    run = fold(REQUESTED, QUEUED, STARTED, failed, retry)
    assert (run.status, run.attempt, run.next_retry_at) == (
        "retrying",
        2,
        T0 + timedelta(seconds=5),
    )
    requeued = ev(RunQueued(queue="default"), attempt=2, second=5)
    started = ev(RunStarted(worker_id="w2", lease_token=9), attempt=2, second=6)
    ok = ev(RunSucceeded(worker_id="w2", lease_token=9, duration_ms=5), attempt=2, second=7)
    run = fold(REQUESTED, QUEUED, STARTED, failed, retry, requeued, started, ok)
    assert run.status == "completed"
    assert [(a.attempt, a.status, a.exit_code) for a in run.attempts] == [
        (1, "failed", 1),
        (2, "succeeded", None),
    ]


def test_dead_letter_after_the_last_failure() -> None:
    timed_out = ev(RunTimedOut(timeout=2.0, worker_id="w1", lease_token=7), second=5)
    run = fold(
        REQUESTED,
        QUEUED,
        STARTED,
        timed_out,
        ev(RunDeadLettered(reason="no retries left", attempts=1), second=5),
    )
    assert (run.status, run.outcome, run.dead_lettered, run.error) == (
        "failed",
        "timed_out",
        True,
        "timed out after 2 s",
    )


@pytest.mark.parametrize(
    ("history", "late", "reason"),
    [
        # a frozen worker's outcome after its lease was taken over: fenced by the token
        (
            [
                REQUESTED,
                QUEUED,
                STARTED,
                ev(RunLost(reason="lease expired", lease_token=7), second=40),
                ev(RunRetryScheduled(next_attempt=2, retry_at=T0, delay_ms=0), second=40),
                ev(RunQueued(queue="default"), attempt=2, second=41),
                ev(RunStarted(worker_id="w2", lease_token=12), attempt=2, second=42),
            ],
            ev(RunSucceeded(worker_id="w1", lease_token=7, duration_ms=1), attempt=1, second=50),
            "stale: attempt 1",
        ),
        # a worker that lost its lease stops attempt 1 after attempt 2 was queued
        (
            [
                REQUESTED,
                QUEUED,
                STARTED,
                ev(RunLost(reason="lease expired", lease_token=7), second=40),
                ev(RunRetryScheduled(next_attempt=2, retry_at=T0, delay_ms=0), second=40),
                ev(RunQueued(queue="default"), attempt=2, second=41),
            ],
            ev(RunCancelled(reason="lease lost", worker_id="w1", lease_token=7), attempt=1),
            "stale: attempt 1",
        ),
        (
            [REQUESTED, QUEUED, STARTED],
            ev(RunSucceeded(worker_id="w9", lease_token=3, duration_ms=1), second=3),
            "stale: lease token 3",
        ),
        (
            [
                REQUESTED,
                QUEUED,
                STARTED,
                ev(RunSucceeded(worker_id="w1", lease_token=7, duration_ms=1), second=3),
            ],
            ev(RunFailed(worker_id="w1", lease_token=7, duration_ms=1, error="late"), second=4),
            "is completed, not running",
        ),
        (
            [REQUESTED, QUEUED, STARTED],
            ev(RunStarted(worker_id="w2", lease_token=8), second=3),
            "is running, not queued",
        ),
        ([REQUESTED], ev(RunRequested(trigger="schedule")), "already requested"),
        ([REQUESTED, QUEUED, STARTED], ev(RunSkipped(reason="overlap")), "too late to skip"),
        (
            [REQUESTED, ev(RunCancelled(reason="by user"))],
            ev(RunStarted(worker_id="w1", lease_token=7), second=3),
            "is cancelled, not queued",
        ),
    ],
)
def test_starts_and_outcomes_that_no_longer_apply_are_rejected(
    history: list[Event], late: Event, reason: str
) -> None:
    outcome = apply_run_event(fold(*history), late)
    assert isinstance(outcome, Rejected)
    assert reason in outcome.reason


def test_events_for_an_unknown_run_are_rejected() -> None:
    assert apply_run_event(None, QUEUED) == Rejected("run run-1 does not exist")


@pytest.mark.parametrize(
    ("history", "status"),
    [
        ([REQUESTED], "cancelled"),
        ([REQUESTED, QUEUED], "cancelled"),
        ([REQUESTED, QUEUED, STARTED], "cancelled"),
    ],
)
def test_cancel_from_each_open_state(history: list[Event], status: str) -> None:
    run = fold(
        *history,
        ev(RunCancelRequested(reason="by user"), second=3),
        ev(RunCancelled(reason="by user", lease_token=7), second=4),
    )
    assert (run.status, run.cancel_requested, run.reason) == (status, True, "by user")


def test_skipped_run_records_its_reason() -> None:
    run = fold(REQUESTED, ev(RunSkipped(reason="overlap", detail="run-0 is running"), second=1))
    assert (run.status, run.reason, run.finished_at) == (
        "skipped",
        "overlap",
        T0 + timedelta(seconds=1),
    )
