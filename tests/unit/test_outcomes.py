"""The outcome event a worker appends for an execution result: a bounded error, and
whether another attempt can help."""

from __future__ import annotations

import pytest

from events.model import JobSpec, RunCancelled, RunFailed
from leases.dispatch import Ticket
from worker.execution import ExecutionResult, OutcomeStatus
from worker.outcomes import outcome_payload
from worker.output import ERROR_LIMIT

TICKET = Ticket("run-1", "job-1", 1, JobSpec(name="j", type="python", function="m:f"))
HUGE = "E" * 20_000_000


@pytest.mark.parametrize("status", ["failed", "cancelled"])
def test_a_huge_error_is_capped_in_the_outcome(status: OutcomeStatus) -> None:
    payload = outcome_payload(TICKET, ExecutionResult(status, 5, error=HUGE), "worker-1", 7)
    assert isinstance(payload, RunFailed | RunCancelled)
    text = (payload.error if isinstance(payload, RunFailed) else payload.reason) or ""
    assert len(text.encode()) <= ERROR_LIMIT
    assert text.startswith("EEE") and text.endswith("EEE")
    assert "bytes truncated" in text


def test_a_short_error_is_kept_as_is() -> None:
    payload = outcome_payload(TICKET, ExecutionResult("failed", 5, error="boom"), "worker-1", 7)
    assert isinstance(payload, RunFailed)
    assert payload.error == "boom"


@pytest.mark.parametrize("retryable", [True, False])
def test_a_failure_reports_whether_another_attempt_can_help(retryable: bool) -> None:
    result = ExecutionResult("failed", 5, error="cannot import module 'x'", retryable=retryable)
    payload = outcome_payload(TICKET, result, "worker-1", 7)
    assert payload == RunFailed("worker-1", 7, 5, "cannot import module 'x'", retryable=retryable)


def test_results_are_retryable_unless_an_executor_says_otherwise() -> None:
    assert ExecutionResult("failed", 0).retryable is True
