"""A prefork pool: long-lived Python child processes that run python jobs.

Each child is a fresh interpreter (not a fork of the worker, whose threads, sockets and
locks must not leak into job code) that leads its own process group, so a timeout can
kill the job together with anything it spawned. A caller checks a child out, runs one
task on it and checks it back in; the pool size is the concurrency. A thread does it with
``run``; the worker's event loop with ``run_async``, which watches the child's pipes and
socket on the loop, so a run waits in no thread (only starting, replacing or stopping a
child goes to the loop's executor). One child per core is
started with the pool (or none: ``prestart``), the others when first needed. A child that is
killed (timeout, cancel) or dies is replaced by a fresh one, and so is one whose job code
changed on disk since it imported it, or that has run ``max_runs_per_child`` tasks.

Children import job code from the app dir first (``CHRONOLOG_APP_DIR``), then from the
worker's own import path.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson

from events.errors import ChronologError
from worker.context import RunContext
from worker.execution import (
    CancelSignal,
    ExecutionResult,
    OutputListener,
    RunCancel,
    stream_listener,
)
from worker.orphans import die_with_parent
from worker.output import TailBuffer
from worker.process import GroupLeader, describe_exit
from worker.results import cancelled_before_start, elapsed_ms, failed, timed_out_error
from worker.streams import CANCEL_POLL, Ending, StreamPump, supervise

logger = logging.getLogger(__name__)

DEFAULT_GRACE = 5.0
# The child gets its sys.path (the app dir, then the worker's) before importing anything
# of ours, so job modules resolve the same however the worker was started.
_BOOTSTRAP = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from worker.prefork_child import main; main(int(sys.argv[2]))"
)


class PoolClosed(ChronologError):
    """The prefork pool was closed; it runs no more tasks."""


@dataclass
class _Attempt:
    """What came of sending one task to a child."""

    ending: Ending
    stdout: TailBuffer
    stderr: TailBuffer
    reply: dict[str, Any] | None = None
    returncode: int | None = None  # set when the child is gone


class _PoolChild:
    """One child process: its control socket, its output pipes and their pump."""

    def __init__(self, leader: GroupLeader, conn: Connection, out_r: int, err_r: int) -> None:
        self.leader = leader
        self.conn = conn
        self.alive = True
        self.runs = 0  # tasks sent
        self.watched: dict[str, int] = {}  # job-code file -> its mtime when imported
        self.outputs = (out_r, err_r)
        self.pump = StreamPump()
        self.pump.add_reader(out_r, TailBuffer())
        self.pump.add_reader(err_r, TailBuffer())
        self.pump.add_wakeup(conn.fileno())
        if leader.exit_fd is not None:
            self.pump.add_wakeup(leader.exit_fd)

    @classmethod
    def spawn(cls, path: list[str]) -> _PoolChild:
        """Start a child with ``path`` as its sys.path; it imports while the caller goes on."""
        parent_sock, child_sock = socket.socketpair()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            popen = subprocess.Popen(
                die_with_parent(
                    [
                        sys.executable,
                        "-c",
                        _BOOTSTRAP,
                        json.dumps(path),
                        str(child_sock.fileno()),
                    ]
                ),
                env=child_environment(os.environ),
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                pass_fds=(child_sock.fileno(),),
                start_new_session=True,
            )
        except OSError:
            for fd in (out_r, err_r):
                os.close(fd)
            parent_sock.close()
            raise
        finally:
            child_sock.close()
            os.close(out_w)
            os.close(err_w)
        return cls(GroupLeader(popen), Connection(parent_sock.detach()), out_r, err_r)

    def run(
        self,
        payload: bytes,
        deadline: float,
        cancel: CancelSignal,
        grace: float,
        on_output: OutputListener | None = None,
    ) -> _Attempt:
        """Send one task and wait for its reply, the deadline, a cancel or the child's end."""
        attempt = self._begin(payload, on_output)
        if attempt.returncode is not None:
            return attempt
        attempt.ending = supervise(self.pump, self._woken, deadline, cancel)
        if attempt.ending == "finished":
            attempt.reply = self._receive()
        else:
            self.leader.stop(grace)
        return self._end(attempt)

    async def run_async(
        self,
        payload: bytes,
        deadline: float,
        cancel: RunCancel,
        grace: float,
        on_output: OutputListener | None = None,
    ) -> _Attempt:
        """``run`` on an event loop: the loop watches the child's pipes and socket, so no
        thread waits for the task. ``deadline`` is in the loop's time."""
        attempt = self._begin(payload, on_output)
        if attempt.returncode is not None:
            return attempt
        loop = asyncio.get_running_loop()
        attempt.ending = await _LoopWatch(loop, self, deadline, cancel).ending
        if attempt.ending == "finished":
            attempt.reply = self._receive()
        else:
            await loop.run_in_executor(None, self.leader.stop, grace)
        return self._end(attempt)

    def _begin(self, payload: bytes, on_output: OutputListener | None) -> _Attempt:
        """Send the task; an attempt with the child's exit status if it could not be sent."""
        attempt = _Attempt(
            "finished",
            TailBuffer(listener=stream_listener(on_output, "stdout")),
            TailBuffer(listener=stream_listener(on_output, "stderr")),
        )
        self.pump.set_buffer(self.outputs[0], attempt.stdout)
        self.pump.set_buffer(self.outputs[1], attempt.stderr)
        self.pump.woken = set()
        try:
            self.conn.send_bytes(payload)
        except OSError:
            attempt.returncode = self.discard()
            return attempt
        self.runs += 1
        return attempt

    def _end(self, attempt: _Attempt) -> _Attempt:
        if attempt.reply is None:
            attempt.returncode = self.discard()
        else:
            self.watched.update(attempt.reply.get("watch", {}))
            self.pump.drain()
        return attempt

    def changed_file(self) -> str | None:
        """A job-code file this child imported that changed on disk since, if any."""
        for path, mtime in self.watched.items():
            try:
                if os.stat(path).st_mtime_ns != mtime:
                    return path
            except OSError:
                return path  # deleted or moved: the import would not find it again either
        return None

    def discard(self) -> int:
        """Kill the child's group, keep its last output, release everything; the exit status."""
        if self.alive:
            self.alive = False
            self.leader.reap()
            self.pump.drain()
            self.pump.close()
            self.conn.close()
        return self.leader.reap()

    def shut_down(self, grace: float) -> None:
        """Let an idle child exit (it sees the socket close), then make sure of it."""
        self.conn.close()
        self.leader.wait_exit(grace)
        self.alive = False
        self.leader.reap()
        self.pump.close()

    def _woken(self, ready: set[int]) -> bool:
        return bool(ready) or (self.leader.exit_fd is None and self.leader.exited())

    def _receive(self) -> dict[str, Any] | None:
        # conn.poll() builds a selector per call: only ask when the pump has not seen it ready.
        try:
            if self.conn.fileno() in self.pump.woken or self.conn.poll(0):
                reply: dict[str, Any] = orjson.loads(self.conn.recv_bytes())
                return reply
        except (EOFError, OSError):
            pass  # the child died: the caller reports how
        return None


class _LoopWatch:
    """How a task on a child ends, watched by an event loop: its reply or exit (the
    socket or the pidfd readable), its deadline (a timer) or its cancel (a callback from
    the cancelling thread). Output is read into the task's buffers as it comes."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        child: _PoolChild,
        deadline: float,
        cancel: RunCancel,
    ) -> None:
        self._loop = loop
        self._child = child
        self.ending: asyncio.Future[Ending] = loop.create_future()
        self._outputs = [fd for fd in child.outputs if child.pump.reading(fd)]
        for fd in self._outputs:
            loop.add_reader(fd, self._read, fd)
        self._wakeups = [child.conn.fileno()]
        if child.leader.exit_fd is not None:
            self._wakeups.append(child.leader.exit_fd)
        for fd in self._wakeups:
            loop.add_reader(fd, self._woken, fd)
        self._timers = [loop.call_at(deadline, self._end, "timed_out")]
        if child.leader.exit_fd is None:  # no pidfd: look for the exit now and then
            self._timers.append(loop.call_later(CANCEL_POLL, self._check_exit))
        cancel.on_set(functools.partial(loop.call_soon_threadsafe, self._end, "cancelled"))
        self.ending.add_done_callback(self._stop)

    def _read(self, fd: int) -> None:
        if not self._child.pump.read_once(fd) and not self._child.pump.reading(fd):
            self._loop.remove_reader(fd)  # the pipe closed
            self._outputs.remove(fd)

    def _woken(self, fd: int) -> None:
        self._child.pump.woken.add(fd)  # the reply is read without asking the socket again
        self._end("finished")

    def _check_exit(self) -> None:
        if self._child.leader.exited():
            self._end("finished")
        elif not self.ending.done():
            self._timers.append(self._loop.call_later(CANCEL_POLL, self._check_exit))

    def _end(self, ending: Ending) -> None:
        if not self.ending.done():
            self.ending.set_result(ending)

    def _stop(self, _: asyncio.Future[Ending]) -> None:
        for fd in self._outputs + self._wakeups:
            self._loop.remove_reader(fd)
        for timer in self._timers:
            timer.cancel()


def child_path(app_dir: Path | None, worker_path: list[str]) -> list[str]:
    """A child's sys.path: the app dir first (like uvicorn's --app-dir), then the worker's."""
    if app_dir is None:
        return list(worker_path)
    first = str(app_dir)
    return [first, *(entry for entry in worker_path if entry != first)]


def child_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The worker's environment without its ``CHRONOLOG_*`` settings (URLs may hold
    passwords); each task sets the variables that describe its run."""
    return {name: value for name, value in environ.items() if not name.startswith("CHRONOLOG_")}


@dataclass(frozen=True, slots=True)
class ChildOptions:
    """Where a pool's children load job code from, and when they are replaced."""

    app_dir: Path | None = None  # first on the children's sys.path; None: the worker's path
    max_runs_per_child: int = 0  # replace a child after this many tasks; 0: never
    worker_path: list[str] = field(default_factory=lambda: list(sys.path))

    @property
    def path(self) -> list[str]:
        return child_path(self.app_dir, self.worker_path)


class PreforkPool:
    """``size`` Python child processes; ``run`` may be called from many threads at once."""

    def __init__(
        self,
        size: int = 2,
        grace: float = DEFAULT_GRACE,
        options: ChildOptions | None = None,
        *,
        prestart: int | None = None,
    ) -> None:
        if size < 1:
            raise ValueError(f"a prefork pool needs at least one process, got {size}")
        self.size = size
        self.grace = grace
        self.options = options or ChildOptions()
        self._path = self.options.path
        self._closed = False
        self._lock = threading.Lock()  # closing and checking in never interleave
        self._idle: queue.LifoQueue[_PoolChild | None] = queue.LifoQueue()
        # Children are started from one thread of the pool's own: a child gets SIGKILL
        # when the thread that started it ends (PR_SET_PDEATHSIG, worker.orphans), and
        # the caller's thread, which starts one on demand, may end first.
        self._spawner = ThreadPoolExecutor(1, thread_name_prefix="prefork-spawn")
        # A worker with --concurrency 5000 for async jobs must not start 5000 children:
        # ``prestart`` (default: one per core) start now, the rest (None slots) when a
        # checkout needs them; a worker whose jobs are all async starts none (prestart=0).
        started = min(size, (os.cpu_count() or 1) if prestart is None else prestart)
        for _ in range(size - started):
            self._idle.put(None)
        for _ in range(started):  # last in, first out: the started ones are taken first
            self._idle.put(self._spawn())

    def run(
        self,
        function: str,
        parameters: dict[str, Any],
        timeout: float,
        cancel: CancelSignal,
        *,
        on_output: OutputListener | None = None,
        context: RunContext | None = None,
        defined_in: Sequence[str] | None = None,
    ) -> ExecutionResult:
        """Call ``function(**parameters)`` in a child; never longer than ``timeout`` seconds.
        ``defined_in``: the packages the function must be defined in (None: any)."""
        started = time.monotonic()
        payload = _task_or_failure(function, parameters, context, defined_in, started)
        if isinstance(payload, ExecutionResult):
            return payload
        try:
            child = self._checkout(cancel)
        except OSError as exc:
            return _no_child(exc, started)
        if child is None:
            return cancelled_before_start()
        try:
            deadline = time.monotonic() + timeout
            attempt = child.run(payload, deadline, cancel, self.grace, on_output)
        except BaseException:
            child.discard()  # mid-task, its state is unknown: never give it another task
            raise
        finally:
            self._checkin(child)
        return _to_result(attempt, started, timeout)

    async def run_async(
        self,
        function: str,
        parameters: dict[str, Any],
        timeout: float,
        cancel: RunCancel,
        *,
        on_output: OutputListener | None = None,
        context: RunContext | None = None,
        defined_in: Sequence[str] | None = None,
    ) -> ExecutionResult:
        """``run`` on an event loop. An idle child is taken and the task watched by the
        loop, with no thread per run; only what blocks (starting or replacing a child,
        stopping one) goes to the loop's executor."""
        started = time.monotonic()
        payload = _task_or_failure(function, parameters, context, defined_in, started)
        if isinstance(payload, ExecutionResult):
            return payload
        loop = asyncio.get_running_loop()
        try:
            child = await self._checkout_async(loop, cancel)
        except OSError as exc:
            return _no_child(exc, started)
        if child is None:
            return cancelled_before_start()
        try:
            deadline = loop.time() + timeout
            attempt = await child.run_async(payload, deadline, cancel, self.grace, on_output)
        except BaseException:
            child.discard()  # mid-task, its state is unknown: never give it another task
            self._checkin(child)
            raise
        if child.alive and not self._retiring(child):
            self._checkin(child)  # only puts it back: no need for a thread
        else:
            await loop.run_in_executor(None, self._checkin, child)
        return _to_result(attempt, started, timeout)

    def close(self) -> None:
        """Stop the idle children now; busy ones stop when their task ends."""
        with self._lock:
            self._closed = True
            idle = [self._idle.get_nowait() for _ in range(self._idle.qsize())]
        children = [child for child in idle if child is not None]
        for child in children:
            child.conn.close()  # all idle children start exiting at once
        for child in children:
            child.shut_down(self.grace)

    def __enter__(self) -> PreforkPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _checkout(self, cancel: CancelSignal) -> _PoolChild | None:
        while not cancel.is_set():
            if self._closed:
                raise PoolClosed("the prefork pool is closed")
            try:
                slot = self._idle.get(timeout=CANCEL_POLL)
            except queue.Empty:
                continue
            return self._ready(slot)
        return None

    async def _checkout_async(
        self, loop: asyncio.AbstractEventLoop, cancel: RunCancel
    ) -> _PoolChild | None:
        if cancel.is_set():
            return None
        if self._closed:
            raise PoolClosed("the prefork pool is closed")
        try:
            slot = self._idle.get_nowait()
        except queue.Empty:  # every child busy: wait for one on a thread
            return await loop.run_in_executor(None, self._checkout, cancel)
        if slot is not None and slot.changed_file() is None:
            return slot
        return await loop.run_in_executor(None, self._ready, slot)

    def _ready(self, slot: _PoolChild | None) -> _PoolChild:
        """A child for the slot taken from the idle queue: started if it was empty."""
        return self._current(slot) if slot is not None else self._spawn_or_release()

    def _retiring(self, child: _PoolChild) -> bool:
        limit = self.options.max_runs_per_child
        return bool(limit) and child.runs >= limit

    def _current(self, child: _PoolChild) -> _PoolChild:
        """``child``, or a fresh one when job code it imported changed on disk."""
        changed = child.changed_file()
        if changed is None:
            return child
        logger.info("replacing prefork child %d: %s changed", child.leader.pid, changed)
        child.shut_down(self.grace)
        return self._spawn_or_release()

    def _spawn(self) -> _PoolChild:
        return self._spawner.submit(_PoolChild.spawn, self._path).result()

    def _spawn_or_release(self) -> _PoolChild:
        try:
            return self._spawn()
        except OSError:
            self._idle.put(None)  # keep the slot: a later checkout tries again
            raise

    def _checkin(self, child: _PoolChild) -> None:
        slot: _PoolChild | None = child
        if child.alive and self._retiring(child):
            logger.info("retiring prefork child %d after %d runs", child.leader.pid, child.runs)
            child.shut_down(self.grace)
        if not child.alive:
            slot = None if self._closed else self._replacement(child)
        with self._lock:
            if not self._closed:
                self._idle.put(slot)
                return
        if slot is not None:
            slot.shut_down(self.grace)

    def _replacement(self, dead: _PoolChild) -> _PoolChild | None:
        logger.info("replacing prefork child %d", dead.leader.pid)
        try:
            return self._spawn()
        except OSError:
            logger.exception("cannot start a prefork child; the next task tries again")
            return None


def _task_or_failure(
    function: str,
    parameters: dict[str, Any],
    context: RunContext | None,
    defined_in: Sequence[str] | None,
    started: float,
) -> bytes | ExecutionResult:
    """The task to send a child, or the run's failure when it cannot be sent."""
    try:
        return _task(function, parameters, context, defined_in)
    except TypeError as exc:
        return failed(f"parameters are not JSON-serialisable: {exc}", started)


def _no_child(error: OSError, started: float) -> ExecutionResult:
    logger.exception("could not start a prefork child")
    return failed(f"could not start a python child process: {error}", started)


def _task(
    function: str,
    parameters: dict[str, Any],
    context: RunContext | None,
    defined_in: Sequence[str] | None,
) -> bytes:
    """The task a child runs, as sent; TypeError if the parameters are not JSON."""
    task: dict[str, Any] = {"function": function, "parameters": parameters}
    if context is not None:
        task["context"] = context.to_wire()
    if defined_in is not None:
        task["defined_in"] = list(defined_in)
    return orjson.dumps(task)


def _to_result(attempt: _Attempt, started: float, timeout: float) -> ExecutionResult:
    return ExecutionResult(
        duration_ms=elapsed_ms(started),
        stdout=attempt.stdout.text(),
        stderr=attempt.stderr.text(),
        **_outcome(attempt, timeout),
    )


def _outcome(attempt: _Attempt, timeout: float) -> dict[str, Any]:
    """The fields of the result that depend on how the task ended."""
    if attempt.ending == "timed_out":
        return {"status": "timed_out", "error": timed_out_error(timeout)}
    if attempt.ending == "cancelled":
        return {"status": "cancelled", "error": "cancelled"}
    reply = attempt.reply
    if reply is None:
        died = describe_exit(attempt.returncode or 0)
        return {"status": "failed", "error": f"worker process died ({died})"}
    if reply["status"] == "succeeded":
        return {"status": "succeeded", "result": reply["result"]}
    return {
        "status": "failed",
        "error": reply["error"],
        "exit_code": reply.get("exit_code"),
        "retryable": reply.get("retryable", True),
    }
