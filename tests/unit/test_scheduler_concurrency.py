"""Admission, retry dispatch and cancellation of waiting runs (``scheduler.concurrency``)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from events.model import (
    CONCURRENCY_POLICIES,
    RUN_TRIGGERS,
    Event,
    JobSpec,
    RunCancelRequested,
    RunQueued,
    RunSkipped,
    RunTrigger,
)
from scheduler.concurrency import (
    API_QUEUED_GRACE,
    admit,
    admitted_without_state,
    due_retries,
)
from scheduler.views import JobView, RunStatus, RunView

T0 = datetime(2026, 7, 1, 9, tzinfo=UTC)
NOW = T0 + timedelta(minutes=10)


def job(**spec: Any) -> JobView:
    full = JobSpec(name="j", type="shell", command="true", **spec)
    return JobView("job-1", full, T0 - timedelta(days=1))


def run(
    run_id: str,
    status: RunStatus = "pending",
    trigger: RunTrigger = "schedule",
    minute: int = 0,
    **fields: Any,
) -> RunView:
    requested = T0 + timedelta(minutes=minute)
    return RunView(run_id, "job-1", status, trigger, 1, requested, **fields)


def summary(events: list[Event]) -> list[tuple[str, str | None, str | None]]:
    """(event type, run id, skip/cancel reason) per event."""
    return [(e.type, e.run_id, getattr(e.payload, "reason", None)) for e in events]


P1, P2, P3 = run("p1", minute=1), run("p2", minute=2), run("p3", minute=3)
RUNNING = run("a1", "running")
QUEUED = run("a2", "queued")


@pytest.mark.parametrize(
    ("spec", "active", "pending", "expected"),
    [
        # forbid (default): one at a time, a trigger while one is active is skipped
        ({}, [], [P1], [("RunQueued", "p1", None)]),
        ({}, [RUNNING], [P1], [("RunSkipped", "p1", "overlap")]),
        ({}, [], [P1, P2], [("RunQueued", "p1", None), ("RunSkipped", "p2", "overlap")]),
        ({"max_concurrency": 3}, [RUNNING], [P1], [("RunSkipped", "p1", "overlap")]),
        # allow: up to max_concurrency, beyond that skipped
        (
            {"concurrency_policy": "allow", "max_concurrency": 2},
            [RUNNING],
            [P1, P2],
            [("RunQueued", "p1", None), ("RunSkipped", "p2", "overlap")],
        ),
        (
            {"concurrency_policy": "allow", "max_concurrency": 2},
            [],
            [P1, P2],
            [("RunQueued", "p1", None), ("RunQueued", "p2", None)],
        ),
        # allow with no limit: every pending run is queued
        (
            {"concurrency_policy": "allow", "max_concurrency": None},
            [RUNNING, QUEUED],
            [P1, P2],
            [("RunQueued", "p1", None), ("RunQueued", "p2", None)],
        ),
        # queue: up to max_concurrency, the others wait (no event)
        ({"concurrency_policy": "queue"}, [RUNNING], [P1, P2], []),
        (
            {"concurrency_policy": "queue", "max_concurrency": None},
            [RUNNING],
            [P1, P2],
            [("RunQueued", "p1", None), ("RunQueued", "p2", None)],
        ),
        (
            {"concurrency_policy": "queue", "max_concurrency": 3},
            [RUNNING],
            [P1, P2, P3],
            [("RunQueued", "p1", None), ("RunQueued", "p2", None)],
        ),
        # replace: cancel the active, skip older pending, queue the newest
        (
            {"concurrency_policy": "replace"},
            [RUNNING, QUEUED],
            [P1, P2],
            [
                ("RunCancelRequested", "a1", "replaced by p2"),
                ("RunCancelRequested", "a2", "replaced by p2"),
                ("RunSkipped", "p1", "replaced"),
                ("RunQueued", "p2", None),
            ],
        ),
        (
            {"concurrency_policy": "replace"},
            [run("a3", "retrying")],
            [P1],
            [("RunCancelled", "a3", "replaced by p1"), ("RunQueued", "p1", None)],
        ),
        ({"concurrency_policy": "replace"}, [RUNNING], [], []),
        # pending runs are taken oldest first, whatever order they come in
        ({}, [], [P2, P1], [("RunQueued", "p1", None), ("RunSkipped", "p2", "overlap")]),
        # runs that are not pending are not admitted
        ({}, [], [run("q", "queued")], []),
    ],
)
def test_given_policy_and_runs_when_admit_then_queued_skipped_or_waiting(
    spec: dict[str, Any],
    active: list[RunView],
    pending: list[RunView],
    expected: list[tuple[str, str, str | None]],
) -> None:
    events = admit(pending, {"job-1": active}, {"job-1": job(**spec)}, NOW)

    assert summary(events) == expected


def test_given_admitted_run_when_queued_then_job_queue_priority_and_run_attempt() -> None:
    given = dataclasses.replace(P1, correlation_id="corr")

    [event] = admit([given], {}, {"job-1": job(queue="gpu", priority=7)}, NOW)

    assert event.payload == RunQueued(queue="gpu", priority=7)
    assert (event.run_id, event.attempt, event.correlation_id) == ("p1", 1, "corr")
    assert (event.actor, event.occurred_at) == ("scheduler", NOW)


def test_given_replace_when_cancelling_then_caused_by_the_new_run() -> None:
    events = admit([P1], {"job-1": [RUNNING]}, {"job-1": job(concurrency_policy="replace")}, NOW)

    assert events[0].payload == RunCancelRequested(reason="replaced by p1")
    assert events[0].causation_id == "p1"


def test_given_overlap_when_skipped_then_detail_names_active_runs() -> None:
    [event] = admit([P1], {"job-1": [RUNNING]}, {"job-1": job()}, NOW)

    assert event.payload == RunSkipped(
        reason="overlap", detail="1 active run(s), at most 1 allowed: a1"
    )


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        ("schedule", [("RunSkipped", "p", "paused")]),
        ("dependency", [("RunSkipped", "p", "paused")]),
        ("manual", [("RunQueued", "p", None)]),
        ("backfill", [("RunQueued", "p", None)]),
    ],
)
def test_given_paused_job_when_admit_then_automatic_triggers_skipped_requested_ones_run(
    trigger: RunTrigger, expected: list[tuple[str, str, str | None]]
) -> None:
    events = admit([run("p", trigger=trigger)], {}, {"job-1": job(enabled=False)}, NOW)

    assert summary(events) == expected


def test_given_deleted_job_when_admit_then_skipped() -> None:
    assert summary(admit([P1], {}, {}, NOW)) == [("RunSkipped", "p1", "job_deleted")]


def test_given_several_jobs_when_admit_then_each_by_its_own_policy() -> None:
    other = dataclasses.replace(job(concurrency_policy="queue"), job_id="job-2")
    waiting = dataclasses.replace(P2, job_id="job-2")
    jobs = {"job-1": job(), "job-2": other}

    events = admit([P1, waiting], {"job-1": [], "job-2": [RUNNING]}, jobs, NOW)

    assert summary(events) == [("RunQueued", "p1", None)]


# --- retries due ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "jobs", "expected"),
    [
        (run("r", "retrying", next_retry_at=NOW), {"job-1": job()}, [("RunQueued", "r", None)]),
        (run("r", "retrying", next_retry_at=NOW + timedelta(milliseconds=1)), {}, []),
        (run("r", "failed", next_retry_at=NOW), {"job-1": job()}, []),
        (run("r", "retrying", next_retry_at=NOW), {}, [("RunCancelled", "r", "job deleted")]),
        # a paused job still finishes the runs it started
        (
            run("r", "retrying", next_retry_at=NOW),
            {"job-1": job(enabled=False)},
            [("RunQueued", "r", None)],
        ),
    ],
)
def test_given_retrying_run_when_due_retries_then_queued_when_due(
    given: RunView, jobs: dict[str, JobView], expected: list[tuple[str, str, str | None]]
) -> None:
    assert summary(due_retries([given], jobs, NOW)) == expected


def test_given_due_retry_when_queued_then_for_the_announced_attempt() -> None:
    given = dataclasses.replace(run("r", "retrying", next_retry_at=NOW), attempt=3)

    [event] = due_retries([given], {"job-1": job(queue="q", priority=2)}, NOW)

    assert (event.attempt, event.payload) == (3, RunQueued(queue="q", priority=2))


# --- admission without state (what the API queues itself) ---------------------------


@pytest.mark.parametrize(
    ("spec", "trigger", "expected"),
    [
        ({"concurrency_policy": "allow", "max_concurrency": None}, "manual", True),
        # a paused job: what a person asks for still goes through the policy; a fire not
        (
            {"concurrency_policy": "allow", "max_concurrency": None, "enabled": False},
            "manual",
            True,
        ),
        (
            {"concurrency_policy": "allow", "max_concurrency": None, "enabled": False},
            "schedule",
            False,
        ),
        # any limit, or any other policy, needs the other runs
        ({"concurrency_policy": "allow", "max_concurrency": 10_000}, "manual", False),
        ({"concurrency_policy": "queue", "max_concurrency": None}, "manual", False),
        ({}, "manual", False),
        ({"concurrency_policy": "replace"}, "manual", False),
    ],
)
def test_given_spec_and_trigger_when_asked_then_admitted_without_state_or_not(
    spec: dict[str, Any], trigger: RunTrigger, expected: bool
) -> None:
    assert admitted_without_state(job(**spec).spec, trigger) is expected


# Every spec the API accepts: no limit only with allow and queue.
SPECS = [
    {"concurrency_policy": policy, "max_concurrency": limit, "enabled": enabled}
    for policy in CONCURRENCY_POLICIES
    for limit in (None, 1, 2)
    for enabled in (True, False)
    if limit is not None or policy in ("allow", "queue")
]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("trigger", RUN_TRIGGERS)
def test_whenever_admitted_without_state_then_admit_queues_it_whatever_the_other_runs(
    spec: dict[str, Any], trigger: RunTrigger
) -> None:
    given = job(**spec)
    if not admitted_without_state(given.spec, trigger):
        return
    pending = run("p", trigger=trigger, minute=-5)  # past the API's grace
    for active in ([], [RUNNING], [RUNNING, QUEUED, run("a3", "retrying")]):
        events = admit([pending], {"job-1": active}, {"job-1": given}, NOW)
        assert summary(events) == [("RunQueued", "p", None)]


def test_on_kafka_a_manual_run_the_api_queued_is_left_to_its_runqueued_for_the_grace() -> None:
    given = job(concurrency_policy="allow", max_concurrency=None)
    just = run("just", trigger="manual", minute=0)
    just_now = just.requested_at + API_QUEUED_GRACE - timedelta(milliseconds=1)
    fire = run("fire", trigger="schedule", minute=0)
    grace = {"api_queued_grace": API_QUEUED_GRACE}
    events = admit([just, fire], {}, {"job-1": given}, just_now, **grace)
    assert summary(events) == [("RunQueued", "fire", None)]  # fires are the scheduler's
    later = just.requested_at + API_QUEUED_GRACE
    assert summary(admit([just], {}, {"job-1": given}, later, **grace)) == [
        ("RunQueued", "just", None)
    ]
    # A job with a limit: the API did not queue it, nothing waits.
    limited = job(concurrency_policy="allow", max_concurrency=5)
    assert summary(admit([just], {}, {"job-1": limited}, just_now, **grace)) == [
        ("RunQueued", "just", None)
    ]


def test_where_appends_are_applied_whole_a_pending_manual_run_is_queued_at_once() -> None:
    # The embedded log: a run the API queued is never seen pending (its two events are
    # committed by one projector batch), so a pending one was not queued: queue it now.
    given = job(concurrency_policy="allow", max_concurrency=None)
    just = run("just", trigger="manual", minute=0)
    events = admit([just], {}, {"job-1": given}, just.requested_at)
    assert summary(events) == [("RunQueued", "just", None)]
