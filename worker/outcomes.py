"""Turning an execution result into the outcome event a worker appends."""

from __future__ import annotations

import dataclasses

from events.model import Payload, RunCancelled, RunFailed, RunSucceeded, RunTimedOut
from leases.dispatch import Ticket
from worker.execution import ExecutionResult
from worker.output import cap_middle


def outcome_payload(ticket: Ticket, result: ExecutionResult, worker_id: str, token: int) -> Payload:
    """The event payload that reports ``result``; every one carries the lease token."""
    if result.error is not None:  # every executor's errors pass here: capped like output
        result = dataclasses.replace(result, error=cap_middle(result.error))
    common = {"stdout": result.stdout, "stderr": result.stderr}
    if result.status == "succeeded":
        return RunSucceeded(
            worker_id, token, result.duration_ms, result.exit_code, result=result.result, **common
        )
    if result.status == "timed_out":
        return RunTimedOut(ticket.spec.timeout, worker_id, token, result.duration_ms, **common)
    if result.status == "cancelled":
        return RunCancelled(result.error or "cancelled", worker_id, token, **common)
    error = result.error or (
        f"exit code {result.exit_code}" if result.exit_code is not None else "failed"
    )
    return RunFailed(
        worker_id,
        token,
        result.duration_ms,
        error,
        result.exit_code,
        stdout=result.stdout,
        stderr=result.stderr,
        retryable=result.retryable,
    )
