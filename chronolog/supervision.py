"""Supervising the child processes ``chronolog up`` starts (scheduler, workers).

A child that dies is logged (its role, pid and how it ended) and started again after a
backoff that doubles with each quick death and resets once a child has stayed up for a
while. Stopping ``up`` stops the children without restarting them. The decision (how
long to wait before the next start) is the pure ``restart_delay``; ``Supervisor`` only
watches processes and acts on it.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

log = logging.getLogger(__name__)

POLL_INTERVAL: Final = 0.2  # seconds between looks at the children


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait before restarting a child that died."""

    initial: float = 0.5  # seconds before the first restart
    maximum: float = 30.0
    stable_after: float = 60.0  # a child up this long has recovered: the next delay is initial


def restart_delay(backoff: Backoff, uptime: float, quick_deaths: int) -> tuple[float, int]:
    """Seconds to wait before restarting a child that was up ``uptime`` s, and the new
    count of deaths in a row (``quick_deaths`` is the count before this one)."""
    deaths = 0 if uptime >= backoff.stable_after else quick_deaths
    delay = min(backoff.maximum, backoff.initial * 2.0 ** min(deaths, 32))
    return delay, deaths + 1


def describe_exit(returncode: int) -> str:
    """``killed by SIGKILL`` or ``exited with code 1``."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


@dataclass
class Child:
    role: str  # scheduler, worker-1, ...
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0  # monotonic
    quick_deaths: int = 0
    restart_at: float | None = None  # monotonic; set while the child waits to be restarted
    pass_fds: tuple[int, ...] = ()  # descriptors the child inherits (a lock it holds with us)

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, pass_fds=self.pass_fds)
        self.started_at = time.monotonic()
        self.restart_at = None
        log.info("started %s", self.role, extra={"role": self.role, "pid": self.process.pid})


@dataclass
class Supervisor:
    """Starts ``children``, restarts them when they die, stops them on ``stop``."""

    children: list[Child]
    stop_timeout: float  # seconds a child gets to stop after SIGTERM before SIGKILL
    backoff: Backoff = field(default_factory=Backoff)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @classmethod
    def start(
        cls,
        commands: Sequence[tuple[str, list[str]]],
        stop_timeout: float,
        backoff: Backoff,
        pass_fds: Mapping[str, tuple[int, ...]] | None = None,
    ) -> Supervisor:
        """``pass_fds``: by role, the descriptors that child inherits."""
        fds = pass_fds or {}
        children = [Child(role, command, pass_fds=fds.get(role, ())) for role, command in commands]
        supervisor = cls(children, stop_timeout, backoff)
        for child in supervisor.children:
            child.start()
        supervisor._thread = threading.Thread(
            target=supervisor._watch, name="supervisor", daemon=True
        )
        supervisor._thread.start()
        return supervisor

    def stop(self) -> None:
        """Stop watching (nothing is restarted from now on), then stop every child."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        running = [c.process for c in self.children if c.process and c.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _watch(self) -> None:
        while not self._stop.wait(POLL_INTERVAL):
            for child in self.children:
                try:
                    self._check(child, time.monotonic())
                except OSError:  # e.g. out of processes: try again at the next look
                    log.exception("cannot restart %s", child.role, extra={"role": child.role})

    def _check(self, child: Child, now: float) -> None:
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.start()
            return
        assert child.process is not None
        code = child.process.poll()
        if code is None:
            return
        delay, child.quick_deaths = restart_delay(
            self.backoff, now - child.started_at, child.quick_deaths
        )
        child.restart_at = now + delay
        log.error(
            "%s (pid %d) %s; restarting it in %.1f s",
            child.role,
            child.process.pid,
            describe_exit(code),
            delay,
            extra={"role": child.role, "pid": child.process.pid, "exit_code": code},
        )
