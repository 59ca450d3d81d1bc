"""The roll-up deltas: what each run and worker change adds, histogram bins, percentiles."""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.model import (
    Event,
    Payload,
    RunCancelled,
    RunDeadLettered,
    RunFailed,
    RunLost,
    RunQueued,
    RunRequested,
    RunRetryScheduled,
    RunSkipped,
    RunStarted,
    RunSucceeded,
    RunTimedOut,
    WorkerDeregistered,
    WorkerLost,
    WorkerRegistered,
)
from projector.rollups import (
    BUSY,
    CAPACITY,
    DAY,
    DURATION,
    HOUR,
    LAST_BIN,
    LATENESS,
    MAX_MS,
    MINUTE,
    QUEUE,
    Change,
    RollupDeltas,
    RunChange,
    WorkerChange,
    bin_bounds,
    bucket_start,
    duration_ms,
    histogram_bin,
    lateness_ms,
    percentile,
    rollup_deltas,
    status_counts,
)
from projector.run_projection import RunRow, apply_run_event
from projector.worker_projection import WorkerRow, apply_worker_event
from tests.run_events import T0, ev

FIRE = T0 - timedelta(seconds=3)
QUEUED = RunQueued(queue="q")
STARTED = RunStarted(worker_id="w", lease_token=1)


def changes(*events: Event) -> list[RunChange]:
    """The run changes of folding ``events`` one after the other."""
    found: list[RunChange] = []
    run: RunRow | None = None
    for event in events:
        after = apply_run_event(run, event)
        assert isinstance(after, RunRow), after
        found.append(RunChange(run, after, event.occurred_at))
        run = after
    return found


def lifecycle(*tail: Payload, trigger: str = "schedule") -> list[RunChange]:
    """A run requested, queued and started (seconds 0, 1, 2), then ``tail`` (3, 4 ...)."""
    head: list[Payload] = [
        RunRequested(trigger=trigger, scheduled_for=FIRE if trigger == "schedule" else None),  # type: ignore[arg-type]
        QUEUED,
        STARTED,
    ]
    events, attempt = [], 1
    for second, payload in enumerate([*head, *tail]):
        events.append(ev(payload, attempt=attempt, second=second))
        if isinstance(payload, RunRetryScheduled):
            attempt = payload.next_attempt  # the events after it are the next attempt's
    return changes(*events)


SUCCEEDED = RunSucceeded(worker_id="w", lease_token=1, duration_ms=1500)
FAILED = RunFailed(worker_id="w", lease_token=1, duration_ms=700, error="boom")


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ((), ["requested", [], ["started"]]),
        ((SUCCEEDED,), [["completed"]]),
        ((FAILED,), [[]]),  # failing: the scheduler has not decided yet
        ((FAILED, RunDeadLettered(reason="no more", attempts=1)), [[], ["failed"]]),
        (
            (RunTimedOut(timeout=1.0, worker_id="w", lease_token=1, duration_ms=1000),),
            [["timed_out"]],
        ),
        ((RunLost(reason="lease expired", worker_id="w", lease_token=1),), [["lost"]]),
        ((RunCancelled(reason="by hand"),), [["cancelled"]]),
    ],
)
def test_a_change_counts_the_status_it_enters(
    tail: tuple[Payload, ...], expected: list[object]
) -> None:
    found = [status_counts(c.before, c.after) for c in lifecycle(*tail)]
    if not tail:
        assert found == [["requested"], [], ["started"]]
    else:
        assert found[3:] == expected


def test_a_skipped_run_counts_once_as_requested_and_once_as_skipped() -> None:
    found = changes(ev(RunRequested(trigger="manual")), ev(RunSkipped(reason="overlap"), second=1))
    assert [status_counts(c.before, c.after) for c in found] == [["requested"], ["skipped"]]


def test_the_second_attempt_counts_its_start_again_but_not_its_request() -> None:
    retry = RunRetryScheduled(next_attempt=2, retry_at=T0, delay_ms=0)
    found = lifecycle(FAILED, retry, QUEUED, STARTED)
    assert [status_counts(c.before, c.after) for c in found[3:]] == [[], [], [], ["started"]]


def test_durations_are_those_of_attempts_that_ended_with_one() -> None:
    assert [duration_ms(c.before, c.after) for c in lifecycle(SUCCEEDED)] == [None] * 3 + [1500]
    assert duration_ms(*_pair(lifecycle(FAILED)[-1])) == 700
    lost = RunLost(reason="lease expired", worker_id="w", lease_token=1)
    assert duration_ms(*_pair(lifecycle(lost)[-1])) is None  # nobody measured it


def test_durations_and_lateness_are_capped_so_their_sums_fit_64_bits() -> None:
    endless = dataclasses.replace(SUCCEEDED, duration_ms=2**63 - 1)
    assert duration_ms(*_pair(lifecycle(endless)[-1])) == MAX_MS
    ancient = RunRequested(trigger="schedule", scheduled_for=datetime(1, 1, 1, tzinfo=UTC))
    found = changes(ev(ancient), ev(QUEUED, second=1), ev(STARTED, second=2))
    assert lateness_ms(*_pair(found[-1])) == MAX_MS


def _pair(change: RunChange) -> tuple[RunRow | None, RunRow]:
    return change.before, change.after


def test_lateness_is_the_first_start_minus_the_fire_time_of_scheduled_runs() -> None:
    found = lifecycle(SUCCEEDED)
    assert [lateness_ms(c.before, c.after) for c in found] == [None, None, 5000, None]
    assert all(lateness_ms(c.before, c.after) is None for c in lifecycle(trigger="manual"))
    retry = RunRetryScheduled(next_attempt=2, retry_at=T0, delay_ms=0)
    again = lifecycle(FAILED, retry, QUEUED, STARTED)
    assert lateness_ms(*_pair(again[-1])) is None  # only the first start is late or not


def test_a_start_before_its_fire_time_is_not_late() -> None:
    early = RunRequested(trigger="schedule", scheduled_for=T0 + timedelta(minutes=1))
    found = changes(ev(early), ev(QUEUED, second=1), ev(STARTED, second=2))
    assert lateness_ms(*_pair(found[-1])) == 0


@pytest.mark.parametrize(
    ("at", "width", "start"),
    [
        (
            datetime(2026, 11, 22, 9, 59, 59, 999000, tzinfo=UTC),
            MINUTE,
            datetime(2026, 11, 22, 9, 59, tzinfo=UTC),
        ),
        (
            datetime(2026, 11, 22, 9, 59, 59, tzinfo=UTC),
            HOUR,
            datetime(2026, 11, 22, 9, tzinfo=UTC),
        ),
        (datetime(2026, 11, 22, 23, 0, tzinfo=UTC), DAY, datetime(2026, 11, 22, tzinfo=UTC)),
        (datetime(2026, 11, 22, 10, 0, tzinfo=UTC), HOUR, datetime(2026, 11, 22, 10, tzinfo=UTC)),
    ],
)
def test_buckets_start_at_whole_minutes_hours_and_days_utc(
    at: datetime, width: int, start: datetime
) -> None:
    assert bucket_start(at, width) == start


@pytest.mark.parametrize(
    ("value", "index"),
    [(-5, 0), (0, 0), (1, 1), (2, 5), (3, 7), (4, 9), (1000, 40), (10**15, LAST_BIN)],
)
def test_histogram_bins_are_four_per_doubling(value: int, index: int) -> None:
    assert histogram_bin(value) == index


@given(st.integers(min_value=0, max_value=2**33))
def test_every_value_lies_inside_its_bin(value: int) -> None:
    low, high = bin_bounds(histogram_bin(value))
    assert low <= value < high


def test_a_percentile_is_interpolated_inside_its_bin() -> None:
    low, high = bin_bounds(5)  # [2, 2.38) ms
    assert percentile({5: 4}, 0.5) == low + (high - low) * 2 / 4
    assert percentile({1: 1, 9: 3}, 0.25) == bin_bounds(1)[1]  # the whole first bin
    assert percentile({}, 0.5) is None


@given(
    st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=200),
    st.sampled_from([0.5, 0.95, 0.99]),
)
def test_a_percentile_is_within_a_quarter_doubling_of_the_exact_one(
    values: list[int], q: float
) -> None:
    bins: defaultdict[int, int] = defaultdict(int)
    for value in values:
        bins[histogram_bin(value)] += 1
    exact = sorted(values)[math.ceil(q * len(values)) - 1]  # nearest rank
    estimate = percentile(bins, q)
    assert estimate is not None
    if exact < 1:
        assert estimate <= 1
    else:
        assert exact / 2**0.25 <= estimate <= exact * 2**0.25


def test_a_scheduled_run_that_succeeds_adds_to_every_roll_up() -> None:
    deltas = rollup_deltas(lifecycle(SUCCEEDED))
    minute = bucket_start(T0, MINUTE)
    hour = bucket_start(T0, HOUR)
    assert deltas.runs[(MINUTE, minute)] == {"requested": 1, "started": 1, "completed": 1}
    assert deltas.runs.keys() == {(w, bucket_start(T0, w)) for w in (MINUTE, HOUR, DAY)}
    assert deltas.jobs[(HOUR, hour, "job-1")] == {
        "requested": 1,
        "started": 1,
        "completed": 1,
        "duration_count": 1,
        "duration_sum_ms": 1500,
        "lateness_count": 1,
        "lateness_sum_ms": 5000,
    }
    assert deltas.histograms[(DURATION, HOUR, hour, "job-1", histogram_bin(1500))] == 1
    assert (
        deltas.histograms[(LATENESS, DAY, bucket_start(T0, DAY), "job-1", histogram_bin(5000))] == 1
    )
    assert deltas.gauges[(QUEUE, MINUTE, minute, "q")] == {"added": 1, "removed": 1}
    assert deltas.gauges[(BUSY, MINUTE, minute, "")] == {"added": 1, "removed": 1}
    # Present at zero: the rows that exist do not depend on how batches were cut.
    assert deltas.levels == {(QUEUE, "q"): 0, (BUSY, ""): 0}


def test_a_running_run_leaves_its_queue_and_holds_a_slot() -> None:
    deltas = rollup_deltas(lifecycle())
    assert deltas.levels == {(QUEUE, "q"): 0, (BUSY, ""): 1}
    assert rollup_deltas(lifecycle()[:2]).levels == {(QUEUE, "q"): 1}


def worker_changes(*payloads: Payload) -> list[Change]:
    found: list[Change] = []
    worker: WorkerRow | None = None
    for second, payload in enumerate(payloads):
        event = Event(payload=payload, occurred_at=T0 + timedelta(minutes=second), actor="w")
        after = apply_worker_event(worker, event)
        assert isinstance(after, WorkerRow), after
        found.append(WorkerChange(worker, after, event.occurred_at))
        worker = after
    return found


def test_capacity_counts_active_workers_slots() -> None:
    registered = WorkerRegistered(worker_id="w", hostname="h", pid=1, tags=("q",), concurrency=4)
    deltas = rollup_deltas(worker_changes(registered, WorkerLost(worker_id="w")))
    assert deltas.levels == {(CAPACITY, ""): 0}
    assert deltas.gauges[(CAPACITY, MINUTE, T0, "")] == {"added": 4, "removed": 0}
    later = T0 + timedelta(minutes=1)
    assert deltas.gauges[(CAPACITY, MINUTE, later, "")] == {"added": 0, "removed": 4}
    gone = rollup_deltas(worker_changes(registered, WorkerDeregistered(worker_id="w"))[1:])
    assert gone.levels == {(CAPACITY, ""): -4}


def test_a_change_that_moves_nothing_adds_no_row() -> None:
    registered = WorkerRegistered(worker_id="w", hostname="h", pid=1, tags=("q",), concurrency=4)
    again = rollup_deltas(worker_changes(registered, registered)[1:])  # same capacity
    assert again.is_empty()


def _merged(parts: list[RollupDeltas]) -> RollupDeltas:
    total = RollupDeltas()
    for part in parts:
        for key, counts in part.runs.items():
            for name, n in counts.items():
                total.runs[key][name] += n
        for jkey, counts in part.jobs.items():
            for name, n in counts.items():
                total.jobs[jkey][name] += n
        for hkey, n in part.histograms.items():
            total.histograms[hkey] += n
        for gkey, moves in part.gauges.items():
            for name, n in moves.items():
                total.gauges[gkey][name] += n
        for lkey, n in part.levels.items():
            total.levels[lkey] += n
    return total


@pytest.mark.parametrize("cut", [1, 2, 3, 5])
def test_deltas_do_not_depend_on_how_the_changes_are_cut_into_batches(cut: int) -> None:
    retry = RunRetryScheduled(next_attempt=2, retry_at=T0, delay_ms=0)
    found = lifecycle(FAILED, retry, QUEUED, STARTED, SUCCEEDED)
    whole = rollup_deltas(found)
    assert _merged([rollup_deltas(found[:cut]), rollup_deltas(found[cut:])]) == whole
    assert _merged([rollup_deltas(found[cut:]), rollup_deltas(found[:cut])]) == whole
