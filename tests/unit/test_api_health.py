"""What ``/api/health`` calls a problem (``api.health.problems``) and stall tracking."""

from __future__ import annotations

import dataclasses

import pytest

from api.health import HealthFacts, HealthLimits, ProgressWatch, problems

LIMITS = HealthLimits(max_lag=100, stall_after=30.0)
HEALTHY = HealthFacts(
    lag=0, unchanged_for=0.0, leader="scheduler-1", queued={"default": 2}, serving={"default": 1}
)


def test_a_leader_served_queues_and_a_current_projector_are_healthy() -> None:
    assert problems(HEALTHY, LIMITS) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"leader": None}, ["no scheduler leads: the leader lease is free"]),
        ({"serving": {}}, ["queue 'default' has 2 queued runs and no live worker"]),
        ({"serving": {"gpu": 3}}, ["queue 'default' has 2 queued runs and no live worker"]),
        (
            {"lag": 101},
            ["the projector is 101 events behind the log (more than CHRONOLOG_HEALTH_MAX_LAG=100)"],
        ),
        (
            {"lag": 5, "unchanged_for": 31.0},
            ["the projector has applied nothing for 31 s with 5 events to apply"],
        ),
    ],
)
def test_each_problem_is_named(change: dict[str, object], expected: list[str]) -> None:
    assert problems(dataclasses.replace(HEALTHY, **change), LIMITS) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "change",
    [
        {"queued": {"gpu": 0}, "serving": {}},  # an empty queue needs no worker
        {"queued": {}, "serving": {}},  # no worker at all is fine while nothing waits
        {"lag": 100},  # at the limit
        {"lag": 0, "unchanged_for": 3600.0},  # idle, not stalled: nothing to apply
        {"lag": 5, "unchanged_for": 29.0},  # not yet stalled
    ],
)
def test_what_is_not_a_problem(change: dict[str, object]) -> None:
    assert problems(dataclasses.replace(HEALTHY, **change), LIMITS) == []  # type: ignore[arg-type]


def test_several_problems_are_all_named() -> None:
    facts = HealthFacts(lag=500, unchanged_for=60.0, leader=None, queued={"a": 1}, serving={})
    assert len(problems(facts, LIMITS)) == 3  # a lag past the limit is not also "stalled"


def test_progress_watch_counts_from_the_last_change_of_the_checkpoints() -> None:
    now = [100.0]
    watch = ProgressWatch(clock=lambda: now[0])
    assert watch.unchanged_for({0: 5}) == 0.0
    now[0] = 110.0
    assert watch.unchanged_for({0: 5}) == 10.0
    assert watch.unchanged_for({0: 6}) == 0.0
    now[0] = 115.0
    assert watch.unchanged_for({0: 6}) == 5.0
