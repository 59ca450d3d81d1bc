"""The loop of the async pool's child: ``async def`` jobs run as coroutines, thousands at
once, on one event loop (see ``worker.async_pool``).

Protocol: frames of a 4-byte big-endian length and an orjson document.
- to the child: ``{"op": "run", "id": run id, "function", "parameters", "context",
  "defined_in", "timeout"}`` (as a prefork task, plus the timeout) and
  ``{"op": "cancel", "id": run id}``;
- from the child: ``{"op": "out", "id", "stream": "stdout" | "stderr", "data": text}``
  as a job writes, then one ``{"op": "done", "id", "reply": {...}}`` per run, where the
  reply is a prefork reply, ``{"status": "timed_out"}``, ``{"status": "cancelled"}``, or
  ``{"status": "sync"}``: the function is not a coroutine function, so it belongs to the
  prefork pool and nothing was called.

A run task with ``"thread": true`` (a job with ``pool: "thread"``) runs a plain function
on a thread of the child's bounded pool (``asyncio.to_thread``: it copies the task's
context, so output capture and ``chronolog.current_run()`` follow the run onto the
thread). When every thread is busy, further runs wait for one; their timeout counts
while they wait. A timeout or a cancel cannot stop a thread: the run is answered at once
and the thread is left to finish (what it prints or returns then goes nowhere); one
that never returns keeps its thread until the child is replaced.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import io
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import orjson

from worker.context import RunContext, set_task_run, traced
from worker.prefork_child import (
    CannotLoad,
    LoadedFunctions,
    _describe,
    _encode,
    _exit_reply,
    _failure,
    check_arguments,
    check_defined_in,
    converted,
)

HEADER = 4
THREADS = 256  # threads for ``pool: "thread"`` runs (the bootstrap may say otherwise)
# Frames of the machinery between the await and the job, left out of its traceback.
_MACHINERY = (
    str(Path(asyncio.__file__).parent) + os.sep,
    str(Path(functools.__file__).parent / "concurrent") + os.sep,
)
_RUN_ID: ContextVar[str | None] = ContextVar("chronolog_async_run_id", default=None)


def frame(document: bytes) -> bytes:
    return len(document).to_bytes(HEADER, "big") + document


class _Channel:
    """The child's end of the socket; ``send`` may be called from any thread."""

    def __init__(self, writer: asyncio.StreamWriter, loop: asyncio.AbstractEventLoop) -> None:
        self.writer = writer
        self.loop = loop
        self.thread = threading.get_ident()

    def send(self, document: bytes) -> None:
        if threading.get_ident() == self.thread:
            self.writer.write(frame(document))
        else:  # a job's own thread printing: the transport belongs to the loop's thread
            self.loop.call_soon_threadsafe(self.writer.write, frame(document))


class RunStream(io.TextIOBase):
    """``sys.stdout`` / ``sys.stderr`` of the child: what a job writes goes to its run
    (the asyncio task's context says which); anything else to the real stream."""

    def __init__(self, name: str, real: Any, channel: _Channel) -> None:
        self._name = name
        self._real = real
        self._channel = channel

    def write(self, text: str) -> int:
        run_id = _RUN_ID.get()
        if run_id is None:
            return int(self._real.write(text))
        document = {"op": "out", "id": run_id, "stream": self._name, "data": text}
        self._channel.send(orjson.dumps(document))
        return len(text)

    def flush(self) -> None:
        self._real.flush()

    def writable(self) -> bool:
        return True


class AsyncRunner:
    def __init__(self, channel: _Channel, threads: int = THREADS) -> None:
        self._channel = channel
        # Threads start as runs need them, up to ``threads``; more runs wait in its queue.
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="job")
        self._functions = LoadedFunctions()
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._cancelled: set[str] = set()

    def start(self, task: dict[str, Any]) -> None:
        run_id: str = task["id"]
        self.tasks[run_id] = asyncio.get_running_loop().create_task(self._run(task))

    def cancel(self, run_id: str) -> None:
        running = self.tasks.get(run_id)
        if running is not None:
            self._cancelled.add(run_id)
            running.cancel()

    async def _run(self, task: dict[str, Any]) -> None:
        run_id: str = task["id"]
        _RUN_ID.set(run_id)
        parameters: dict[str, Any] = task["parameters"]
        raw_context = task.get("context")
        context = None if raw_context is None else RunContext.from_wire(raw_context, parameters)
        set_task_run(context)
        try:
            with traced(context):
                reply = await self._reply(task, parameters)
        finally:
            self.tasks.pop(run_id, None)
            self._cancelled.discard(run_id)
        encoded = _encode(reply) if reply["status"] in ("succeeded", "failed") else None
        body = encoded if encoded is not None else orjson.dumps(reply)
        self._channel.send(
            b'{"op":"done","id":' + orjson.dumps(run_id) + b',"reply":' + body + b"}"
        )

    async def _reply(self, task: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
        ref: str = task["function"]
        try:
            function, signature = self._functions.get(ref)
            check_defined_in(ref, function, task.get("defined_in"))
        except CannotLoad as exc:
            return _failure(str(exc), retryable=False)
        except Exception as exc:
            self._traceback(exc)
            return _failure(f"cannot load job function {ref!r}: {_describe(exc)}")
        is_async = inspect.iscoroutinefunction(function)
        if not is_async and not task.get("thread"):
            return {"status": "sync"}
        try:
            check_arguments(ref, signature, parameters)
            parameters = converted(ref, function, parameters)
        except CannotLoad as exc:
            return _failure(str(exc), retryable=False)
        call: Callable[[], Awaitable[Any]] = functools.partial(function, **parameters)
        if not is_async:
            call = functools.partial(self._on_thread, function, parameters)
        return await self._call(call, float(task["timeout"]), task["id"])

    def _on_thread(
        self, function: Callable[..., Any], parameters: dict[str, Any]
    ) -> Awaitable[Any]:
        # As asyncio.to_thread, on the bounded pool: the task's context goes along, so the
        # run's output capture and current_run() work on the thread.
        context = contextvars.copy_context()
        job = functools.partial(context.run, function, **parameters)
        return asyncio.get_running_loop().run_in_executor(self._threads, job)

    async def _call(
        self, call: Callable[[], Awaitable[Any]], timeout: float, run_id: str
    ) -> dict[str, Any]:
        try:
            async with asyncio.timeout(timeout) as deadline:
                value = await call()
        except asyncio.CancelledError:
            if run_id in self._cancelled:
                return {"status": "cancelled"}
            raise
        except TimeoutError as exc:
            if deadline.expired():
                return {"status": "timed_out"}
            self._traceback(exc)
            return _failure(_describe(exc))
        except SystemExit as exc:
            return _exit_reply(exc)
        except Exception as exc:
            self._traceback(exc)
            return _failure(_describe(exc))
        return {"status": "succeeded", "result": value}

    def _traceback(self, exc: BaseException) -> None:
        report = traceback.TracebackException.from_exception(exc)
        frames = [
            f
            for f in report.stack
            if f.filename != __file__ and not f.filename.startswith(_MACHINERY)
        ]
        report.stack = traceback.StackSummary.from_list(frames)
        sys.stderr.write("".join(report.format()))


async def serve(fd: int, threads: int = THREADS) -> None:
    """Run tasks from the socket ``fd`` until the worker closes it; ``threads`` bounds
    the pool that ``pool: "thread"`` runs share (threads start only as runs need them)."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(sock=socket.socket(fileno=fd))
    channel = _Channel(writer, loop)
    sys.stdout = RunStream("stdout", sys.__stdout__, channel)
    sys.stderr = RunStream("stderr", sys.__stderr__, channel)
    runner = AsyncRunner(channel, threads)
    while True:
        try:
            header = await reader.readexactly(HEADER)
            message = orjson.loads(await reader.readexactly(int.from_bytes(header, "big")))
        except (asyncio.IncompleteReadError, ConnectionError):
            break
        if message["op"] == "run":
            runner.start(message)
        elif message["op"] == "cancel":
            runner.cancel(message["id"])
        await writer.drain()
    for task in list(runner.tasks.values()):
        task.cancel()


def main(fd: int, threads: int = THREADS) -> None:
    """Entry point of the async pool's child; ``fd`` is its end of the socket."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sys.dont_write_bytecode = True
    asyncio.run(serve(fd, threads))
    # A thread a timed-out run left behind must not hold the exit (the interpreter would
    # join it): every run has been answered or given up on by now.
    for stream in (sys.__stdout__, sys.__stderr__):
        if stream is not None:
            stream.flush()
    if "chronolog.tracing" in sys.modules:  # a traced job ran: export its spans (no atexit)
        sys.modules["chronolog.tracing"].flush()
    os._exit(0)
