"""Control of a child process that leads its own session and process group.

Children are started with ``start_new_session=True``, so the child's pid is also the id
of the process group that holds it and everything it spawns. Signalling that group
reaches the whole tree. The leader is not reaped until the group has been sent SIGKILL:
as long as the leader exists (even as a zombie) its pid cannot be reused, so the
signal can never reach an unrelated process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import time

logger = logging.getLogger(__name__)

_EXIT_POLL = 0.01  # seconds between checks where no pidfd is available


def describe_exit(returncode: int) -> str:
    """``exit code 3`` or ``killed by signal SIGKILL``, from a ``Popen.returncode``."""
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        return f"killed by signal {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"


class GroupLeader:
    """A started child that leads its own process group, with its exit observable."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.exit_fd = _open_pidfd(popen.pid)
        self.returncode: int | None = None

    def exited(self) -> bool:
        """Whether the leader has exited, without reaping it."""
        if self.returncode is not None:
            return True
        if not hasattr(os, "waitid"):
            return self.popen.poll() is not None
        try:
            state = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return state is not None

    def wait_exit(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the leader to exit; True if it did."""
        if self.exit_fd is not None:
            readable, _, _ = select.select([self.exit_fd], [], [], max(timeout, 0.0))
            return bool(readable) or self.exited()
        deadline = time.monotonic() + timeout
        while not self.exited():
            if time.monotonic() >= deadline:
                return False
            time.sleep(_EXIT_POLL)
        return True

    def signal_group(self, signum: signal.Signals) -> None:
        """Send ``signum`` to every process in the group (nothing if it is gone)."""
        if self.returncode is not None:
            return  # reaped: the pid may belong to someone else now
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)

    def stop(self, grace: float) -> None:
        """SIGTERM to the group, then SIGKILL once the leader exits or ``grace`` runs out."""
        self.signal_group(signal.SIGTERM)
        if not self.wait_exit(grace):
            logger.info("pid %d ignored SIGTERM for %.1f s; sending SIGKILL", self.pid, grace)
        self.signal_group(signal.SIGKILL)

    def reap(self) -> int:
        """Kill what is left of the group, collect the leader's status and return it."""
        if self.returncode is None:
            self.signal_group(signal.SIGKILL)
            self.returncode = self.popen.wait()
            if self.exit_fd is not None:
                os.close(self.exit_fd)
                self.exit_fd = None
        return self.returncode


def _open_pidfd(pid: int) -> int | None:
    # A pidfd becomes readable when the process exits, so a selector wakes at once.
    # Without one (older kernels, other systems) callers fall back to polling.
    if not hasattr(os, "pidfd_open"):
        return None
    try:
        return os.pidfd_open(pid)
    except OSError:
        return None
