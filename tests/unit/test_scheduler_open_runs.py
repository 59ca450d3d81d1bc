"""The scheduler's view of the open runs: merging the runs that changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduler.open_runs import OpenRun, in_request_order, merge
from scheduler.views import RunStatus, RunView

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def _run(run_id: str, status: RunStatus, second: int = 0, queue: str | None = None) -> OpenRun:
    view = RunView(run_id, "job-1", status, "manual", 1, T0 + timedelta(seconds=second))
    return OpenRun(view, queue, None)


def _statuses(runs: dict[str, OpenRun]) -> dict[str, str]:
    return {run_id: run.view.status for run_id, run in runs.items()}


def test_a_changed_open_run_replaces_its_old_state_and_a_new_one_joins() -> None:
    before = {"a": _run("a", "pending")}
    after = merge(before, [_run("a", "queued", queue="q"), _run("b", "pending")])
    assert _statuses(after) == {"a": "queued", "b": "pending"}
    assert after["a"].queue == "q"
    assert _statuses(before) == {"a": "pending"}  # the old view is left as it was


def test_runs_that_ended_leave_the_view_and_unknown_ended_runs_are_ignored() -> None:
    before = {"a": _run("a", "running"), "b": _run("b", "failing")}
    after = merge(before, [_run("a", "completed"), _run("c", "cancelled")])
    assert _statuses(after) == {"b": "failing"}


def test_open_runs_are_ordered_by_request_time_then_id() -> None:
    runs = [_run("b", "pending", 1), _run("c", "pending", 0), _run("a", "pending", 1)]
    assert [r.view.run_id for r in in_request_order(runs)] == ["c", "a", "b"]
