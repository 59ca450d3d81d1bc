"""The python executor and its prefork pool, with real child processes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_until
from tests.jobs.builders import make_request
from tests.jobs.processes import is_running, read_pids
from worker.execution import OUTPUT_LIMIT, ExecutionResult
from worker.output import truncation_marker
from worker.prefork import PoolClosed
from worker.prefork_child import RESULT_LIMIT, parse_function_ref
from worker.python_executor import PythonExecutor

GRACE = 0.5
SAMPLE = "tests.jobs.sample"


@pytest.fixture(scope="module")
def python() -> Iterator[PythonExecutor]:
    with_pool = PythonExecutor(processes=2, grace=GRACE)
    yield with_pool
    with_pool.close()


@pytest.fixture
def solo() -> Iterator[PythonExecutor]:
    """A pool of one child, to follow what happens to that child."""
    executor = PythonExecutor(processes=1, grace=GRACE)
    yield executor
    executor.close()


def call(
    executor: PythonExecutor,
    function: str,
    timeout: float = 10.0,
    cancel: threading.Event | None = None,
    **parameters: Any,
) -> ExecutionResult:
    ref = function if ":" in function else f"{SAMPLE}:{function}"
    request = make_request("python", parameters, function=ref, timeout=timeout)
    return executor.execute(request, cancel or threading.Event())


def test_return_value_becomes_the_result(python: PythonExecutor) -> None:
    result = call(python, "add", a=2, b=3)
    assert (result.status, result.result, result.exit_code, result.error) == (
        "succeeded",
        5,
        None,
        None,
    )


def test_parameters_are_keyword_arguments(python: PythonExecutor) -> None:
    result = call(python, "echo", text="hi", n=[1, {"k": None}])
    assert result.result == {"text": "hi", "n": [1, {"k": None}]}


def test_dotted_function_reference_works(python: PythonExecutor) -> None:
    request = make_request("python", {"a": 1, "b": 1}, function=f"{SAMPLE}.add")
    assert python.execute(request, threading.Event()).result == 2


def test_async_functions_are_awaited(python: PythonExecutor) -> None:
    assert call(python, "async_add", a=4, b=5).result == 9


def test_an_exception_fails_with_type_message_and_traceback(python: PythonExecutor) -> None:
    result = call(python, "fail", message="it broke")
    assert (result.status, result.error) == ("failed", "ValueError: it broke")
    assert result.stdout == "about to fail\n"
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert "sample.py" in result.stderr
    assert "prefork_child" not in result.stderr
    assert result.stderr.endswith("ValueError: it broke\n")


def test_wrong_arguments_fail_like_any_exception(python: PythonExecutor) -> None:
    result = call(python, "add", a=1)
    assert result.status == "failed"
    assert (result.error or "").startswith("TypeError:")


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("no_such_module_xyz:run", "No module named 'no_such_module_xyz'"),
        (f"{SAMPLE}:no_such_function", "has no attribute 'no_such_function'"),
        ("nodots", "is not 'module:function' or 'module.function'"),
        (f"{SAMPLE}:__doc__", "is a str, not a function"),
    ],
)
def test_unloadable_functions_fail_clearly_and_the_child_lives_on(
    solo: PythonExecutor, ref: str, reason: str
) -> None:
    pid = call(solo, "whoami").result
    result = solo.execute(make_request("python", function=ref), threading.Event())
    assert result.status == "failed"
    assert (result.error or "").startswith(f"cannot load job function {ref!r}:")
    assert reason in (result.error or "")
    assert call(solo, "whoami").result == pid


def test_a_non_json_return_value_fails_clearly(python: PythonExecutor) -> None:
    result = call(python, "unserialisable")
    assert result.status == "failed"
    assert "return value (object) is not JSON-serialisable" in (result.error or "")


def test_a_too_large_return_value_fails_clearly(python: PythonExecutor) -> None:
    result = call(python, "huge_result", size=RESULT_LIMIT + 1)
    assert result.status == "failed"
    assert f"at most {RESULT_LIMIT} are kept" in (result.error or "")


@pytest.mark.parametrize(
    ("code", "status", "exit_code"),
    [(None, "succeeded", None), (0, "succeeded", None), (4, "failed", 4)],
)
def test_sys_exit_ends_the_job_like_a_process_exit(
    python: PythonExecutor, code: int | None, status: str, exit_code: int | None
) -> None:
    result = call(python, "exit_with", code=code)
    assert (result.status, result.exit_code) == (status, exit_code)


def test_output_is_captured_per_task(python: PythonExecutor) -> None:
    result = call(python, "print_both", text="one")
    assert (result.stdout, result.stderr) == ("out: one\n", "err: one\n")
    for _ in range(3):  # whichever child runs next, nothing of the last task leaks in
        later = call(python, "noop")
        assert (later.stdout, later.stderr) == ("", "")


def test_output_written_to_the_raw_fds_is_captured(python: PythonExecutor) -> None:
    result = call(python, "write_fds", text="raw")
    assert (result.stdout, result.stderr) == ("fd1 raw\n", "fd2 raw\n")


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_output_is_capped_to_its_tail(python: PythonExecutor, stream: str) -> None:
    result = call(python, "print_a_lot", lines=2000, stream=stream)
    text = getattr(result, stream)
    assert text.startswith(truncation_marker(2000 * 100 - OUTPUT_LIMIT))
    assert text.endswith("line 000001999 " + "x" * 84 + "\n")
    assert len(text.encode()) == len(truncation_marker(2000 * 100 - OUTPUT_LIMIT)) + OUTPUT_LIMIT


def test_timeout_kills_the_job_and_its_subprocesses(python: PythonExecutor, tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    started = time.monotonic()
    result = call(python, "spawn_grandchildren", timeout=1.0, pid_file=str(pid_file))
    assert (result.status, result.error) == ("timed_out", "timed out after 1 s")
    assert time.monotonic() - started < 1.0 + GRACE + 1.0
    pids = read_pids(pid_file)
    assert len(pids) == 2
    wait_until(lambda: not any(is_running(pid) for pid in pids), timeout=5)
    assert call(python, "add", a=1, b=1).result == 2


def test_sigkill_follows_an_ignored_sigterm(solo: PythonExecutor, tmp_path: Path) -> None:
    pid = call(solo, "whoami").result
    started = time.monotonic()
    result = call(solo, "ignore_sigterm", timeout=0.3, ready_file=str(tmp_path / "ready"))
    assert result.status == "timed_out"
    assert time.monotonic() - started >= 0.3 + GRACE * 0.9
    wait_until(lambda: not is_running(pid), timeout=5)
    assert call(solo, "whoami").result != pid


def test_cancel_stops_the_job_and_replaces_the_child(solo: PythonExecutor, tmp_path: Path) -> None:
    pid = call(solo, "whoami").result
    ready, cancel = tmp_path / "ready", threading.Event()
    with ThreadPoolExecutor(1) as threads:
        future = threads.submit(call, solo, "sleep_forever", 30, cancel, ready_file=str(ready))
        wait_until(ready.exists, timeout=5)
        cancel.set()
        result = future.result(timeout=5)
    assert (result.status, result.error) == ("cancelled", "cancelled")
    assert call(solo, "whoami").result != pid


def test_a_cancel_before_start_runs_nothing(python: PythonExecutor, tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    marker = tmp_path / "ready"
    result = call(python, "sleep_forever", cancel=cancel, ready_file=str(marker))
    assert result.status == "cancelled"
    assert not marker.exists()


@pytest.mark.parametrize(
    ("function", "reason"),
    [("crash", "worker process died (exit code 3)"), ("crash_with_signal", "SIGSEGV")],
)
def test_a_child_that_dies_fails_the_task_and_is_replaced(
    solo: PythonExecutor, function: str, reason: str
) -> None:
    pid = call(solo, "whoami").result
    result = call(solo, function)
    assert result.status == "failed"
    assert reason in (result.error or "")
    assert (result.error or "").startswith("worker process died (")
    new_pid = call(solo, "whoami").result
    assert new_pid != pid
    assert not is_running(pid)


def test_the_pool_serves_many_threads_at_once(python: PythonExecutor) -> None:
    def work(thread: int) -> list[tuple[int, Any]]:
        return [
            (thread * 100 + i, call(python, "add", a=thread * 100, b=i).result) for i in range(25)
        ]

    with ThreadPoolExecutor(4) as threads:
        results = [pair for batch in threads.map(work, range(4)) for pair in batch]
    assert all(expected == got for expected, got in results)
    assert len(results) == 100
    with ThreadPoolExecutor(4) as threads:
        pids = set(threads.map(lambda _: call(python, "whoami").result, range(20)))
    assert 1 <= len(pids) <= 2


def test_two_children_really_run_in_parallel(python: PythonExecutor, tmp_path: Path) -> None:
    first, second = str(tmp_path / "first"), str(tmp_path / "second")
    with ThreadPoolExecutor(2) as threads:
        a = threads.submit(call, python, "rendezvous", mine=first, other=second)
        b = threads.submit(call, python, "rendezvous", mine=second, other=first)
        assert (a.result(timeout=10).result, b.result(timeout=10).result) == (True, True)


def test_a_job_without_a_function_fails(python: PythonExecutor) -> None:
    result = python.execute(make_request("python"), threading.Event())
    assert result.status == "failed"
    assert "names no function" in (result.error or "")


def test_a_closed_pool_stops_its_children_and_refuses_work() -> None:
    executor = PythonExecutor(processes=2, grace=GRACE)
    pids = {call(executor, "whoami").result for _ in range(4)}
    executor.close()
    wait_until(lambda: not any(is_running(pid) for pid in pids), timeout=5)
    with pytest.raises(PoolClosed):
        call(executor, "noop")


@pytest.mark.parametrize(
    ("ref", "parts"),
    [
        ("pkg.mod:func", ("pkg.mod", "func")),
        ("pkg.mod:Class.method", ("pkg.mod", "Class.method")),
        ("pkg.mod.func", ("pkg.mod", "func")),
        ("mod.func", ("mod", "func")),
    ],
)
def test_parse_function_ref(ref: str, parts: tuple[str, str]) -> None:
    assert parse_function_ref(ref) == parts


@pytest.mark.parametrize("ref", ["", "func", ":func", "mod:", "mod."])
def test_parse_function_ref_rejects_incomplete_references(ref: str) -> None:
    with pytest.raises(ValueError, match="module:function"):
        parse_function_ref(ref)
