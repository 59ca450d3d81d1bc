"""Moving bytes to and from a child's pipes without blocking, and waiting on the child.

One thread serves all pipes of a child through a selector, so a job that writes a lot to
both stdout and stderr (or does not read its stdin) can never deadlock the worker.
"""

from __future__ import annotations

import os
import selectors
import time
from collections.abc import Callable
from typing import Literal, TypeAlias

from worker.execution import CancelSignal
from worker.output import TailBuffer

Ending: TypeAlias = Literal["finished", "timed_out", "cancelled"]

CANCEL_POLL = 0.05  # seconds: how late a cancel or a timeout may be noticed
_CHUNK = 64 * 1024
_DRAIN_LIMIT = 16 * 1024 * 1024  # a straggler writing forever must not hold up a drain


class StreamPump:
    """Feeds a child's stdin and reads its output pipes into tail buffers.

    The pump owns (and closes) the pipe fds given to ``add_reader`` and ``add_writer``.
    Wake-up fds (a pidfd, a control socket) are only watched: ``poll`` reports them.
    """

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._buffers: dict[int, TailBuffer] = {}
        self._pending: dict[int, memoryview] = {}
        self._wakeups: set[int] = set()
        self._owned: set[int] = set()
        self.woken: set[int] = set()  # the wake-up fds the last ``poll`` found ready

    def add_reader(self, fd: int, buffer: TailBuffer) -> None:
        os.set_blocking(fd, False)
        self._owned.add(fd)
        self._buffers[fd] = buffer
        self._selector.register(fd, selectors.EVENT_READ)

    def set_buffer(self, fd: int, buffer: TailBuffer) -> None:
        """Send further output of ``fd`` to ``buffer`` (a reused child, a new task)."""
        self._buffers[fd] = buffer

    def add_writer(self, fd: int, data: bytes) -> None:
        self._owned.add(fd)
        if not data:
            self._close(fd)
            return
        os.set_blocking(fd, False)
        self._pending[fd] = memoryview(data)
        self._selector.register(fd, selectors.EVENT_WRITE)

    def add_wakeup(self, fd: int) -> None:
        self._wakeups.add(fd)
        self._selector.register(fd, selectors.EVENT_READ)

    def poll(self, timeout: float) -> set[int]:
        """Move whatever is ready within ``timeout`` seconds; return the ready wake-up fds."""
        self.woken = set()
        for key, _ in self._selector.select(timeout):
            if key.fd in self._wakeups:
                self.woken.add(key.fd)
            elif key.fd in self._pending:
                self._write(key.fd)
            else:
                self._read(key.fd)
        return self.woken

    def drain(self) -> None:
        """Read everything already written to the output pipes, without waiting."""
        for fd in list(self._buffers):
            budget = _DRAIN_LIMIT
            while budget > 0 and fd in self._buffers and self._read(fd):
                budget -= _CHUNK

    def close(self) -> None:
        for fd in list(self._owned):
            self._close(fd)
        self._selector.close()

    def _read(self, fd: int) -> bool:
        """Read one chunk; False when nothing is ready now or the pipe is closed."""
        try:
            chunk = os.read(fd, _CHUNK)
        except BlockingIOError:
            return False
        if not chunk:
            self._selector.unregister(fd)
            del self._buffers[fd]
            return False
        self._buffers[fd].feed(chunk)
        return True

    def _write(self, fd: int) -> None:
        data = self._pending[fd]
        try:
            written = os.write(fd, data)
        except BlockingIOError:
            return
        except BrokenPipeError:  # the child does not read its stdin: fine
            written = len(data)
        self._pending[fd] = data[written:]
        if written == len(data):
            self._close(fd)

    def _close(self, fd: int) -> None:
        if fd in self._buffers or fd in self._pending:
            self._selector.unregister(fd)
        self._buffers.pop(fd, None)
        self._pending.pop(fd, None)
        if fd in self._owned:
            self._owned.discard(fd)
            os.close(fd)


def supervise(
    pump: StreamPump,
    finished: Callable[[set[int]], bool],
    deadline: float,
    cancel: CancelSignal,
) -> Ending:
    """Pump output until ``finished(ready wake-up fds)``, the deadline, or a cancel."""
    while True:
        remaining = deadline - time.monotonic()
        if finished(pump.poll(min(max(remaining, 0.0), CANCEL_POLL))):
            return "finished"
        if cancel.is_set():
            return "cancelled"
        if time.monotonic() >= deadline:
            return "timed_out"
