"""Timeout backstop and lost runs (``scheduler.health``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from events.model import JobSpec, RunLost, RunTimedOut, WorkerLost
from leases.dispatch import run_lease_key, worker_lease_key
from projector.worker_projection import WorkerRow
from scheduler.health import check_running, lost, lost_workers, overdue
from scheduler.views import JobView, RunStatus, RunView

NOW = datetime(2026, 7, 1, 9, tzinfo=UTC)
JOBS = {"job-1": JobView("job-1", JobSpec(name="j", type="shell", timeout=60.0), NOW)}


def run(seconds_ago: float | None, status: RunStatus = "running", run_id: str = "run-1") -> RunView:
    started = None if seconds_ago is None else NOW - timedelta(seconds=seconds_ago)
    return RunView(
        run_id,
        "job-1",
        status,
        "schedule",
        2,
        NOW - timedelta(hours=1),
        "corr-1",
        started_at=started,
        worker_id="w-1",
        lease_token=17,
    )


# --- timeout backstop -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "jobs", "timed_out"),
    [
        (run(89), JOBS, False),  # 60 s timeout + 30 s grace not yet passed
        (run(90), JOBS, False),
        (run(91), JOBS, True),
        (run(91, "queued"), JOBS, False),  # only running runs
        (run(None), JOBS, True),  # running without a start time cannot hang unnoticed
        (run(3600), {}, False),  # deleted job: the default 3600 s timeout
        (run(3631), {}, True),
    ],
)
def test_given_running_run_when_overdue_then_timed_out_only_past_timeout_and_grace(
    given: RunView, jobs: dict[str, JobView], timed_out: bool
) -> None:
    assert bool(overdue([given], jobs, NOW)) is timed_out


def test_given_overdue_run_when_backstop_fires_then_no_worker_and_no_token() -> None:
    [event] = overdue([run(91)], JOBS, NOW)

    assert event.payload == RunTimedOut(
        timeout=60.0, worker_id=None, lease_token=None, duration_ms=91_000
    )
    assert (event.run_id, event.attempt, event.correlation_id) == ("run-1", 2, "corr-1")


def test_given_custom_grace_when_overdue_then_used() -> None:
    assert overdue([run(61)], JOBS, NOW, grace=timedelta(0)) != []


# --- lost runs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "live", "is_lost"),
    [
        (run(10), {run_lease_key("run-1")}, False),  # lease live
        (run(10), set(), True),  # lease gone
        (run(10), {run_lease_key("run-2")}, True),  # someone else's lease does not count
        (run(0.5), set(), False),  # started within the 1 s grace
        (run(10, "queued"), set(), False),  # queued runs hold no lease yet
        (run(10, "completed"), set(), False),
    ],
)
def test_given_running_run_when_lease_checked_then_lost_only_without_live_lease(
    given: RunView, live: set[str], is_lost: bool
) -> None:
    assert bool(lost([given], live, NOW)) is is_lost


def test_given_lost_run_when_reported_then_names_worker_and_token() -> None:
    [event] = lost([run(10)], set(), NOW)

    assert event.payload == RunLost(reason="lease expired", worker_id="w-1", lease_token=17)
    assert (event.run_id, event.attempt, event.actor) == ("run-1", 2, "scheduler")


def test_given_run_both_lost_and_overdue_when_checked_then_only_lost() -> None:
    runs = [run(120, run_id="run-1"), run(120, run_id="run-2")]
    live = {run_lease_key("run-2")}

    events = check_running(runs, live, JOBS, NOW)

    assert [(e.type, e.run_id) for e in events] == [
        ("RunLost", "run-1"),
        ("RunTimedOut", "run-2"),
    ]


# --- lost workers -----------------------------------------------------------------------------


def worker(worker_id: str, status: str = "active") -> WorkerRow:
    return WorkerRow(worker_id, "host", 42, ("default",), 2, status, NOW, NOW)


def test_an_active_worker_whose_heartbeat_lapsed_is_lost_and_the_others_are_not() -> None:
    workers = [
        worker("w-beating"),
        worker("w-silent"),
        worker("w-stopped", "stopped"),  # deregistered: its lease is gone on purpose
        worker("w-lost", "lost"),  # already recorded
    ]
    events = lost_workers(workers, {worker_lease_key("w-beating")}, NOW)
    assert [(e.payload, e.key, e.actor, e.occurred_at) for e in events] == [
        (WorkerLost("w-silent"), "worker:w-silent", "scheduler", NOW)
    ]


def test_no_workers_no_losses() -> None:
    assert lost_workers([], set(), NOW) == []
