"""Job functions the executor tests run in prefork children (``tests.jobs.sample:<name>``)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import chronolog


def noop() -> None:
    """Does nothing: the unit of pool overhead."""


def add(a: int, b: int) -> int:
    return a + b


def echo(**parameters: object) -> dict[str, object]:
    return dict(parameters)


def whoami() -> int:
    """The pid of the child that ran the task."""
    return os.getpid()


def fail(message: str = "boom") -> None:
    sys.stdout.write("about to fail\n")
    raise ValueError(message)


def describe_run(**parameters: object) -> dict[str, object]:
    """What the job learns about its run: ``chronolog.current_run()`` and the environment."""
    variables = ("RUN_ID", "JOB_ID", "JOB_NAME", "ATTEMPT", "SCHEDULED_FOR", "DATA_DIR")
    env = {name: os.environ.get(f"CHRONOLOG_{name}") for name in variables}
    try:
        run = chronolog.current_run()
    except chronolog.NoCurrentRun as exc:
        return {"run": None, "error": str(exc), "env": env}
    fields = dataclasses.asdict(run)
    fields["scheduled_for"] = run.scheduled_for and run.scheduled_for.isoformat()
    fields["parameters"] = dict(run.parameters)
    return {"run": fields, "env": env}


def raise_type_error() -> None:
    raise TypeError("a bug inside the job")


def exit_with(code: int | None) -> None:
    sys.exit(code)


def unserialisable() -> object:
    return object()


def huge_result(size: int) -> str:
    return "x" * size


async def async_add(a: int, b: int) -> int:
    return a + b


def sleep_forever(ready_file: str) -> None:
    Path(ready_file).touch()
    while True:
        time.sleep(60)


def ignore_sigterm(ready_file: str) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sleep_forever(ready_file)


def spawn_grandchildren(pid_file: str, count: int = 2) -> None:
    """Start ``count`` ``sleep 1000`` processes, record their pids, then hang."""
    pids = [subprocess.Popen(["sleep", "1000"]).pid for _ in range(count)]
    partial = Path(pid_file + ".tmp")
    partial.write_text("\n".join(map(str, pids)))
    partial.rename(pid_file)  # appears complete or not at all
    while True:
        time.sleep(60)


def print_a_lot(lines: int, stream: str = "stdout") -> int:
    """Print ``lines`` numbered lines of 100 bytes to ``stream``; return the byte count."""
    out = sys.stdout if stream == "stdout" else sys.stderr
    for i in range(lines):
        out.write(f"line {i:09d} " + "x" * 84 + "\n")
    return lines * 100


def print_both(text: str) -> None:
    sys.stdout.write(f"out: {text}\n")
    sys.stderr.write(f"err: {text}\n")


def write_fds(text: str) -> None:
    """Write straight to fds 1 and 2, as C extensions and subprocesses do."""
    os.write(1, f"fd1 {text}\n".encode())
    os.write(2, f"fd2 {text}\n".encode())


def crash(code: int = 3) -> None:
    os._exit(code)


def crash_with_signal() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def interval(log_file: str, seconds: float = 0.02) -> None:
    """Appends ``+ <ns>`` when it starts and ``- <ns>`` when it ends (the machine's
    monotonic clock, one write each, so lines of several processes never mix)."""
    with open(log_file, "a") as out:
        out.write(f"+ {time.monotonic_ns()}\n")
        out.flush()
        time.sleep(seconds)
        out.write(f"- {time.monotonic_ns()}\n")


def rendezvous(mine: str, other: str, wait: float = 5.0) -> bool:
    """Announce ``mine``, then wait for ``other``: only succeeds if both run at once."""
    Path(mine).touch()
    deadline = time.monotonic() + wait
    while not Path(other).exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def fail_loudly(size: int) -> None:
    """Raise an exception whose message is ``size`` characters long."""
    raise RuntimeError("x" * size)


# --- async jobs: coroutines in the async pool's child --------------------------------


async def async_sleep(seconds: float = 1.0, label: str = "") -> dict[str, object]:
    print(f"start {label}")  # noqa: T201 - output capture per run
    await asyncio.sleep(seconds)
    print(f"end {label}", file=sys.stderr)  # noqa: T201
    return {"label": label, "run_id": chronolog.current_run().run_id, "pid": os.getpid()}


async def async_wait_forever(ready_file: str, done_file: str) -> None:
    Path(ready_file).touch()
    try:
        await asyncio.sleep(3600)
    finally:
        Path(done_file).touch()  # cancellation runs the job's finally blocks


async def async_fail(message: str = "async boom") -> None:
    await asyncio.sleep(0)
    raise ValueError(message)


async def async_block(seconds: float) -> None:
    time.sleep(seconds)  # a blocking call: the whole event loop stops with it


# --- sync jobs with pool: "thread": plain functions on the async pool child's threads ---


def thread_gather(
    directory: str, count: int, label: str = "", wait: float = 60.0
) -> dict[str, object]:
    """Announce this run in ``directory`` (as ``label``, else its run id), then wait until
    ``count`` runs have: succeeds only if that many run at once."""
    run = chronolog.current_run()
    print(f"start {label}")  # noqa: T201 - output capture per run, from a thread
    Path(directory, label or run.run_id).touch()
    deadline = time.monotonic() + wait
    while len(os.listdir(directory)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(os.listdir(directory))} of {count} runs at once")
        time.sleep(0.05)
    print(f"end {label}", file=sys.stderr)  # noqa: T201
    return {"label": label, "run_id": run.run_id, "pid": os.getpid()}


def thread_hold(ready_file: str, release_file: str, done_file: str) -> None:
    """Hold a thread until ``release_file`` exists (at most 30 s), then say so."""
    Path(ready_file).touch()
    deadline = time.monotonic() + 30
    while not Path(release_file).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    print("after release")  # noqa: T201 - goes nowhere: the run was answered already
    Path(done_file).touch()
