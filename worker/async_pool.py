"""The async pool: one child process whose event loop runs ``async def`` python jobs as
coroutines, so a worker holds thousands of running runs without a process (or a thread)
per run. The child is ``worker.async_child``; the worker talks to it from its own event
loop over one socket.

Isolation is per process, not per run: every async job of a worker shares the child.
A timeout or a cancel cancels the run's coroutine (its ``finally`` blocks run). A
coroutine that never yields to the loop (a blocking call) stops every run in the child:
once a run overstays its timeout by the grace period without an answer, the child is
killed and replaced, and the runs it held fail ("the async pool process died").

Sync functions of jobs with ``pool: "thread"`` run in the same child, on a thread of its
bounded pool (``threads``, 256 by default; more runs wait for a free thread): for
I/O-bound functions, thousands of runs without a process each. A timeout or cancel
answers the run at once but cannot stop its thread, which is left to finish.

The child starts on the first async job and imports job code like a prefork child (the
app dir first). Unlike a prefork child it is not replaced when job code changes on disk:
restart the worker to load edited async jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import orjson

from worker.async_child import HEADER, THREADS, frame
from worker.context import RunContext
from worker.execution import ExecutionResult, OutputListener, RunCancel, stream_listener
from worker.orphans import die_with_parent
from worker.output import TailBuffer
from worker.prefork import DEFAULT_GRACE, ChildOptions, child_environment
from worker.process import GroupLeader
from worker.results import elapsed_ms, failed, timed_out_error

logger = logging.getLogger(__name__)

_BOOTSTRAP = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from worker.async_child import main; main(int(sys.argv[2]), int(sys.argv[3]))"
)
DIED = "the async pool process died"
# Seconds past a run's timeout (or its cancel) that the child may take to answer before
# the worker decides a job blocks its event loop and replaces it: the child times runs
# out itself, so this covers only a loop that stopped turning (and a slow first import).
ANSWER_MARGIN = 5.0


class _Pending:
    """One run the child holds: the future of its reply, and its output (buffers made on
    the first chunk: most runs print nothing, and a worker holds thousands)."""

    __slots__ = ("done", "on_output", "stderr", "stdout")

    def __init__(
        self, done: asyncio.Future[dict[str, Any] | None], on_output: OutputListener | None
    ) -> None:
        self.done = done
        self.on_output = on_output
        self.stdout: TailBuffer | None = None
        self.stderr: TailBuffer | None = None

    def feed(self, stream: str, data: bytes) -> None:
        if stream == "stdout":
            if self.stdout is None:
                self.stdout = TailBuffer(listener=stream_listener(self.on_output, stream))
            self.stdout.feed(data)
        else:
            if self.stderr is None:
                self.stderr = TailBuffer(listener=stream_listener(self.on_output, "stderr"))
            self.stderr.feed(data)

    def text(self, stream: TailBuffer | None) -> str:
        return "" if stream is None else stream.text()


class _Wait:
    """How long the worker waits for one run's reply: one timer for the deadline, moved
    closer when the run is cancelled. No task, event or timer per turn of the wait."""

    __slots__ = ("_done", "_loop", "_timer", "asked", "expired")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        done: asyncio.Future[dict[str, Any] | None],
        deadline: float,
    ) -> None:
        self._loop = loop
        self._done = done
        self.asked = False  # the run was cancelled
        self.expired = False  # the deadline passed with no reply
        self._timer = loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        if not self._done.done():
            self.expired = True
            self._done.set_result(None)

    def ask(self, child: _Child, run_id: str, margin: float) -> None:
        """On the loop: tell the child to cancel the run, and give it ``margin`` s."""
        if self.asked or self._done.done():
            return
        self.asked = True
        if child.alive:
            child.send({"op": "cancel", "id": run_id})
        deadline = min(self._timer.when(), self._loop.time() + margin)
        self._timer.cancel()
        self._timer = self._loop.call_at(deadline, self._expire)

    def stop(self) -> None:
        self._timer.cancel()


class _Child:
    """The running child: its process, its socket and the runs it holds."""

    def __init__(
        self, leader: GroupLeader, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.leader = leader
        self.reader = reader
        self.writer = writer
        self.pending: dict[str, _Pending] = {}
        self.alive = True
        self.listening: asyncio.Task[None] | None = None

    def send(self, document: dict[str, Any]) -> None:
        self.writer.write(frame(orjson.dumps(document)))

    async def listen(self) -> None:
        """Deliver output and replies until the child goes; then fail what it held."""
        try:
            while True:
                header = await self.reader.readexactly(HEADER)
                message = orjson.loads(await self.reader.readexactly(int.from_bytes(header, "big")))
                self._deliver(message)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.alive = False
            for pending in self.pending.values():
                if not pending.done.done():
                    pending.done.set_result(None)

    def _deliver(self, message: dict[str, Any]) -> None:
        pending = self.pending.get(message["id"])
        if pending is None:
            return  # a run given up on (its timeout passed): nobody waits for it
        if message["op"] == "out":
            pending.feed(message["stream"], message["data"].encode())
        elif not pending.done.done():
            pending.done.set_result(message["reply"])

    def kill(self) -> None:
        self.alive = False
        self.writer.close()
        self.leader.reap()
        if self.listening is not None:
            self.listening.cancel()


class AsyncPool:
    """Runs ``async def`` jobs on one child process; use from one event loop."""

    def __init__(
        self,
        grace: float = DEFAULT_GRACE,
        options: ChildOptions | None = None,
        answer_margin: float = ANSWER_MARGIN,
        threads: int = THREADS,
    ) -> None:
        self.grace = grace
        self.threads = threads
        self.answer_margin = answer_margin
        self.options = options or ChildOptions()
        self._child: _Child | None = None
        self._starting: asyncio.Lock | None = None

    async def run(
        self,
        function: str,
        parameters: dict[str, Any],
        timeout: float,
        cancel: RunCancel,
        *,
        on_output: OutputListener | None = None,
        context: RunContext | None = None,
        defined_in: Sequence[str] | None = None,
        thread: bool = False,
    ) -> ExecutionResult | None:
        """Run ``function(**parameters)`` as a coroutine; None if it is not a coroutine
        function (nothing was called: it belongs to the prefork pool). With ``thread``,
        a plain function runs on a thread of the child's pool instead (``pool: "thread"``).
        """
        started = time.monotonic()
        run_id = context.run_id if context is not None else os.urandom(8).hex()
        task: dict[str, Any] = {
            "op": "run",
            "id": run_id,
            "function": function,
            "parameters": parameters,
            "timeout": timeout,
            "context": context.to_wire() if context is not None else None,
            "defined_in": list(defined_in) if defined_in is not None else None,
            "thread": thread,
        }
        try:
            message = frame(orjson.dumps(task))
        except TypeError as exc:
            return failed(f"parameters are not JSON-serialisable: {exc}", started)
        del task  # nothing of the request stays referenced while the run runs
        child = await self._current()
        loop = asyncio.get_running_loop()
        pending = _Pending(loop.create_future(), on_output)
        child.pending[run_id] = pending
        # The wait is inline (no coroutine of its own): thousands of runs wait here.
        wait = _Wait(loop, pending.done, loop.time() + timeout + self.answer_margin)
        cancel.on_set(
            functools.partial(
                loop.call_soon_threadsafe, wait.ask, child, run_id, self.answer_margin
            )
        )
        try:
            child.writer.write(message)
            del message  # the transport has it; ~4 KB a run must not hold for its life
            reply = await pending.done
        finally:
            wait.stop()
            child.pending.pop(run_id, None)
        ending = "finished"
        if wait.expired:
            ending = self._no_answer(child, run_id, wait)
        elif reply is not None and reply["status"] == "sync":
            return None
        return _result(reply, ending, pending, started, timeout)

    def _no_answer(self, child: _Child, run_id: str, wait: _Wait) -> str:
        """How a wait ended whose deadline passed with no reply: the child's loop did
        not answer in time, so a job blocks it; only a new child helps."""
        logger.warning(
            "async pool child %d did not answer for run %s; replacing it",
            child.leader.pid,
            run_id,
        )
        self._discard(child)
        return "cancelled" if wait.asked else "timed_out"

    async def _current(self) -> _Child:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._child is None or not self._child.alive:
                if self._child is not None:
                    self._discard(self._child)
                self._child = await self._spawn()
            return self._child

    async def _spawn(self) -> _Child:
        parent_sock, child_sock = socket.socketpair()
        try:
            popen = subprocess.Popen(
                die_with_parent(
                    [
                        sys.executable,
                        "-c",
                        _BOOTSTRAP,
                        json.dumps(self.options.path),
                        str(child_sock.fileno()),
                        str(self.threads),
                    ]
                ),
                env=child_environment(os.environ),
                stdin=subprocess.DEVNULL,
                pass_fds=(child_sock.fileno(),),
                start_new_session=True,
            )
        except OSError:
            parent_sock.close()
            raise
        finally:
            child_sock.close()
        reader, writer = await asyncio.open_connection(sock=parent_sock, limit=2**24)
        child = _Child(GroupLeader(popen), reader, writer)
        child.listening = asyncio.get_running_loop().create_task(child.listen())
        logger.info("async pool child %d started", popen.pid)
        return child

    def _discard(self, child: _Child) -> None:
        child.kill()
        for pending in child.pending.values():
            if not pending.done.done():
                pending.done.set_result(None)
        if self._child is child:
            self._child = None

    async def aclose(self) -> None:
        """Stop the child and close its socket on the loop that opened it."""
        child, self._child = self._child, None
        if child is None:
            return
        child.writer.close()
        with contextlib.suppress(ConnectionError):
            await child.writer.wait_closed()
        if child.listening is not None:
            await child.listening
        await asyncio.get_running_loop().run_in_executor(None, child.leader.stop, self.grace)
        child.leader.reap()

    def close(self) -> None:
        """Stop the child (its runs end with it); usable after the loop has ended."""
        child, self._child = self._child, None
        if child is not None:
            # Once the loop is closed the socket goes with the process.
            with contextlib.suppress(RuntimeError):
                child.writer.close()
            child.leader.stop(self.grace)
            child.leader.reap()


def _result(
    reply: dict[str, Any] | None, ending: str, pending: _Pending, started: float, timeout: float
) -> ExecutionResult:
    common: dict[str, Any] = {
        "duration_ms": elapsed_ms(started),
        "stdout": pending.text(pending.stdout),
        "stderr": pending.text(pending.stderr),
    }
    status = reply["status"] if reply is not None else ending
    if status == "timed_out":
        return ExecutionResult(status="timed_out", error=timed_out_error(timeout), **common)
    if status == "cancelled":
        return ExecutionResult(status="cancelled", error="cancelled", **common)
    if reply is None:
        return ExecutionResult(status="failed", error=DIED, **common)
    if status == "succeeded":
        return ExecutionResult(status="succeeded", result=reply["result"], **common)
    return ExecutionResult(
        status="failed",
        error=reply["error"],
        exit_code=reply.get("exit_code"),
        retryable=reply.get("retryable", True),
        **common,
    )
