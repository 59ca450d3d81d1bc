"""The outcome event a worker appends for an execution result."""

from __future__ import annotations

import pytest

from events.dispatch import Ticket
from events.model import JobSpec, RunFailed
from worker.execution import ExecutionResult
from worker.outcomes import outcome_payload

TICKET = Ticket("run-1", "job-1", 1, JobSpec(name="j", type="python", function="m:f"))


@pytest.mark.parametrize("retryable", [True, False])
def test_a_failure_reports_whether_another_attempt_can_help(retryable: bool) -> None:
    result = ExecutionResult("failed", 5, error="cannot import module 'x'", retryable=retryable)
    payload = outcome_payload(TICKET, result, "worker-1", 7)
    assert payload == RunFailed("worker-1", 7, 5, "cannot import module 'x'", retryable=retryable)


def test_results_are_retryable_unless_an_executor_says_otherwise() -> None:
    assert ExecutionResult("failed", 0).retryable is True
