"""The scheduler's side of ``failing`` runs: a retry or the final failure, failures no
attempt can mend, and the slot a failing run holds (issue 8, items 2 and 3)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from events.model import JobSpec, RunDeadLettered, RunRetryScheduled
from scheduler.concurrency import admit
from scheduler.decide import Failure, Snapshot, decide
from scheduler.retries import after_failure
from scheduler.views import JobView, RunStatus, RunView

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def job(**spec: Any) -> JobView:
    return JobView("j", JobSpec(name="j", type="shell", command="true", **spec), NOW)


def run(run_id: str, status: RunStatus, attempt: int = 1, minute: int = 0) -> RunView:
    return RunView(run_id, "j", status, "schedule", attempt, NOW + timedelta(minutes=minute))


def types(events: list[Any]) -> list[tuple[str, str | None]]:
    return [(e.type, e.run_id) for e in events]


# --- not retryable ------------------------------------------------------------------------


def test_a_failure_no_attempt_can_mend_is_dead_lettered_at_once_quoting_the_error() -> None:
    error = "ModuleNotFoundError: No module named 'reports'"
    [event] = after_failure(
        run("r1", "failing"),
        job(retries=5),
        NOW,
        random.Random(1),
        kind="failed",
        retryable=False,
        error=error,
    )
    assert isinstance(event.payload, RunDeadLettered)
    assert event.payload.reason == f"not retryable: {error}"
    assert event.payload.attempts == 1


def test_a_long_error_is_quoted_in_part() -> None:
    [event] = after_failure(
        run("r1", "failing"),
        job(),
        NOW,
        random.Random(1),
        kind="failed",
        retryable=False,
        error="x" * 100_000,
    )
    assert isinstance(event.payload, RunDeadLettered)
    assert event.payload.reason.startswith("not retryable: xxx")
    assert len(event.payload.reason) < 1100 and event.payload.reason.endswith("…")


@pytest.mark.parametrize("retryable", [True, False])
def test_decide_passes_the_workers_verdict_to_the_retry_rule(retryable: bool) -> None:
    failure = Failure(run("r1", "failing"), "failed", 1, retryable=retryable, error="boom")
    snapshot = Snapshot({"j": job(retries=3)}, [run("r1", "failing")], set(), failures=[failure])
    [event] = decide(snapshot, NOW, random.Random(1))
    expected = RunRetryScheduled if retryable else RunDeadLettered
    assert isinstance(event.payload, expected)


# --- the slot of a failing run ---------------------------------------------------------------


def test_under_forbid_a_failing_run_keeps_its_slot_while_a_retry_is_possible() -> None:
    failing, pending = run("r1", "failing"), run("r2", "pending", minute=1)
    failure = Failure(failing, "failed", 1)
    snapshot = Snapshot({"j": job(retries=3)}, [failing, pending], set(), failures=[failure])
    events = decide(snapshot, NOW, random.Random(1))
    assert types(events) == [("RunRetryScheduled", "r1"), ("RunSkipped", "r2")]
    assert events[1].payload.reason == "overlap"  # type: ignore[union-attr]


def test_a_failing_run_dead_lettered_in_this_round_frees_its_slot() -> None:
    failing, pending = run("r1", "failing"), run("r2", "pending", minute=1)
    failure = Failure(failing, "failed", 1)
    snapshot = Snapshot({"j": job(retries=0)}, [failing, pending], set(), failures=[failure])
    events = decide(snapshot, NOW, random.Random(1))
    assert types(events) == [("RunDeadLettered", "r1"), ("RunQueued", "r2")]


def test_replace_cancels_a_failing_run_outright() -> None:
    newest = run("r2", "pending", minute=1)
    events = admit(
        [newest], {"j": [run("r1", "failing")]}, {"j": job(concurrency_policy="replace")}, NOW
    )
    assert types(events) == [("RunCancelled", "r1"), ("RunQueued", "r2")]
