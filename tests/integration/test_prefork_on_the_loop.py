"""The prefork pool watched by an event loop (``PreforkPool.run_async``): what the worker
uses for plain python functions, with no thread per run. The same endings as the
threaded ``run`` (tests/integration/test_executors_python.py), with real children."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_until
from tests.jobs.builders import make_request
from tests.jobs.processes import is_running, read_pids
from worker.execution import OUTPUT_LIMIT, ExecutionResult, RunCancel
from worker.output import truncation_marker
from worker.prefork import PreforkPool
from worker.python_executor import PythonExecutor

GRACE = 0.5
SAMPLE = "tests.jobs.sample"


@pytest.fixture(scope="module")
def pool() -> Iterator[PreforkPool]:
    with PreforkPool(2, GRACE) as pool:
        yield pool


@pytest.fixture
def solo() -> Iterator[PreforkPool]:
    """One child, to follow what happens to it."""
    with PreforkPool(1, GRACE) as pool:
        yield pool


async def run_on(
    pool: PreforkPool,
    function: str,
    timeout: float = 10.0,
    cancel: RunCancel | None = None,
    **parameters: Any,
) -> ExecutionResult:
    return await pool.run_async(f"{SAMPLE}:{function}", parameters, timeout, cancel or RunCancel())


def run(pool: PreforkPool, function: str, timeout: float = 10.0, **parameters: Any) -> Any:
    return asyncio.run(run_on(pool, function, timeout, **parameters))


def test_a_result_and_the_output_of_each_task(pool: PreforkPool) -> None:
    assert run(pool, "add", a=2, b=3).result == 5
    printed = run(pool, "print_both", text="one")
    assert (printed.status, printed.stdout, printed.stderr) == (
        "succeeded",
        "out: one\n",
        "err: one\n",
    )
    for _ in range(3):  # whichever child runs next, nothing of the last task leaks in
        later = run(pool, "noop")
        assert (later.stdout, later.stderr) == ("", "")


def test_more_runs_than_children_all_complete_on_one_loop(pool: PreforkPool) -> None:
    async def many() -> list[ExecutionResult]:
        return await asyncio.gather(*(run_on(pool, "add", a=i, b=1) for i in range(20)))

    results = asyncio.run(many())
    assert [r.result for r in results] == [i + 1 for i in range(20)]


def test_an_exception_fails_the_task(pool: PreforkPool) -> None:
    result = run(pool, "fail", message="nope")
    assert result.status == "failed"
    assert "nope" in (result.error or "")


def test_output_is_capped_to_its_tail(pool: PreforkPool) -> None:
    result = run(pool, "print_a_lot", lines=2000)
    assert result.stdout.startswith(truncation_marker(2000 * 100 - OUTPUT_LIMIT))
    assert result.stdout.endswith("line 000001999 " + "x" * 84 + "\n")


def test_a_timeout_kills_the_job_and_its_subprocesses(pool: PreforkPool, tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    started = time.monotonic()
    result = run(pool, "spawn_grandchildren", timeout=1.0, pid_file=str(pid_file))
    assert (result.status, result.error) == ("timed_out", "timed out after 1 s")
    assert time.monotonic() - started < 1.0 + GRACE + 1.0
    pids = read_pids(pid_file)
    assert len(pids) == 2
    wait_until(lambda: not any(is_running(pid) for pid in pids), timeout=5)
    assert run(pool, "add", a=1, b=1).result == 2


def test_sigkill_follows_an_ignored_sigterm(solo: PreforkPool, tmp_path: Path) -> None:
    pid = run(solo, "whoami").result
    started = time.monotonic()
    result = run(solo, "ignore_sigterm", timeout=0.3, ready_file=str(tmp_path / "ready"))
    assert result.status == "timed_out"
    assert time.monotonic() - started >= 0.3 + GRACE * 0.9
    wait_until(lambda: not is_running(pid), timeout=5)
    assert run(solo, "whoami").result != pid


def test_a_cancel_from_another_thread_stops_the_job(solo: PreforkPool, tmp_path: Path) -> None:
    pid = run(solo, "whoami").result
    ready, cancel = tmp_path / "ready", RunCancel()

    def cancel_when_ready() -> None:
        wait_until(ready.exists, timeout=5)
        cancel.set()

    canceller = threading.Thread(target=cancel_when_ready)
    canceller.start()
    result = asyncio.run(run_on(solo, "sleep_forever", 30, cancel, ready_file=str(ready)))
    canceller.join()
    assert (result.status, result.error) == ("cancelled", "cancelled")
    wait_until(lambda: not is_running(pid), timeout=5)
    assert run(solo, "whoami").result != pid


def test_a_cancel_before_start_runs_nothing(pool: PreforkPool, tmp_path: Path) -> None:
    cancel = RunCancel()
    cancel.set()
    marker = tmp_path / "ready"
    result = asyncio.run(run_on(pool, "sleep_forever", 10, cancel, ready_file=str(marker)))
    assert result.status == "cancelled"
    assert not marker.exists()


def test_a_child_that_dies_fails_the_task_and_is_replaced(solo: PreforkPool) -> None:
    pid = run(solo, "whoami").result
    result = run(solo, "crash")
    assert result.status == "failed"
    assert (result.error or "").startswith("worker process died (exit code 3")
    assert run(solo, "whoami").result != pid
    assert not is_running(pid)


class CountingThreads(ThreadPoolExecutor):
    """A loop's default executor that counts what it is given."""

    submitted = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def test_plain_functions_run_without_a_thread_once_a_child_is_up() -> None:
    threads = CountingThreads(4)
    with PythonExecutor(processes=1, grace=GRACE) as python:

        async def twice() -> tuple[list[ExecutionResult], int]:
            asyncio.get_running_loop().set_default_executor(threads)
            request = make_request("python", {"a": 2, "b": 2}, function=f"{SAMPLE}:add")
            first = await python.execute_async(request, RunCancel())  # starts the child
            before = threads.submitted
            # The async child said "not a coroutine function" once; now it is known, and
            # the idle prefork child takes the run on the loop.
            second = await python.execute_async(request, RunCancel())
            handed = threads.submitted - before
            await python.aclose()  # the async child's socket, on the loop that opened it
            return [first, second], handed

        results, handed_to_threads = asyncio.run(twice())
    assert [r.result for r in results] == [4, 4]
    assert handed_to_threads == 0
