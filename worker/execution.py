"""What a worker asks an executor to do, and what comes back."""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol, TypeAlias

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
    traceparent: str | None = None  # the execution span's, for the job's own spans

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
            self.traceparent,
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


class CancelSignal(Protocol):
    """What an executor waiting in a thread needs of a cancel signal (a
    ``threading.Event`` is one)."""

    def is_set(self) -> bool: ...

    def set(self) -> None: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class RunCancel:
    """A run's cancel signal: ``is_set``/``wait`` for executors that wait in a thread,
    plus callbacks for those that wait on an event loop (called on the thread that sets
    it). A worker holds one per running run, thousands at once, so it stays a flag and a
    list until a thread waits on it (a ``threading.Event`` costs ~1.5 KB)."""

    __slots__ = ("_callbacks", "_event", "_set")
    _lock: ClassVar[threading.Lock] = threading.Lock()  # one for all: held for a few steps

    def __init__(self) -> None:
        self._set = False
        self._callbacks: list[Callable[[], object]] | None = None
        self._event: threading.Event | None = None  # made for the first waiting thread

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        with RunCancel._lock:
            if self._set:
                return
            self._set = True
            callbacks, self._callbacks = self._callbacks or [], None
            event = self._event
        if event is not None:
            event.set()
        for callback in callbacks:
            callback()

    def wait(self, timeout: float | None = None) -> bool:
        with RunCancel._lock:
            if self._set:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout)

    def on_set(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` once when the signal is set (now, if it already is)."""
        with RunCancel._lock:
            if not self._set:
                if self._callbacks is None:
                    self._callbacks = []
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


async def ready(result: ExecutionResult) -> ExecutionResult:
    """``result`` as an awaitable, for an ``execute_async`` that knows it at once."""
    return result


class Executor(ABC):
    """Runs one kind of job. ``cancel`` is set when the run must stop now.

    ``execute`` blocks a thread; ``execute_async`` is what the worker's event loop awaits.
    By default it runs ``execute`` on a thread of the loop's default executor, which the
    worker sizes to its concurrency (threads are made only as runs need them); executors
    that can wait without a thread (async python jobs) override it.
    """

    @abstractmethod
    def execute(self, request: ExecutionRequest, cancel: CancelSignal) -> ExecutionResult: ...

    def execute_async(
        self, request: ExecutionRequest, cancel: RunCancel
    ) -> Awaitable[ExecutionResult]:
        """What the worker's loop awaits. A plain method, so executors that only pass a
        run on return their inner executor's awaitable: no frame of theirs stays
        suspended for each of the thousands of running runs."""
        return self._in_thread(request, cancel)

    async def _in_thread(self, request: ExecutionRequest, cancel: RunCancel) -> ExecutionResult:
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
