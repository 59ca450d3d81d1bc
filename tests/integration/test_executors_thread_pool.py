"""Sync python jobs with ``pool: "thread"``: plain functions on threads of the async
pool's child, so many I/O-bound runs share one process."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.conftest import wait_until
from tests.jobs.builders import make_request
from worker.async_pool import AsyncPool
from worker.execution import ExecutionResult, RunCancel
from worker.python_executor import PythonExecutor

GRACE = 0.5
SAMPLE = "tests.jobs.sample"
T = TypeVar("T")


@pytest.fixture
def pool() -> Iterator[AsyncPool]:
    threads = AsyncPool(GRACE)
    yield threads
    threads.close()


async def call(
    pool: AsyncPool,
    function: str,
    timeout: float = 30.0,
    cancel: RunCancel | None = None,
    output: list[tuple[str, bytes]] | None = None,
    **parameters: Any,
) -> ExecutionResult:
    request = make_request("python", parameters, function=f"{SAMPLE}:{function}", timeout=timeout)
    if output is not None:
        request = dataclasses.replace(request, on_output=lambda s, c: output.append((s, c)))
    result = await pool.run(
        f"{SAMPLE}:{function}",
        request.parameters,
        request.timeout,
        cancel or RunCancel(),
        on_output=request.on_output,
        context=request.context(),
        thread=True,
    )
    assert result is not None  # a thread run is never sent back to the prefork pool
    return result


def on_loop(pool: AsyncPool, work: Coroutine[Any, Any, T]) -> T:
    async def main() -> T:
        try:
            return await work
        finally:
            await pool.aclose()

    return asyncio.run(main())


def test_many_sync_runs_are_on_threads_at_once_in_one_process(
    pool: AsyncPool, tmp_path: Path
) -> None:
    count = 200

    async def main() -> list[ExecutionResult]:
        runs = [
            call(pool, "thread_gather", directory=str(tmp_path), count=count, label=str(i))
            for i in range(count)
        ]
        return await asyncio.gather(*runs)

    results = on_loop(pool, main())
    assert {r.status for r in results} == {"succeeded"}, {r.error for r in results}
    assert len({r.result["pid"] for r in results}) == 1  # one process held them all
    # Each run has its own output and its own current_run(), though they share a process.
    assert all(r.stdout == f"start {r.result['label']}\n" for r in results)
    assert all(r.stderr == f"end {r.result['label']}\n" for r in results)
    assert len({r.result["run_id"] for r in results}) == count


def test_live_output_and_current_run_follow_the_run_onto_its_thread(pool: AsyncPool) -> None:
    output: list[tuple[str, bytes]] = []

    async def main() -> ExecutionResult:
        return await call(pool, "describe_run", output=output, day="mon")

    result = on_loop(pool, main())
    assert result.status == "succeeded", result
    assert result.result["run"]["parameters"] == {"day": "mon"}
    assert result.result["run"]["job_name"] == "test-job"
    result = on_loop(pool, call(pool, "print_both", output=output, text="hi"))
    assert (result.status, result.stdout, result.stderr) == ("succeeded", "out: hi\n", "err: hi\n")
    live = b"".join(chunk for stream, chunk in output if stream == "stdout")
    assert live.endswith(b"out: hi\n")  # live, as the thread printed it


def test_an_exception_fails_the_run_with_the_jobs_traceback(pool: AsyncPool) -> None:
    result = on_loop(pool, call(pool, "fail", message="thread boom"))
    assert (result.status, result.error) == ("failed", "ValueError: thread boom")
    assert "tests/jobs/sample.py" in result.stderr
    assert "concurrent/futures" not in result.stderr  # the pool's frames are left out


def _hold(tmp_path: Path, name: str) -> dict[str, Any]:
    return {
        "ready_file": str(tmp_path / f"{name}.ready"),
        "release_file": str(tmp_path / "release"),
        "done_file": str(tmp_path / f"{name}.done"),
    }


def test_a_timeout_answers_at_once_and_leaves_the_thread_to_finish(
    pool: AsyncPool, tmp_path: Path
) -> None:
    held = _hold(tmp_path, "slow")

    async def main() -> tuple[ExecutionResult, ExecutionResult]:
        timed_out = await call(pool, "thread_hold", timeout=0.5, **held)
        assert Path(held["ready_file"]).exists() and not Path(held["done_file"]).exists()
        after = await call(pool, "add", a=1, b=2)  # the child goes on serving runs
        Path(held["release_file"]).touch()
        await asyncio.get_running_loop().run_in_executor(
            None, wait_until, lambda: Path(held["done_file"]).exists()
        )
        return timed_out, after

    timed_out, after = on_loop(pool, main())
    assert (timed_out.status, timed_out.error) == ("timed_out", "timed out after 0.5 s")
    assert "after release" not in timed_out.stdout
    assert (after.status, after.result) == ("succeeded", 3)


def test_a_cancel_answers_at_once_and_other_runs_go_on(pool: AsyncPool, tmp_path: Path) -> None:
    mine, other = _hold(tmp_path, "mine"), _hold(tmp_path, "other")

    async def main() -> tuple[ExecutionResult, ExecutionResult]:
        cancel = RunCancel()
        cancelled = asyncio.ensure_future(call(pool, "thread_hold", cancel=cancel, **mine))
        going_on = asyncio.ensure_future(call(pool, "thread_hold", **other))
        while not (Path(mine["ready_file"]).exists() and Path(other["ready_file"]).exists()):
            await asyncio.sleep(0.01)
        cancel.set()
        result = await cancelled
        assert not going_on.done()
        Path(mine["release_file"]).touch()  # the same file releases both
        return result, await going_on

    cancelled, finished = on_loop(pool, main())
    assert (cancelled.status, cancelled.error) == ("cancelled", "cancelled")
    assert finished.status == "succeeded"
    assert finished.stdout == "after release\n"


def test_when_every_thread_is_busy_a_run_waits_and_its_timeout_counts(tmp_path: Path) -> None:
    pool = AsyncPool(GRACE, threads=1)
    first, queued = _hold(tmp_path, "first"), _hold(tmp_path, "queued")

    async def main() -> tuple[ExecutionResult, ExecutionResult]:
        holding = asyncio.ensure_future(call(pool, "thread_hold", **first))
        while not Path(first["ready_file"]).exists():
            await asyncio.sleep(0.01)
        waited = await call(pool, "thread_hold", timeout=0.5, **queued)
        Path(first["release_file"]).touch()
        return waited, await holding

    try:
        waited, held = on_loop(pool, main())
    finally:
        pool.close()
    assert (waited.status, waited.error) == ("timed_out", "timed out after 0.5 s")
    assert not Path(queued["ready_file"]).exists()  # it never got a thread, and never will
    assert held.status == "succeeded"


def test_a_job_with_pool_thread_runs_in_the_async_child_and_others_in_prefork() -> None:
    python = PythonExecutor(processes=1, grace=GRACE)

    async def main() -> tuple[ExecutionResult, ExecutionResult, ExecutionResult]:
        on_thread = make_request("python", function=f"{SAMPLE}:whoami", pool="thread")
        in_process = make_request("python", function=f"{SAMPLE}:whoami")
        coroutine = make_request("python", {"seconds": 0}, function=f"{SAMPLE}:async_sleep")
        try:
            return (
                await python.execute_async(on_thread, RunCancel()),
                await python.execute_async(in_process, RunCancel()),
                await python.execute_async(coroutine, RunCancel()),
            )
        finally:
            await python.aclose()

    try:
        threaded, prefork, async_job = asyncio.run(main())
    finally:
        python.close()
    assert {threaded.status, prefork.status, async_job.status} == {"succeeded"}
    assert threaded.result == async_job.result["pid"]  # the async pool's child
    assert prefork.result != threaded.result  # a prefork child
