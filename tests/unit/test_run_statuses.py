"""Honest run statuses: ``failing`` between a bad attempt and the scheduler's decision,
``failed`` only for good, and only an operator's retry reopens a terminal run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.model import (
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
from projector.job_projection import Rejected
from projector.run_projection import OPEN, TERMINAL, RunRow, apply_run_event
from tests.run_events import T0, ev, fold


def rejected(run: RunRow, event: Event) -> str:
    outcome = apply_run_event(run, event)
    assert isinstance(outcome, Rejected), f"applied: {outcome}"
    return outcome.reason


RUNNING = (
    ev(RunRequested(trigger="manual")),
    ev(RunQueued(queue="default"), second=1),
    ev(RunStarted(worker_id="w1", lease_token=7), second=2),
)
FAILED = ev(
    RunFailed(worker_id="w1", lease_token=7, duration_ms=10, error="exit code 3", exit_code=3),
    second=3,
)
RETRY = ev(RunRetryScheduled(next_attempt=2, retry_at=T0, delay_ms=0), second=4)
DEAD = ev(RunDeadLettered(reason="no retries left", attempts=1), second=4)


@pytest.mark.parametrize(
    ("outcome", "attempt_status"),
    [
        (FAILED, "failed"),
        (ev(RunTimedOut(timeout=1, worker_id="w1", lease_token=7), second=3), "timed_out"),
        (ev(RunTimedOut(timeout=1), second=3), "timed_out"),  # the scheduler's backstop
        (ev(RunLost(reason="lease expired", lease_token=7), second=3), "lost"),
    ],
)
def test_a_bad_attempt_leaves_the_run_failing_and_the_attempt_with_its_own_status(
    outcome: Event, attempt_status: str
) -> None:
    run = fold(*RUNNING, outcome)
    assert (run.status, run.outcome, run.dead_lettered) == ("failing", attempt_status, False)
    assert [a.status for a in run.attempts] == [attempt_status]
    assert run.finished_at == T0 + timedelta(seconds=3)
    assert run.status in OPEN and run.status not in TERMINAL


def test_a_failing_run_is_retried_from_failing() -> None:
    run = fold(*RUNNING, FAILED, RETRY)
    assert (run.status, run.attempt, run.finished_at) == ("retrying", 2, None)


def test_failed_is_reached_only_through_the_dead_letter() -> None:
    run = fold(*RUNNING, FAILED, DEAD)
    assert (run.status, run.dead_lettered, run.reason, run.error) == (
        "failed",
        True,
        "no retries left",
        "exit code 3",
    )
    assert "only failing runs are retried" in rejected(run, RETRY)
    assert "only failing runs are dead-lettered" in rejected(run, DEAD)


@pytest.mark.parametrize("history", [RUNNING, (*RUNNING, FAILED, RETRY)])
def test_neither_retry_nor_dead_letter_applies_to_a_run_that_is_not_failing(
    history: tuple[Event, ...],
) -> None:
    run = fold(*history)
    assert "only failing runs" in rejected(run, RETRY)
    assert "only failing runs" in rejected(run, DEAD)


def test_an_operator_retry_reopens_a_failed_run_with_its_own_reason() -> None:
    dead = fold(*RUNNING, FAILED, DEAD)
    by_hand = ev(RunRetryRequested(next_attempt=2, reason="retried by hand"), 2, second=9)
    run = fold(*RUNNING, FAILED, DEAD, by_hand)
    assert (run.status, run.attempt, run.reason, run.dead_lettered) == (
        "retrying",
        2,
        "retried by hand",
        False,
    )
    assert dead.reason == "no retries left"


def test_an_operator_retry_of_a_failing_run_is_rejected() -> None:
    failing = fold(*RUNNING, FAILED)
    by_hand = ev(RunRetryRequested(next_attempt=2, reason="retried by hand"), 2, second=4)
    assert "only failed runs are retried by hand" in rejected(failing, by_hand)


def test_a_run_cancelled_while_failing_is_not_retried_afterwards() -> None:
    cancelled = fold(
        *RUNNING,
        FAILED,
        ev(RunCancelRequested(reason="stop"), second=4),
        ev(RunCancelled(reason="stop"), second=4),
    )
    assert (cancelled.status, cancelled.outcome, cancelled.reason) == (
        "cancelled",
        "failed",
        "stop",
    )
    assert "only failing runs are retried" in rejected(cancelled, RETRY)
    assert "only failing runs are dead-lettered" in rejected(cancelled, DEAD)


def test_a_cancel_sent_while_failing_still_applies_after_the_retry_was_scheduled() -> None:
    # The API read the run failing (attempt 1); the scheduler's retry landed first.
    run = fold(*RUNNING, FAILED, RETRY, ev(RunCancelled(reason="stop"), attempt=1, second=5))
    assert (run.status, run.reason) == ("cancelled", "stop")


def test_a_workers_cancel_of_an_attempt_that_already_failed_is_stale() -> None:
    failing = fold(*RUNNING, FAILED)
    late = ev(RunCancelled(reason="lease lost", worker_id="w1", lease_token=7), second=4)
    assert "has already ended" in rejected(failing, late)


@pytest.mark.parametrize("retryable", [True, False])
def test_the_run_keeps_whether_its_last_failure_can_be_retried(retryable: bool) -> None:
    failed = ev(
        RunFailed(
            worker_id="w1", lease_token=7, duration_ms=1, error="no module x", retryable=retryable
        ),
        second=3,
    )
    assert fold(*RUNNING, failed).retryable is retryable
    lost = ev(RunLost(reason="lease expired", lease_token=9), attempt=2, second=9)
    again = (
        ev(RunDeadLettered(reason="x", attempts=1), second=4),
        ev(RunRetryRequested(next_attempt=2), attempt=2, second=5),
        ev(RunQueued(queue="default"), attempt=2, second=6),
        ev(RunStarted(worker_id="w2", lease_token=9), attempt=2, second=7),
        lost,
    )
    assert fold(*RUNNING, failed, *again).retryable is True


# --- the property: terminal statuses stay terminal ---------------------------------------

_WORKERS = ("w1", "w2")
_TOKENS = st.integers(min_value=1, max_value=4)
_ATTEMPTS = st.integers(min_value=1, max_value=4)
_PAYLOADS: st.SearchStrategy[Payload] = st.one_of(
    st.builds(RunRequested, trigger=st.sampled_from(["manual", "schedule"])),
    st.builds(RunQueued, queue=st.just("default")),
    st.builds(RunSkipped, reason=st.sampled_from(["overlap", "paused"])),
    st.builds(RunStarted, worker_id=st.sampled_from(_WORKERS), lease_token=_TOKENS),
    st.builds(
        RunSucceeded,
        worker_id=st.sampled_from(_WORKERS),
        lease_token=_TOKENS,
        duration_ms=st.just(1),
    ),
    st.builds(
        RunFailed,
        worker_id=st.sampled_from(_WORKERS),
        lease_token=_TOKENS,
        duration_ms=st.just(1),
        error=st.just("boom"),
        retryable=st.booleans(),
    ),
    st.builds(RunTimedOut, timeout=st.just(1.0), lease_token=st.none() | _TOKENS),
    st.builds(RunLost, reason=st.just("lease expired"), lease_token=st.none() | _TOKENS),
    st.builds(RunRetryScheduled, next_attempt=_ATTEMPTS, retry_at=st.just(T0), delay_ms=st.just(0)),
    st.builds(RunRetryRequested, next_attempt=_ATTEMPTS, reason=st.just("retried by hand")),
    st.builds(RunDeadLettered, reason=st.just("no retries left"), attempts=_ATTEMPTS),
    st.builds(RunCancelRequested, reason=st.just("stop")),
    st.builds(RunCancelled, reason=st.just("stop"), lease_token=st.none() | _TOKENS),
)
_EVENTS = st.lists(
    st.builds(lambda p, a: ev(p, attempt=a), _PAYLOADS, st.none() | _ATTEMPTS), max_size=40
)


def _with_a_start(events: list[Event]) -> list[Event]:
    """Most runs the property sees exist: a request first, valid histories mixed in."""
    return [ev(RunRequested(trigger="manual")), *RUNNING[1:], *events]


@settings(max_examples=500, deadline=None)
@given(events=_EVENTS, prefixed=st.booleans())
def test_a_terminal_status_is_reopened_only_by_an_operators_retry(
    events: list[Event], prefixed: bool
) -> None:
    run: RunRow | None = None
    for event in _with_a_start(events) if prefixed else events:
        outcome = apply_run_event(run, event)
        if isinstance(outcome, Rejected):
            continue
        if run is not None and run.status in TERMINAL and outcome.status not in TERMINAL:
            assert isinstance(event.payload, RunRetryRequested), (run.status, event)
            assert run.status == "failed", "only a run that failed for good is retried by hand"
        if outcome.status == "failed":
            assert outcome.dead_lettered, "failed without a dead letter"
        run = outcome
