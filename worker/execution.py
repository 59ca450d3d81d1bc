"""What a worker asks an executor to do, and what comes back."""

from __future__ import annotations

import asyncio
import threading
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


class RunCancel(threading.Event):
    """A run's cancel signal: an Event for executors that wait in a thread, plus
    callbacks for those that wait on an event loop (called on the thread that sets it)."""

    def __init__(self) -> None:
        super().__init__()
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def set(self) -> None:
        super().set()
        with self._lock:
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def on_set(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once when the signal is set (now, if it already is)."""
        with self._lock:
            if not self.is_set():
                self._callbacks.append(callback)
                return
        callback()

    def wake_loop(self, loop: asyncio.AbstractEventLoop) -> asyncio.Event:
        """An asyncio event on ``loop`` that is set with this signal."""
        event = asyncio.Event()

        def wake() -> None:
            loop.call_soon_threadsafe(event.set)

        self.on_set(wake)
        return event


class Executor(ABC):
    """Runs one kind of job. ``cancel`` is set when the run must stop now.

    ``execute`` blocks a thread; ``execute_async`` is what the worker's event loop awaits.
    By default it runs ``execute`` on a thread of the loop's default executor, which the
    worker sizes to its concurrency (threads are made only as runs need them); executors
    that can wait without a thread (async python jobs) override it.
    """

    @abstractmethod
    def execute(self, request: ExecutionRequest, cancel: CancelSignal) -> ExecutionResult: ...

    async def execute_async(self, request: ExecutionRequest, cancel: RunCancel) -> ExecutionResult:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, self.execute, request, cancel)
        except asyncio.CancelledError:
            cancel.set()  # the thread cannot be cancelled; the job is told to stop
            raise

    def close(self) -> None:  # noqa: B027 - optional hook for executors holding processes
        """Stop child processes and release resources."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release what ``execute_async`` holds on the running loop; before the loop ends."""
