"""Small helpers every executor uses to build an ``ExecutionResult``."""

from __future__ import annotations

import time

from worker.execution import ExecutionResult


def elapsed_ms(started: float) -> int:
    """Milliseconds since ``started`` (a ``time.monotonic()`` reading)."""
    return int((time.monotonic() - started) * 1000)


def failed(error: str, started: float, *, retryable: bool = True) -> ExecutionResult:
    """A failure that produced no output, such as a job that could not start."""
    return ExecutionResult(
        status="failed", duration_ms=elapsed_ms(started), error=error, retryable=retryable
    )


def cancelled_before_start() -> ExecutionResult:
    return ExecutionResult(status="cancelled", duration_ms=0, error="cancelled before it started")


def timed_out_error(timeout: float) -> str:
    return f"timed out after {timeout:g} s"
