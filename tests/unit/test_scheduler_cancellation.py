"""The one cancellation rule the API and the scheduler share (pure)."""

from __future__ import annotations

import pytest

from events.model import Payload, RunCancelled, RunCancelRequested
from scheduler.cancellation import cancel_events, held

ASKED = RunCancelRequested("r")
DONE = RunCancelled("r")


@pytest.mark.parametrize(
    ("status", "taken_off_queue", "expected"),
    [
        ("pending", False, [ASKED, DONE]),
        ("queued", True, [ASKED, DONE]),  # taken off its queue: nobody can run it
        ("queued", False, [ASKED]),  # a worker popped it: the worker ends it
        ("running", False, [ASKED]),
        ("failing", False, [ASKED, DONE]),
        ("retrying", False, [ASKED, DONE]),
        ("completed", False, []),
        ("cancelled", False, []),
        ("skipped", False, []),
        ("failed", False, []),
    ],
)
def test_a_callers_cancel_is_recorded_and_ends_a_run_nobody_holds(
    status: str, taken_off_queue: bool, expected: list[Payload]
) -> None:
    events = cancel_events(status, "r", taken_off_queue=taken_off_queue, record_request=True)
    assert events == expected


@pytest.mark.parametrize(
    ("status", "taken_off_queue", "expected"),
    [
        ("queued", False, [ASKED]),  # decided before the signal: the loop signals it
        ("queued", True, [DONE]),  # after the signal took it off its queue
        ("running", False, [ASKED]),
        ("failing", False, [DONE]),
        ("retrying", False, [DONE]),
        ("completed", False, []),
    ],
)
def test_the_schedulers_own_cancel_asks_only_when_someone_holds_the_run(
    status: str, taken_off_queue: bool, expected: list[Payload]
) -> None:
    events = cancel_events(status, "r", taken_off_queue=taken_off_queue, record_request=False)
    assert events == expected


def test_only_a_running_run_or_one_still_in_reach_of_a_worker_is_held() -> None:
    assert held("running", taken_off_queue=False)
    assert held("queued", taken_off_queue=False)
    assert not held("queued", taken_off_queue=True)
    assert not held("pending", taken_off_queue=False)
    assert not held("retrying", taken_off_queue=False)
