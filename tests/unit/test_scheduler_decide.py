"""One round of decisions from a snapshot: the combination of the rules."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from events.model import Event, JobSpec
from scheduler.decide import Failure, Snapshot, decide, grouped
from scheduler.views import JobView, RunView

NOW = datetime(2026, 11, 22, 9, 0, 0, tzinfo=UTC)


def job(job_id: str, created: timedelta = timedelta(hours=1), **spec: object) -> JobView:
    values: dict[str, object] = {"name": job_id, "type": "shell", "command": "true", **spec}
    return JobView(job_id, JobSpec(**values), created_at=NOW - created)  # type: ignore[arg-type]


def run(run_id: str, job_id: str, status: str, **fields: object) -> RunView:
    values: dict[str, object] = {
        "trigger": "manual",
        "attempt": 1,
        "requested_at": NOW - timedelta(seconds=5),
    }
    return RunView(run_id, job_id, status, **{**values, **fields})  # type: ignore[arg-type]


def kinds(events: Sequence[Event]) -> list[tuple[str, str | None]]:
    return [(e.type, e.run_id) for e in events]


def test_a_fire_due_now_is_requested_and_queued_in_the_same_round() -> None:
    jobs = {"j": job("j", created=timedelta(seconds=30), schedule="every 1m")}
    events = decide(Snapshot(jobs, open_runs=[], live_run_leases=set()), NOW, random.Random(1))
    assert [e.type for e in events] == ["RunRequested", "RunQueued"]
    assert events[0].run_id == events[1].run_id


def test_a_pending_run_behind_a_running_one_is_skipped_under_forbid() -> None:
    jobs = {"j": job("j")}
    running = run("r1", "j", "running", started_at=NOW - timedelta(seconds=2), lease_token=3)
    pending = run("r2", "j", "pending")
    snapshot = Snapshot(jobs, open_runs=[running, pending], live_run_leases={"run:r1"})
    assert kinds(decide(snapshot, NOW, random.Random(1))) == [("RunSkipped", "r2")]


def test_a_running_run_without_its_lease_is_lost() -> None:
    jobs = {"j": job("j")}
    running = run("r1", "j", "running", started_at=NOW - timedelta(seconds=20), lease_token=3)
    events = decide(
        Snapshot(jobs, open_runs=[running], live_run_leases=set()), NOW, random.Random(1)
    )
    assert kinds(events) == [("RunLost", "r1")]


def test_a_final_failure_dead_letters_and_skips_the_dependents() -> None:
    jobs = {"up": job("up", retries=0), "down": job("down", depends_on=("up",))}
    failed = Failure(
        run("r1", "up", "failing", finished_at=NOW - timedelta(seconds=1)), "failed", 1
    )
    events = decide(
        Snapshot(jobs, open_runs=[], live_run_leases=set(), failures=[failed]),
        NOW,
        random.Random(1),
    )
    assert [e.type for e in events] == ["RunDeadLettered", "RunRequested", "RunSkipped"]
    assert events[2].payload.reason == "upstream_failed"  # type: ignore[union-attr]
    assert events[1].job_id == events[2].job_id == "down"


def test_a_failure_with_retries_left_schedules_a_retry() -> None:
    jobs = {"j": job("j", retries=2, retry_delay=1.0, retry_backoff="fixed")}
    failed = Failure(run("r1", "j", "failing"), "failed", 1)
    [event] = decide(
        Snapshot(jobs, open_runs=[], live_run_leases=set(), failures=[failed]),
        NOW,
        random.Random(1),
    )
    assert event.type == "RunRetryScheduled"
    assert event.payload.delay_ms == 1000  # type: ignore[union-attr]


def test_a_round_between_lease_checks_finds_no_run_lost_or_overdue() -> None:
    jobs = {"j": job("j", timeout=1.0)}
    running = run("r1", "j", "running", started_at=NOW - timedelta(hours=1), lease_token=3)
    between = Snapshot(jobs, open_runs=[running], live_run_leases=set(), check_running=False)
    assert decide(between, NOW, random.Random(1)) == []
    checked = Snapshot(jobs, open_runs=[running], live_run_leases={"run:r1"})
    assert kinds(decide(checked, NOW, random.Random(1))) == [("RunTimedOut", "r1")]


def test_groups_kept_between_rounds_decide_as_the_runs_themselves() -> None:
    """A dead-lettered run gives its slot up in the round it is dead-lettered, whether
    the snapshot brings its groups or not."""
    jobs = {"j": job("j", retries=0)}
    failing = run("r1", "j", "failing", finished_at=NOW - timedelta(seconds=1))
    pending = run("r2", "j", "pending")
    failures = [Failure(failing, "failed", 1)]
    runs = [failing, pending]
    plain = Snapshot(jobs, runs, set(), failures=failures)
    kept = Snapshot(jobs, runs, set(), failures=failures, groups=grouped(runs))
    expected = [("RunDeadLettered", "r1"), ("RunQueued", "r2")]
    assert kinds(decide(plain, NOW, random.Random(1))) == expected
    assert kinds(decide(kept, NOW, random.Random(1))) == expected
