"""Run ids (``events.ids``) and event envelopes (``scheduler.envelope``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from events.ids import (
    dependency_run_id,
    fire_run_id,
    idempotency_run_id,
    new_run_id,
)
from events.model import RunQueued
from leases.dispatch import run_lease_key
from scheduler.envelope import ACTOR, new_run_event, occurred_at, run_event
from scheduler.views import RunView

NINE = datetime(2026, 7, 1, 9, tzinfo=UTC)


def test_given_fire_time_when_run_id_then_pinned_value() -> None:
    # Pinned: ids already in event logs must keep matching what the scheduler decides.
    assert fire_run_id("job-1", NINE) == "run-" + str(
        uuid.uuid5(
            uuid.UUID("c0d3abd8-653f-4bbb-a4d1-d0854242be7e"), "job-1|2026-07-01T09:00:00+00:00"
        )
    )


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        (("job-1", NINE), ("job-1", NINE), True),
        (("job-1", NINE), ("job-1", NINE.astimezone(timezone(timedelta(hours=2)))), True),
        (("job-1", NINE), ("job-2", NINE), False),
        (("job-1", NINE), ("job-1", NINE + timedelta(milliseconds=1)), False),
    ],
)
def test_given_fires_when_run_ids_then_equal_exactly_for_same_job_and_instant(
    first: tuple[str, datetime], second: tuple[str, datetime], same: bool
) -> None:
    assert (fire_run_id(*first) == fire_run_id(*second)) is same


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        (idempotency_run_id("job-1", "k"), idempotency_run_id("job-1", "k"), True),
        (idempotency_run_id("job-1", "k"), idempotency_run_id("job-2", "k"), False),
        (idempotency_run_id("job-1", "k"), idempotency_run_id("job-1", "k2"), False),
        # an idempotency key that spells a fire time is still another run
        (idempotency_run_id("job-1", NINE.isoformat()), fire_run_id("job-1", NINE), False),
        (dependency_run_id("d", "run-u", 1), dependency_run_id("d", "run-u", 1), True),
        (dependency_run_id("d", "run-u", 1), dependency_run_id("d", "run-u", 2), False),
        (dependency_run_id("d", "run-u", 1), dependency_run_id("e", "run-u", 1), False),
    ],
)
def test_given_id_inputs_when_derived_then_deterministic_and_distinct(
    first: str, second: str, same: bool
) -> None:
    assert (first == second) is same


def test_given_manual_runs_when_new_ids_then_random_and_prefixed() -> None:
    first, second = new_run_id(), new_run_id()

    assert first != second
    assert first.startswith("run-") and uuid.UUID(first.removeprefix("run-"))


def test_given_run_id_when_lease_key_then_run_prefix() -> None:
    assert run_lease_key("run-1") == "run:run-1"


def test_given_now_with_microseconds_when_event_built_then_utc_millis() -> None:
    now = datetime(2026, 7, 1, 11, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))

    event = new_run_event(RunQueued(queue="q"), job_id="j", run_id="r", now=now, correlation_id="c")

    assert event.occurred_at == datetime(2026, 7, 1, 9, 0, 0, 123000, tzinfo=UTC)
    assert (event.actor, event.job_id, event.run_id, event.attempt) == (ACTOR, "j", "r", 1)
    assert (event.correlation_id, event.causation_id) == ("c", None)


def test_given_naive_now_when_event_built_then_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        occurred_at(datetime(2026, 7, 1, 9))


@pytest.mark.parametrize(("correlation_id", "expected"), [("corr-1", "corr-1"), (None, "run-1")])
def test_given_run_when_event_built_then_its_attempt_and_correlation(
    correlation_id: str | None, expected: str
) -> None:
    run = RunView("run-1", "job-1", "retrying", "schedule", 3, NINE, correlation_id)

    event = run_event(RunQueued(queue="q"), run, NINE, causation_id="cause")

    assert (event.attempt, event.correlation_id, event.causation_id) == (3, expected, "cause")
