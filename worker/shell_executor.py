"""Shell jobs: an argv list, or a command string run by ``/bin/sh -c``.

Parameters never reach the command line: they arrive as JSON on stdin and in
``CHRONOLOG_PARAMS``, next to the variables that describe the run (``CHRONOLOG_RUN_ID``,
``CHRONOLOG_JOB_ID``, ``CHRONOLOG_JOB_NAME``, ``CHRONOLOG_ATTEMPT`` and, for a run the
schedule fired, ``CHRONOLOG_SCHEDULED_FOR``), as python jobs get them. The job runs in
a new session; a timeout or a cancel sends SIGTERM to its whole process group, then
SIGKILL after the grace period. When the job's main process exits, whatever it left
running in its group is killed, so a run never leaks processes.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Mapping

import orjson

from worker import context
from worker.execution import (
    CancelSignal,
    ExecutionRequest,
    ExecutionResult,
    Executor,
    OutcomeStatus,
    stream_listener,
)
from worker.orphans import die_with_parent
from worker.output import TailBuffer
from worker.process import GroupLeader, describe_exit
from worker.results import cancelled_before_start, elapsed_ms, failed, timed_out_error
from worker.streams import Ending, StreamPump, supervise

logger = logging.getLogger(__name__)

SHELL = "/bin/sh"
DEFAULT_GRACE = 5.0
# Linux refuses a single environment string over 128 KiB; larger parameters go on stdin only.
ENV_PARAMS_LIMIT = 64 * 1024


def command_line(request: ExecutionRequest) -> list[str]:
    """The argv to execute: the job's argv as is, or its command string under ``sh -c``."""
    spec = request.spec
    if spec.argv:
        # Resolved here, not by setpriv, so a missing program is reported as such.
        if shutil.which(spec.argv[0]) is None:
            raise FileNotFoundError(errno.ENOENT, "no such executable", spec.argv[0])
        return die_with_parent(list(spec.argv))
    if spec.command:
        return die_with_parent([SHELL, "-c", spec.command])
    raise ValueError(f"shell job {request.job_id} has neither argv nor command")


def job_environment(
    request: ExecutionRequest, params_json: str, base: Mapping[str, str]
) -> dict[str, str]:
    """``base`` plus the ``CHRONOLOG_*`` variables that tell the job what it runs for.

    The worker's own ``CHRONOLOG_*`` settings are left out: their URLs may hold passwords.
    """
    env = {name: value for name, value in base.items() if not name.startswith("CHRONOLOG_")}
    env.update(context.environment(request.context()))
    if len(params_json) <= ENV_PARAMS_LIMIT:
        env[context.PARAMS] = params_json
    else:
        logger.warning("run %s: parameters too large for the environment", request.run_id)
    return env


class ShellExecutor(Executor):
    """Runs shell jobs as child processes, one process group per run."""

    def __init__(self, grace: float = DEFAULT_GRACE) -> None:
        self.grace = grace

    def execute(self, request: ExecutionRequest, cancel: CancelSignal) -> ExecutionResult:
        started = time.monotonic()
        if cancel.is_set():
            return cancelled_before_start()
        try:
            params_json = orjson.dumps(request.parameters).decode()
            argv = command_line(request)
            env = job_environment(request, params_json, os.environ)
            run = _ShellRun.start(argv, env, params_json.encode() + b"\n", request)
        except (ValueError, TypeError, OSError) as exc:
            return failed(f"cannot start command: {exc}", started)
        ending = run.wait(started + request.timeout, cancel, self.grace)
        return run.result(ending, started, request.timeout)


class _ShellRun:
    """One started command: its process group, its pipes and its captured output."""

    def __init__(self, leader: GroupLeader, pump: StreamPump, request: ExecutionRequest) -> None:
        self.leader = leader
        self.pump = pump
        self.stdout = TailBuffer(listener=stream_listener(request.on_output, "stdout"))
        self.stderr = TailBuffer(listener=stream_listener(request.on_output, "stderr"))

    @classmethod
    def start(
        cls, argv: list[str], env: dict[str, str], stdin: bytes, request: ExecutionRequest
    ) -> _ShellRun:
        pipes = [os.pipe() for _ in range(3)]  # (read, write) for stdin, stdout, stderr
        try:
            popen = subprocess.Popen(
                argv,
                stdin=pipes[0][0],
                stdout=pipes[1][1],
                stderr=pipes[2][1],
                env=env,
                start_new_session=True,
            )
        except OSError:
            for fd in (fd for pair in pipes for fd in pair):
                os.close(fd)
            raise
        for fd in (pipes[0][0], pipes[1][1], pipes[2][1]):
            os.close(fd)  # the child holds its own copies
        run = cls(GroupLeader(popen), StreamPump(), request)
        run.pump.add_writer(pipes[0][1], stdin)
        run.pump.add_reader(pipes[1][0], run.stdout)
        run.pump.add_reader(pipes[2][0], run.stderr)
        if run.leader.exit_fd is not None:
            run.pump.add_wakeup(run.leader.exit_fd)
        return run

    def wait(self, deadline: float, cancel: CancelSignal, grace: float) -> Ending:
        """Pump output until the command exits or must stop; then clean up the group."""
        try:
            ending = supervise(self.pump, lambda _: self.leader.exited(), deadline, cancel)
            if ending != "finished":
                logger.info("pid %d %s; stopping its process group", self.leader.pid, ending)
                self.leader.stop(grace)
            self.leader.reap()
            self.pump.drain()
        finally:
            self.pump.close()
        return ending

    def result(self, ending: Ending, started: float, timeout: float) -> ExecutionResult:
        returncode = self.leader.reap()
        status: OutcomeStatus = "failed"
        error: str | None = describe_exit(returncode)
        if ending == "finished" and returncode == 0:
            status, error = "succeeded", None
        elif ending == "timed_out":
            status, error = ending, timed_out_error(timeout)
        elif ending == "cancelled":
            status, error = ending, "cancelled"
        return ExecutionResult(
            status=status,
            duration_ms=elapsed_ms(started),
            exit_code=returncode,
            stdout=self.stdout.text(),
            stderr=self.stderr.text(),
            error=error,
        )
