"""The python executor and its prefork pool, with real child processes."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import chronolog
from tests.conftest import wait_until
from tests.jobs.builders import make_request
from tests.jobs.processes import is_running, read_pids
from worker.execution import OUTPUT_LIMIT, ExecutionResult
from worker.output import truncation_marker
from worker.prefork import ChildOptions, PoolClosed
from worker.prefork_child import RESULT_LIMIT, parse_function_ref, watched_files
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


def test_parameters_that_do_not_fit_fail_for_good_before_the_call(
    python: PythonExecutor,
) -> None:
    result = call(python, "fail", wrong="x")
    assert (result.status, result.retryable, result.stdout) == ("failed", False, "")
    assert result.error == (
        f"the parameters do not fit {SAMPLE}:fail(message='boom'): "
        "got an unexpected keyword argument 'wrong' (given: ['wrong'])"
    )
    missing = call(python, "add", a=1)
    assert "missing a required argument: 'b'" in (missing.error or "")
    assert missing.retryable is False


def test_a_type_error_inside_the_job_stays_retryable(python: PythonExecutor) -> None:
    result = call(python, "raise_type_error")
    assert (result.status, result.error, result.retryable) == (
        "failed",
        "TypeError: a bug inside the job",
        True,
    )


def test_an_exception_in_the_job_is_retryable(python: PythonExecutor) -> None:
    result = call(python, "fail", message="transient")
    assert (result.error, result.retryable) == ("ValueError: transient", True)


@pytest.mark.parametrize(
    ("ref", "error"),
    [
        (
            "no_such_module_xyz:run",
            "cannot import module 'no_such_module_xyz': No module named 'no_such_module_xyz'",
        ),
        (
            f"{SAMPLE}:no_such_function",
            f"cannot load job function '{SAMPLE}:no_such_function': "
            f"module '{SAMPLE}' has no attribute 'no_such_function'",
        ),
        ("nodots", "function 'nodots' is not 'module:function' or 'module.function'"),
        (
            f"{SAMPLE}:__doc__",
            f"cannot load job function '{SAMPLE}:__doc__': it is a str, not a function",
        ),
    ],
)
def test_unloadable_functions_fail_for_good_and_the_child_lives_on(
    solo: PythonExecutor, ref: str, error: str
) -> None:
    pid = call(solo, "whoami").result
    result = solo.execute(make_request("python", function=ref), threading.Event())
    assert (result.status, result.error, result.retryable) == ("failed", error, False)
    assert call(solo, "whoami").result == pid


@pytest.mark.parametrize(
    ("source", "error", "retryable"),
    [
        ("def run(:\n", "cannot import module 'broken': SyntaxError: invalid syntax", False),
        (
            "import no_such_dependency_xyz\n",
            "cannot import module 'broken': No module named 'no_such_dependency_xyz'",
            False,
        ),
        (
            "from os import no_such_name\n",
            "cannot import module 'broken': ImportError: cannot import name 'no_such_name'",
            False,
        ),
        # Anything else raised at import may be transient (a database down): retried.
        (
            "raise ConnectionError('db down')\n",
            "cannot load job function 'broken:run': ConnectionError: db down",
            True,
        ),
    ],
)
def test_a_module_that_cannot_be_imported(
    tmp_path: Path, source: str, error: str, retryable: bool
) -> None:
    (tmp_path / "broken.py").write_text(source)
    with PythonExecutor(1, GRACE, ChildOptions(app_dir=tmp_path)) as executor:
        result = executor.execute(make_request("python", function="broken:run"), threading.Event())
    assert result.status == "failed"
    assert (result.error or "").startswith(error)
    assert result.retryable is retryable
    assert "broken.py" in result.stderr  # the traceback points at the module's line


def test_a_python_job_learns_its_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHRONOLOG_DATA_DIR", "/the/workers/own/setting")
    fire = datetime(2026, 11, 23, 9, tzinfo=UTC)
    request = make_request(
        "python",
        {"k": "v"},
        attempt=3,
        scheduled_for=fire,
        function=f"{SAMPLE}:describe_run",
    )
    with PythonExecutor(1, GRACE) as executor:
        result = executor.execute(request, threading.Event())
        assert result.result == {
            "run": {
                "run_id": request.run_id,
                "job_id": request.job_id,
                "job_name": "test-job",
                "attempt": 3,
                "scheduled_for": "2026-11-23T09:00:00+00:00",
                "parameters": {"k": "v"},
                "traceparent": None,  # the worker traces nothing here
            },
            "env": {
                "RUN_ID": request.run_id,
                "JOB_ID": request.job_id,
                "JOB_NAME": "test-job",
                "ATTEMPT": "3",
                "SCHEDULED_FOR": "2026-11-23T09:00:00+00:00",
                "DATA_DIR": None,  # the worker's settings stay out of job code
            },
        }
        # The same child, a task without a run: nothing of the last one is left.
        after = executor.pool.run(f"{SAMPLE}:describe_run", {}, 10, threading.Event())
    assert after.result["run"] is None
    assert "only available while a Chronolog worker runs a python job" in after.result["error"]
    assert set(after.result["env"].values()) == {None}


def test_an_unscheduled_run_has_no_fire_time(python: PythonExecutor) -> None:
    result = call(python, "describe_run")
    assert result.result["run"]["scheduled_for"] is None
    assert result.result["env"]["SCHEDULED_FOR"] is None


def test_current_run_outside_a_worker_raises_and_running_sets_it() -> None:
    with pytest.raises(chronolog.NoCurrentRun):
        chronolog.current_run()
    context = chronolog.RunContext("run-1", "job-1", "report", 1)
    with chronolog.running(context):
        assert chronolog.current_run() is context
        assert os.environ["CHRONOLOG_JOB_NAME"] == "report"
    assert "CHRONOLOG_JOB_NAME" not in os.environ


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
    assert (result.status, result.retryable) == ("failed", False)
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


def write_module(directory: Path, name: str, source: str) -> None:
    partial = directory / f".{name}.tmp"
    partial.write_text(source)
    partial.rename(directory / f"{name}.py")  # whole, never half written


def test_the_app_dir_comes_first_on_the_childrens_path(tmp_path: Path) -> None:
    # A module named like one of the worker's own: the app dir's wins in the child.
    write_module(tmp_path, "sample_app_job", "def where():\n    return __file__\n")
    with PythonExecutor(1, GRACE, ChildOptions(app_dir=tmp_path)) as executor:
        result = executor.execute(
            make_request("python", function="sample_app_job:where"), threading.Event()
        )
        path = executor.pool.run("sys:path.copy", {}, 10, threading.Event()).result
    assert result.result == str(tmp_path / "sample_app_job.py")
    assert path[0] == str(tmp_path)


def test_a_job_module_changed_on_disk_is_reimported_by_a_fresh_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A .pyc is trusted when size and mtime (in seconds) match: children must not write
    # one, or a same-size rewrite within a second would run the old code.
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    write_module(tmp_path, "helper_mod", "SUFFIX = 'a'\n")
    job = "import os\nfrom helper_mod import SUFFIX\n\n\ndef value():\n"
    job += "    return [1, SUFFIX, os.getpid()]\n"
    write_module(tmp_path, "changing_job", job)
    request = make_request("python", function="changing_job:value")
    with PythonExecutor(1, GRACE, ChildOptions(app_dir=tmp_path)) as executor:
        first = executor.execute(request, threading.Event()).result
        assert executor.execute(request, threading.Event()).result == first  # unchanged
        write_module(tmp_path, "changing_job", job.replace("[1,", "[2,"))  # same size
        second = executor.execute(request, threading.Event()).result
        write_module(tmp_path, "helper_mod", "SUFFIX = 'b'\n")
        third = executor.execute(request, threading.Event()).result
    assert (first[:2], second[:2], third[:2]) == ([1, "a"], [2, "a"], [2, "b"])
    assert len({first[2], second[2], third[2]}) == 3  # a fresh child each time
    assert not (tmp_path / "__pycache__").exists()
    assert not any(is_running(pid) for pid in (first[2], second[2]))


def test_a_child_is_replaced_after_max_runs_per_child(tmp_path: Path) -> None:
    with PythonExecutor(1, GRACE, ChildOptions(max_runs_per_child=3)) as executor:
        pids = [call(executor, "whoami").result for _ in range(7)]
    assert pids[0] == pids[1] == pids[2] != pids[3]
    assert pids[3] == pids[4] == pids[5] != pids[6]


def test_installed_modules_and_chronologs_own_are_not_watched() -> None:
    import json

    import orjson

    import events.model
    import worker.prefork

    assert watched_files([json, orjson]) == {}
    assert watched_files([events.model, worker.prefork]) == {}  # they need a worker restart
    assert list(watched_files([sys.modules[__name__]])) == [__file__]
