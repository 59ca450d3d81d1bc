"""Dependency-triggered runs and upstream failures (``scheduler.dependencies``)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from events.ids import dependency_run_id
from events.model import Event, JobSpec, RunRequested, RunSkipped
from scheduler.dependencies import dependents_of, on_dead_letter, on_success
from scheduler.views import DependencyState, JobView, RunStatus, RunView

T0 = datetime(2026, 7, 1, 9, tzinfo=UTC)
NOW = T0 + timedelta(minutes=30)


def at(hour: int, minute: int = 0) -> datetime:
    return T0.replace(hour=hour, minute=minute)


def job(job_id: str, *depends_on: str) -> JobView:
    spec = JobSpec(name=job_id, type="shell", command="true", depends_on=depends_on)
    return JobView(job_id, spec, T0 - timedelta(days=7))


def jobs(*views: JobView) -> dict[str, JobView]:
    return {view.job_id: view for view in views}


def run(
    run_id: str,
    job_id: str,
    status: RunStatus = "completed",
    *,
    finished_at: datetime = T0,
    correlation_id: str | None = None,
    attempt: int = 1,
) -> RunView:
    return RunView(
        run_id,
        job_id,
        status,
        "schedule",
        attempt,
        T0 - timedelta(hours=1),
        correlation_id,
        finished_at=finished_at,
    )


def summary(events: list[Event]) -> list[tuple[str, str | None, str | None]]:
    """(event type, job id, upstream run id or skip reason) per event."""
    return [
        (
            e.type,
            e.job_id,
            e.payload.upstream_run_id if isinstance(e.payload, RunRequested) else e.payload.reason,
        )
        for e in events
        if isinstance(e.payload, RunRequested | RunSkipped)
    ]


def without_ids(events: list[Event]) -> list[Event]:
    return [dataclasses.replace(event, event_id="") for event in events]


# --- on success -----------------------------------------------------------------------------

TWO_UPSTREAMS = jobs(job("u"), job("x"), job("d", "u", "x"))


@pytest.mark.parametrize(
    ("state", "fires"),
    [
        # the other upstream has succeeded, d never ran: fire
        (DependencyState({"x": at(8)}, {}), True),
        # the other upstream never succeeded: wait
        (DependencyState({}, {}), False),
        # x succeeded before d's last dependency run: wait for x again
        (DependencyState({"x": at(8)}, {"d": at(8, 30)}), False),
        # x succeeded since d's last dependency run: fire
        (DependencyState({"x": at(8)}, {"d": at(7)}), True),
    ],
)
def test_given_two_upstreams_when_one_completes_then_fires_only_if_other_completed_since(
    state: DependencyState, fires: bool
) -> None:
    events = on_success([run("run-u", "u", finished_at=at(9))], TWO_UPSTREAMS, state, NOW)

    assert summary(events) == ([("RunRequested", "d", "run-u")] if fires else [])


def test_given_two_upstreams_when_both_complete_in_turn_then_one_run_after_the_second() -> None:
    first = run("run-u", "u", finished_at=at(9))
    second = run("run-x", "x", finished_at=at(9, 10))

    events = on_success([second, first], TWO_UPSTREAMS, DependencyState(), NOW)
    again = on_success(
        [run("run-u2", "u", finished_at=at(9, 20))],
        TWO_UPSTREAMS,
        DependencyState({"u": at(9), "x": at(9, 10)}, {"d": NOW}),
        NOW + timedelta(minutes=1),
    )

    assert summary(events) == [("RunRequested", "d", "run-x")]
    assert again == []


def test_given_already_decided_completion_when_decided_again_then_nothing() -> None:
    completed = run("run-u", "u", finished_at=at(9))
    state = DependencyState({"u": at(9)}, {"d": at(9, 0) + timedelta(seconds=1)})

    assert on_success([completed], jobs(job("u"), job("d", "u")), state, NOW) == []


def test_given_upstream_completing_twice_in_a_batch_when_decided_then_two_runs() -> None:
    batch = [run("run-1", "u", finished_at=at(9)), run("run-2", "u", finished_at=at(9, 5))]

    events = on_success(batch, jobs(job("u"), job("d", "u")), DependencyState(), NOW)

    assert summary(events) == [("RunRequested", "d", "run-1"), ("RunRequested", "d", "run-2")]
    assert events[0].run_id != events[1].run_id


@pytest.mark.parametrize(("correlation_id", "expected"), [("corr-1", "corr-1"), (None, "run-u")])
def test_given_completion_when_dependent_requested_then_shares_pipeline_and_names_upstream(
    correlation_id: str | None, expected: str
) -> None:
    completed = run("run-u", "u", correlation_id=correlation_id, attempt=2)

    [event] = on_success([completed], jobs(job("u"), job("d", "u")), DependencyState(), NOW)

    assert event.payload == RunRequested(trigger="dependency", upstream_run_id="run-u")
    assert event.run_id == dependency_run_id("d", "run-u", 2)
    assert (event.job_id, event.attempt, event.actor) == ("d", 1, "scheduler")
    assert (event.correlation_id, event.causation_id) == (expected, "run-u")


def test_given_same_input_twice_when_decided_then_same_events_but_event_ids() -> None:
    completed = [run("run-u", "u")]
    graph = jobs(job("u"), job("d", "u"), job("e", "u"))

    first = on_success(completed, graph, DependencyState(), NOW)
    second = on_success(completed, graph, DependencyState(), NOW)

    assert without_ids(first) == without_ids(second)
    assert first[0].event_id != second[0].event_id


def test_given_runs_not_completed_or_jobs_unrelated_when_on_success_then_nothing() -> None:
    graph = jobs(job("u"), job("d", "u"), job("other"))
    given = [run("run-f", "u", status="failed"), run("run-o", "other")]

    assert on_success(given, graph, DependencyState(), NOW) == []


# --- on dead letter ---------------------------------------------------------------------------

DEMO = jobs(job("daily-report"), job("send-report", "daily-report"))


def test_given_upstream_dead_lettered_when_dependent_has_no_run_then_one_made_and_skipped() -> None:
    failed = run("run-d", "daily-report", status="failed", correlation_id="corr-1", attempt=3)

    events = on_dead_letter([failed], DEMO, {}, NOW)

    assert summary(events) == [
        ("RunRequested", "send-report", "run-d"),
        ("RunSkipped", "send-report", "upstream_failed"),
    ]
    assert {e.run_id for e in events} == {dependency_run_id("send-report", "run-d", 3)}
    assert {e.correlation_id for e in events} == {"corr-1"}
    assert events[1].payload == RunSkipped(
        reason="upstream_failed", detail="upstream job daily-report run run-d failed for good"
    )


def test_given_pending_dependent_of_same_pipeline_when_upstream_dead_then_it_is_skipped() -> None:
    failed = run("run-d", "daily-report", status="failed", correlation_id="corr-1")
    same = run("run-s", "send-report", status="pending", correlation_id="corr-1")
    other = run("run-o", "send-report", status="pending", correlation_id="corr-2")

    events = on_dead_letter([failed], DEMO, {"send-report": [same, other]}, NOW)

    assert [(e.type, e.run_id) for e in events] == [("RunSkipped", "run-s")]


@pytest.mark.parametrize(
    ("graph", "expected_jobs"),
    [
        # a chain: each one downstream is skipped, in order
        (jobs(job("a"), job("b", "a"), job("c", "b")), ["b", "c"]),
        # a diamond: c is skipped once
        (jobs(job("a"), job("b", "a"), job("c", "a", "b")), ["b", "c"]),
        # unrelated jobs are left alone
        (jobs(job("a"), job("z")), []),
    ],
)
def test_given_graph_when_upstream_dead_then_everything_downstream_skipped_once(
    graph: dict[str, JobView], expected_jobs: list[str]
) -> None:
    events = on_dead_letter([run("run-a", "a", status="failed")], graph, {}, NOW)

    skipped = [e.job_id for e in events if isinstance(e.payload, RunSkipped)]
    assert skipped == expected_jobs
    assert all(
        e.payload.reason == "upstream_failed" for e in events if isinstance(e.payload, RunSkipped)
    )


def test_given_chain_when_skipped_downstream_then_each_names_its_direct_upstream() -> None:
    graph = jobs(job("a"), job("b", "a"), job("c", "b"))

    events = on_dead_letter([run("run-a", "a", status="failed")], graph, {}, NOW)

    b_run = dependency_run_id("b", "run-a", 1)
    assert summary(events)[::2] == [
        ("RunRequested", "b", "run-a"),
        ("RunRequested", "c", b_run),
    ]
    assert events[2].run_id == dependency_run_id("c", b_run, 1)


def test_given_dead_upstream_retried_by_hand_when_it_succeeds_then_dependent_runs() -> None:
    dead = run("run-d", "daily-report", status="failed", attempt=3)
    skipped_id = on_dead_letter([dead], DEMO, {}, NOW)[0].run_id
    retried = run("run-d", "daily-report", finished_at=NOW + timedelta(hours=1), attempt=4)

    [event] = on_success([retried], DEMO, DependencyState(), NOW + timedelta(hours=1))

    assert event.run_id != skipped_id
    assert event.run_id == dependency_run_id("send-report", "run-d", 4)


def test_given_jobs_when_dependents_of_then_reverse_edges_by_job_id() -> None:
    graph = dependents_of([job("c", "a"), job("b", "a"), job("a")])

    assert {upstream: [j.job_id for j in down] for upstream, down in graph.items()} == {
        "a": ["b", "c"]
    }


# --- what a dependent run carries -------------------------------------------------------------


def with_parameters(view: JobView, **parameters: object) -> JobView:
    return dataclasses.replace(view, spec=dataclasses.replace(view.spec, parameters=parameters))


def test_a_dependent_run_carries_its_own_jobs_parameters() -> None:
    upstream = with_parameters(job("up"), source="upstream")
    down = with_parameters(job("down", "up"), k="v")
    events = on_success([run("r-up", "up")], jobs(upstream, down), DependencyState(), NOW)
    [request] = [e.payload for e in events if isinstance(e.payload, RunRequested)]
    assert (request.trigger, request.parameters) == ("dependency", {"k": "v"})


def test_a_placeholder_skipped_as_upstream_failed_carries_the_parameters_too() -> None:
    down = with_parameters(job("down", "up"), k="v")
    events = on_dead_letter([run("r-up", "up", "failed")], jobs(job("up"), down), {}, NOW)
    [request] = [e.payload for e in events if isinstance(e.payload, RunRequested)]
    assert request.parameters == {"k": "v"}
