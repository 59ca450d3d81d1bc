"""A prefork pool: long-lived Python child processes that run python jobs.

Each child is a fresh interpreter (not a fork of the worker, whose threads, sockets and
locks must not leak into job code) that leads its own process group, so a timeout can
kill the job together with anything it spawned. A thread checks a child out, runs one
task on it and checks it back in; the pool size is the concurrency. A child that is
killed (timeout, cancel) or dies is replaced by a fresh one.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import orjson

from events.errors import ChronologError
from worker.execution import ExecutionResult, OutcomeStatus, OutputListener, stream_listener
from worker.orphans import die_with_parent
from worker.output import TailBuffer
from worker.process import GroupLeader, describe_exit
from worker.results import cancelled_before_start, elapsed_ms, failed, timed_out_error
from worker.streams import CANCEL_POLL, Ending, StreamPump, supervise

logger = logging.getLogger(__name__)

DEFAULT_GRACE = 5.0
# The child gets the parent's sys.path before importing anything of ours, so job
# modules resolve in the child exactly as they would in the worker.
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
        self._outputs = (out_r, err_r)
        self.pump = StreamPump()
        self.pump.add_reader(out_r, TailBuffer())
        self.pump.add_reader(err_r, TailBuffer())
        self.pump.add_wakeup(conn.fileno())
        if leader.exit_fd is not None:
            self.pump.add_wakeup(leader.exit_fd)

    @classmethod
    def spawn(cls) -> _PoolChild:
        """Start a child; it imports its modules while the caller goes on."""
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
                        json.dumps(sys.path),
                        str(child_sock.fileno()),
                    ]
                ),
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
        cancel: threading.Event,
        grace: float,
        on_output: OutputListener | None = None,
    ) -> _Attempt:
        """Send one task and wait for its reply, the deadline, a cancel or the child's end."""
        attempt = _Attempt(
            "finished",
            TailBuffer(listener=stream_listener(on_output, "stdout")),
            TailBuffer(listener=stream_listener(on_output, "stderr")),
        )
        self.pump.set_buffer(self._outputs[0], attempt.stdout)
        self.pump.set_buffer(self._outputs[1], attempt.stderr)
        try:
            self.conn.send_bytes(payload)
        except OSError:
            attempt.returncode = self.discard()
            return attempt
        attempt.ending = supervise(self.pump, self._woken, deadline, cancel)
        if attempt.ending == "finished":
            attempt.reply = self._receive()
        else:
            self.leader.stop(grace)
        if attempt.reply is None:
            attempt.returncode = self.discard()
        else:
            self.pump.drain()
        return attempt

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


class PreforkPool:
    """``size`` Python child processes; ``run`` may be called from many threads at once."""

    def __init__(self, size: int = 2, grace: float = DEFAULT_GRACE) -> None:
        if size < 1:
            raise ValueError(f"a prefork pool needs at least one process, got {size}")
        self.size = size
        self.grace = grace
        self._closed = False
        self._lock = threading.Lock()  # closing and checking in never interleave
        self._idle: queue.LifoQueue[_PoolChild | None] = queue.LifoQueue()
        for _ in range(size):
            self._idle.put(_PoolChild.spawn())

    def run(
        self,
        function: str,
        parameters: dict[str, Any],
        timeout: float,
        cancel: threading.Event,
        on_output: OutputListener | None = None,
    ) -> ExecutionResult:
        """Call ``function(**parameters)`` in a child; never longer than ``timeout`` seconds."""
        started = time.monotonic()
        try:
            payload = orjson.dumps({"function": function, "parameters": parameters})
        except TypeError as exc:
            return failed(f"parameters are not JSON-serialisable: {exc}", started)
        child = self._checkout(cancel)
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

    def _checkout(self, cancel: threading.Event) -> _PoolChild | None:
        while not cancel.is_set():
            if self._closed:
                raise PoolClosed("the prefork pool is closed")
            try:
                child = self._idle.get(timeout=CANCEL_POLL)
            except queue.Empty:
                continue
            if child is not None:
                return child
            return self._spawn_or_release()
        return None

    def _spawn_or_release(self) -> _PoolChild:
        try:
            return _PoolChild.spawn()
        except OSError:
            self._idle.put(None)  # keep the slot: a later checkout tries again
            raise

    def _checkin(self, child: _PoolChild) -> None:
        slot: _PoolChild | None = child
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
            return _PoolChild.spawn()
        except OSError:
            logger.exception("cannot start a prefork child; the next task tries again")
            return None


def _to_result(attempt: _Attempt, started: float, timeout: float) -> ExecutionResult:
    status, error, result, exit_code = _outcome(attempt, timeout)
    return ExecutionResult(
        status=status,
        duration_ms=elapsed_ms(started),
        exit_code=exit_code,
        stdout=attempt.stdout.text(),
        stderr=attempt.stderr.text(),
        result=result,
        error=error,
    )


def _outcome(
    attempt: _Attempt, timeout: float
) -> tuple[OutcomeStatus, str | None, Any, int | None]:
    if attempt.ending == "timed_out":
        return "timed_out", timed_out_error(timeout), None, None
    if attempt.ending == "cancelled":
        return "cancelled", "cancelled", None, None
    reply = attempt.reply
    if reply is None:
        died = describe_exit(attempt.returncode or 0)
        return "failed", f"worker process died ({died})", None, None
    if reply["status"] == "succeeded":
        return "succeeded", None, reply["result"], None
    return "failed", reply["error"], None, reply.get("exit_code")
