"""What a worker asks an executor to do, and what comes back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from threading import Event as CancelSignal
from typing import Any, Literal, TypeAlias

from events.model import JobSpec
from worker.context import RunContext

OutcomeStatus: TypeAlias = Literal["succeeded", "failed", "timed_out", "cancelled"]
OutputListener: TypeAlias = Callable[[str, bytes], None]

OUTPUT_LIMIT = 64 * 1024  # bytes kept per stream (the tail), see ARCHITECTURE.md section 4


def stream_listener(
    on_output: OutputListener | None, stream: str
) -> Callable[[bytes], None] | None:
    """The live-output callback of one stream (``stdout`` or ``stderr``), or None."""
    if on_output is None:
        return None
    return lambda chunk: on_output(stream, chunk)


@dataclass(frozen=True, slots=True)
class ExecutionRequest:
    run_id: str
    job_id: str
    attempt: int
    spec: JobSpec
    parameters: dict[str, Any] = field(default_factory=dict)  # already merged over the job's
    # Gets ("stdout" | "stderr", chunk) as the job writes, for live output; never blocks.
    on_output: OutputListener | None = None
    scheduled_for: datetime | None = None  # the fire time, for runs the schedule requested

    @property
    def timeout(self) -> float:
        return self.spec.timeout

    def context(self) -> RunContext:
        """What the job is told about its run."""
        return RunContext(
            self.run_id,
            self.job_id,
            self.spec.name,
            self.attempt,
            self.scheduled_for,
            self.parameters,
        )


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    status: OutcomeStatus
    duration_ms: int
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    result: Any = None  # JSON value returned by a python job
    error: str | None = None  # why it failed, for people
    # False when another attempt cannot help (job code that cannot load, a URL that can
    # never be sent): the worker reports it and the scheduler dead-letters at once.
    retryable: bool = True


class Executor(ABC):
    """Runs one kind of job. ``cancel`` is set when the run must stop now."""

    @abstractmethod
    def execute(self, request: ExecutionRequest, cancel: CancelSignal) -> ExecutionResult: ...

    def close(self) -> None:  # noqa: B027 - optional hook for executors holding processes
        """Stop child processes and release resources."""
