"""Async python jobs: coroutines on the event loop of one async pool child."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.conftest import wait_until
from tests.jobs.builders import make_request
from worker.execution import ExecutionResult, RunCancel
from worker.python_executor import PythonExecutor

GRACE = 0.5
SAMPLE = "tests.jobs.sample"
T = TypeVar("T")


@pytest.fixture
def python() -> Iterator[PythonExecutor]:
    executor = PythonExecutor(processes=1, grace=GRACE)
    yield executor
    executor.close()


async def call(
    executor: PythonExecutor,
    function: str,
    timeout: float = 10.0,
    cancel: RunCancel | None = None,
    output: list[tuple[str, bytes]] | None = None,
    **parameters: Any,
) -> ExecutionResult:
    request = make_request("python", parameters, function=f"{SAMPLE}:{function}", timeout=timeout)
    if output is not None:
        request = dataclasses.replace(request, on_output=lambda s, c: output.append((s, c)))
    return await executor.execute_async(request, cancel or RunCancel())


def on_loop(executor: PythonExecutor, work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` on a fresh event loop, closing the executor's async side on it."""

    async def main() -> T:
        try:
            return await work
        finally:
            await executor.aclose()

    return asyncio.run(main())


def test_a_thousand_sleeping_coroutines_run_at_once_in_one_process(
    python: PythonExecutor,
) -> None:
    async def main() -> list[ExecutionResult]:
        calls = [call(python, "async_sleep", seconds=1.0, label=str(i)) for i in range(1000)]
        return await asyncio.gather(*calls)

    results = on_loop(python, main())
    assert {r.status for r in results} == {"succeeded"}
    assert sorted(int(r.result["label"]) for r in results) == list(range(1000))
    assert len({r.result["pid"] for r in results}) == 1  # one process held them all
    # Each run has its own output and its own current_run(), though they share a process.
    assert all(r.stdout == f"start {r.result['label']}\n" for r in results)
    assert all(r.stderr == f"end {r.result['label']}\n" for r in results)
    assert len({r.result["run_id"] for r in results}) == 1000
    # Sleeping a second each, at once: far below the 1,000 s one after another would take.
    assert max(r.duration_ms for r in results) < 60_000


def test_live_output_reaches_the_listener_per_run(python: PythonExecutor) -> None:
    output: list[tuple[str, bytes]] = []
    result = on_loop(python, call(python, "async_sleep", seconds=0, label="x", output=output))
    assert result.status == "succeeded"
    assert b"".join(c for s, c in output if s == "stdout") == b"start x\n"
    assert b"".join(c for s, c in output if s == "stderr") == b"end x\n"


def test_a_cancel_cancels_the_coroutine_and_its_finally_runs(
    python: PythonExecutor, tmp_path: Path
) -> None:
    ready, done = tmp_path / "ready", tmp_path / "done"

    async def main() -> tuple[ExecutionResult, ExecutionResult]:
        cancel = RunCancel()
        waiting = asyncio.ensure_future(
            call(
                python,
                "async_wait_forever",
                cancel=cancel,
                ready_file=str(ready),
                done_file=str(done),
            )
        )
        neighbour = asyncio.ensure_future(call(python, "async_sleep", seconds=1.5, label="n"))
        while not ready.exists():
            await asyncio.sleep(0.01)
        cancel.set()  # as the worker's cancel listener does, from its own thread
        return await waiting, await neighbour

    cancelled, neighbour = on_loop(python, main())
    assert cancelled.status == "cancelled"
    assert done.exists()
    assert neighbour.status == "succeeded"  # the other runs of the process go on


def test_a_timeout_cancels_only_that_coroutine(python: PythonExecutor, tmp_path: Path) -> None:
    ready, done = tmp_path / "ready", tmp_path / "done"

    async def main() -> tuple[ExecutionResult, ExecutionResult]:
        return await asyncio.gather(
            call(
                python,
                "async_wait_forever",
                timeout=0.5,
                ready_file=str(ready),
                done_file=str(done),
            ),
            call(python, "async_sleep", seconds=1.0, label="n"),
        )

    timed_out, neighbour = on_loop(python, main())
    assert timed_out.status == "timed_out"
    assert timed_out.error == "timed out after 0.5 s"
    wait_until(done.exists)
    assert neighbour.status == "succeeded"


def test_an_exception_fails_the_run_with_its_traceback(python: PythonExecutor) -> None:
    result = on_loop(python, call(python, "async_fail", message="nope"))
    assert result.status == "failed"
    assert result.error == "ValueError: nope"
    assert result.retryable
    assert "raise ValueError(message)" in result.stderr


def test_a_coroutine_that_blocks_the_loop_past_its_timeout_gets_the_child_replaced(
    python: PythonExecutor,
) -> None:
    python.async_pool.answer_margin = 1.0

    async def main() -> tuple[ExecutionResult, ExecutionResult]:
        blocked = await call(python, "async_block", timeout=0.2, seconds=30)
        after = await call(python, "async_sleep", seconds=0, label="after")
        return blocked, after

    blocked, after = on_loop(python, main())
    assert blocked.status == "timed_out"
    assert after.status == "succeeded"


def test_a_plain_function_goes_to_the_prefork_pool(python: PythonExecutor) -> None:
    async def main() -> tuple[ExecutionResult, ExecutionResult]:
        return await call(python, "whoami"), await call(python, "async_sleep", seconds=0)

    plain, coroutine = on_loop(python, main())
    assert plain.status == "succeeded" and coroutine.status == "succeeded"
    assert plain.result != coroutine.result["pid"]  # a prefork child, not the async one


def child_pids() -> set[int]:
    """The pids of this process's children (from /proc: Linux)."""
    me, found = os.getpid(), set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # it ended meanwhile
        if int(fields[1]) == me:
            found.add(int(stat.parent.name))
    return found


def test_prefork_children_start_only_when_a_plain_function_runs(python: PythonExecutor) -> None:
    async def main() -> tuple[ExecutionResult, set[int], ExecutionResult, set[int]]:
        coroutine = await call(python, "async_sleep", seconds=0)
        before_plain = child_pids()
        plain = await call(python, "whoami")
        return coroutine, before_plain, plain, child_pids()

    coroutine, before_plain, plain, after = on_loop(python, main())
    assert coroutine.status == "succeeded" and plain.status == "succeeded"
    assert coroutine.result["pid"] in before_plain
    # An async job alone started no prefork child; the first plain one started one.
    assert plain.result not in before_plain
    assert plain.result in after


def test_parameters_that_do_not_fit_fail_without_retry(python: PythonExecutor) -> None:
    result = on_loop(python, call(python, "async_add", a=1))
    assert result.status == "failed"
    assert not result.retryable
    assert "do not fit" in (result.error or "")
