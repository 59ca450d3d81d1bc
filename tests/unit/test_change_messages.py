"""The change stream's pure parts: positions, the status each event leaves behind, and a
subscriber's queue and duplicates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.change_hub import Change, Subscriber
from api.change_messages import (
    RUN_STATUS_AFTER,
    BadPosition,
    ChangeFilter,
    Kind,
    clamp,
    format_position,
    parse_kinds,
    parse_position,
)
from events.model import (
    Payload,
    RunCancelled,
    RunDeadLettered,
    RunFailed,
    RunLost,
    RunQueued,
    RunRequested,
    RunRetryRequested,
    RunRetryScheduled,
    RunSkipped,
    RunStarted,
    RunSucceeded,
    RunTimedOut,
)
from tests.run_events import ev, fold


def test_positions_round_trip_compactly() -> None:
    assert format_position({0: 1234, 1: 0, 3: 99}) == "0:1234,3:99"
    assert parse_position("0:1234,3:99") == {0: 1234, 3: 99}
    assert parse_position(" 0:5 , 2:7 ") == {0: 5, 2: 7}
    assert format_position({}) == "0"
    assert parse_position("0") == {}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not partition:offset"),
        ("abc", "not partition:offset"),
        ("0:", "not partition:offset"),
        ("0:-1", "not partition:offset"),
        ("0:1,0:2", "partition 0 is given twice"),
        ("0:99999999999999999999", "out of range"),
        ("5000:1", "out of range"),
        (",".join(f"{p}:1" for p in range(5000)), "more than 4096 partitions"),
    ],
)
def test_a_malformed_position_says_why(text: str, reason: str) -> None:
    with pytest.raises(BadPosition, match=reason):
        parse_position(text)


def test_a_position_past_the_committed_end_is_the_end() -> None:
    assert clamp({0: 50, 1: 3, 9: 4}, {0: 10, 1: 20}) == {0: 10, 1: 3}


def test_kinds_are_a_subset_of_job_run_worker() -> None:
    assert parse_kinds("run, job") == {"run", "job"}
    with pytest.raises(ValueError, match="runs is not one of job, run, worker"):
        parse_kinds("run,runs")
    with pytest.raises(ValueError, match="nothing"):
        parse_kinds(",")


STARTED = RunStarted(worker_id="w", lease_token=1)
FAILED = RunFailed(worker_id="w", lease_token=1, duration_ms=1, error="boom")
BEFORE_OUTCOME = [RunRequested(trigger="manual"), RunQueued(queue="q"), STARTED]
RETRY_AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "payloads",
    [
        [RunRequested(trigger="manual")],
        [RunRequested(trigger="manual"), RunQueued(queue="q")],
        [RunRequested(trigger="manual"), RunSkipped(reason="overlap")],
        [RunRequested(trigger="manual"), RunCancelled()],
        BEFORE_OUTCOME,
        [*BEFORE_OUTCOME, RunSucceeded(worker_id="w", lease_token=1, duration_ms=1)],
        [*BEFORE_OUTCOME, FAILED],
        [*BEFORE_OUTCOME, RunTimedOut(timeout=1, worker_id="w", lease_token=1)],
        [*BEFORE_OUTCOME, RunLost(reason="lease", lease_token=1)],
        [*BEFORE_OUTCOME, FAILED, RunRetryScheduled(2, RETRY_AT, 1000)],
        [*BEFORE_OUTCOME, FAILED, RunDeadLettered(reason="no", attempts=1)],
        [*BEFORE_OUTCOME, FAILED, RunDeadLettered("no", 1), RunRetryRequested(2)],
    ],
    ids=lambda payloads: type(payloads[-1]).__name__,
)
def test_the_status_table_says_what_the_run_projection_does(payloads: list[Payload]) -> None:
    events = [ev(payload) for payload in payloads]
    assert fold(*events).status == RUN_STATUS_AFTER[events[-1].type]


def change(offset: int, position: str, kind: Kind = "run", job: str = "job-1") -> Change:
    data = {"position": position, "offset": offset}
    return Change(kind, 0, offset, job, "nightly", data, f"id: {position}\n\n")


def test_a_full_queue_marks_the_subscriber_overflowed() -> None:
    subscriber = Subscriber.at({}, ChangeFilter(), queue_size=2)
    assert subscriber.offer(change(0, "0:1"))
    assert subscriber.offer(change(1, "0:2"))
    assert not subscriber.offer(change(2, "0:3"))
    assert subscriber.overflowed
    assert subscriber.queue.qsize() == 2


def test_a_subscriber_ahead_of_the_tailer_skips_what_it_has_and_keeps_its_own_ids() -> None:
    subscriber = Subscriber.at({0: 2, 1: 5}, ChangeFilter(), queue_size=10)
    assert subscriber.accept(change(1, "0:2")) is None  # sent before, while catching up
    ahead = subscriber.accept(change(2, "0:3"))
    assert ahead is not None and "id: 0:3,1:5" in ahead
    assert not subscriber.in_sync


def test_a_subscriber_in_step_with_the_tailer_sends_its_text() -> None:
    subscriber = Subscriber.at({0: 2}, ChangeFilter(kinds=frozenset({"run"})), queue_size=10)
    assert subscriber.accept(change(2, "0:3")) == "id: 0:3\n\n"
    assert subscriber.in_sync
    assert subscriber.accept(change(3, "0:4", kind="job")) is None
    assert subscriber.cursor == {0: 4}


def test_a_job_filter_takes_the_id_or_the_name() -> None:
    assert ChangeFilter(job="nightly").wants("run", "job-1", "nightly")
    assert ChangeFilter(job="job-1").wants("run", "job-1", "nightly")
    assert not ChangeFilter(job="other").wants("run", "job-1", "nightly")
    assert not ChangeFilter(job="job-1").wants("worker", None, None)
