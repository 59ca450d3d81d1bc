"""The scheduler's view of the open runs: merging the runs that changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduler.open_runs import OpenRun, OpenRuns, in_request_order, merge
from scheduler.views import RunStatus, RunView

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def _run(run_id: str, status: RunStatus, second: int = 0, queue: str | None = None) -> OpenRun:
    view = RunView(run_id, "job-1", status, "manual", 1, T0 + timedelta(seconds=second))
    return OpenRun(view, queue, None)


def _ids(runs: list[OpenRun]) -> list[str]:
    return [run.view.run_id for run in runs]


def test_a_changed_open_run_stays_in_its_new_state_and_a_new_one_joins() -> None:
    change = merge({"a"}, [_run("a", "queued", queue="q"), _run("b", "pending")])
    assert {run_id: run.view.status for run_id, run in change.stay.items()} == {"a": "queued"}
    assert change.stay["a"].queue == "q"
    assert _ids(change.joined) == ["b"]
    assert change.leave == set()


def test_runs_that_ended_leave_and_unknown_ended_runs_are_named_too() -> None:
    change = merge({"a", "b"}, [_run("a", "completed"), _run("c", "cancelled")])
    assert change.leave == {"a", "c"}
    assert (change.stay, change.joined) == ({}, [])


def test_joined_runs_come_in_request_order() -> None:
    change = merge(set(), [_run("b", "pending", 2), _run("a", "pending", 1)])
    assert _ids(change.joined) == ["a", "b"]


def test_open_runs_are_ordered_by_request_time_then_id() -> None:
    runs = [_run("b", "pending", 1), _run("c", "pending", 0), _run("a", "pending", 1)]
    assert _ids(in_request_order(runs)) == ["c", "a", "b"]


def test_the_view_keeps_request_order_through_changes() -> None:
    """Changed runs keep their place, newer ones join at the end, and an older request
    that joins late is put in its place."""
    view = OpenRuns(full_read_interval=timedelta(hours=1))

    def apply(*changed: OpenRun) -> list[str]:
        view.apply(merge(set(_ids(view.runs)), changed))
        return _ids(view.runs)

    assert apply(_run("b", "queued", 2), _run("a", "pending", 1)) == ["a", "b"]
    assert apply(_run("a", "queued", 1), _run("c", "pending", 3)) == ["a", "b", "c"]
    assert view.runs[0].view.status == "queued"
    assert [v.run_id for v in view.groups.by_status["queued"]] == ["a", "b"]
    assert apply(_run("b", "completed", 2), _run("z", "pending", 0)) == ["z", "a", "c"]
    assert [v.run_id for v in view.views] == ["z", "a", "c"]
