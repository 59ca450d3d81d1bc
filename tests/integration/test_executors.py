"""``Executors`` picks the executor by job type and owns the python pool."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.jobs.builders import make_request
from tests.jobs.processes import is_running
from worker.executors import Executors
from worker.policy import JOB_TYPES, ExecutorPolicy, parse_allow
from worker.prefork import ChildOptions

# Every type, and the 127.0.0.1 targets of these tests: the policy itself is tested below.
OPEN = ExecutorPolicy(job_types=JOB_TYPES, http_allow=parse_allow("127.0.0.1"))


@pytest.fixture
def executors() -> Iterator[Executors]:
    with Executors(python_processes=1, grace=0.5, policy=OPEN) as chosen:
        yield chosen


def test_python_jobs_go_to_the_prefork_pool(executors: Executors) -> None:
    request = make_request("python", {"a": 1, "b": 2}, function="tests.jobs.sample:add")
    assert executors.execute(request, threading.Event()).result == 3


def test_shell_jobs_run_as_processes(executors: Executors) -> None:
    request = make_request("shell", command="echo $((6 * 7))")
    assert executors.execute(request, threading.Event()).stdout == "42\n"


def test_http_jobs_are_sent(executors: Executors) -> None:
    request = make_request("http", url="http://127.0.0.1:1/", timeout=5.0)
    result = executors.execute(request, threading.Event())
    assert (result.status, result.exit_code) == ("failed", None)
    assert "request failed" in (result.error or "")


def test_close_stops_the_pool_children() -> None:
    executors = Executors(python_processes=2, grace=0.5, policy=OPEN)
    request = make_request("python", function="tests.jobs.sample:whoami")
    pid = executors.execute(request, threading.Event()).result
    assert is_running(pid)
    executors.close()
    wait_until(lambda: not is_running(pid), timeout=5)


def test_an_unknown_job_type_is_an_error(executors: Executors) -> None:
    with pytest.raises(ValueError, match="no executor for job type 'ftp'"):
        executors.for_type("ftp")


def test_a_worker_runs_no_shell_jobs_by_default() -> None:
    with Executors(python_processes=1, grace=0.5) as defaults:
        marker = "/tmp/chronolog-shell-refused-" + str(threading.get_ident())
        result = defaults.execute(
            make_request("shell", command=f"touch {marker}"), threading.Event()
        )
    assert (result.status, result.retryable) == ("failed", False)
    assert result.error == (
        "this worker does not run shell jobs (it runs python, http); to run them, start a "
        "worker with CHRONOLOG_WORKER_JOB_TYPES=python,http,shell (or --job-types)"
    )
    assert not Path(marker).exists()


def test_python_jobs_outside_the_allowed_modules_are_refused() -> None:
    policy = ExecutorPolicy(python_modules=("tests.jobs",))
    with Executors(python_processes=1, grace=0.5, policy=policy) as limited:
        allowed = make_request("python", {"a": 1, "b": 2}, function="tests.jobs.sample:add")
        assert limited.execute(allowed, threading.Event()).result == 3
        escape = make_request("python", {"args": ["true"]}, function="subprocess:run")
        result = limited.execute(escape, threading.Event())
    assert (result.status, result.retryable) == ("failed", False)
    assert "module 'subprocess' of 'subprocess:run' is outside" in (result.error or "")
    assert "add subprocess. to CHRONOLOG_WORKER_PYTHON_MODULES" in (result.error or "")


def test_by_default_only_modules_of_the_app_dir_run(tmp_path: Path) -> None:
    (tmp_path / "reports.py").write_text("def daily():\n    return 'report'\n")
    options = ChildOptions(app_dir=tmp_path)
    with Executors(python_processes=1, grace=0.5, python_options=options) as defaults:
        ours = defaults.execute(make_request("python", function="reports:daily"), threading.Event())
        escape = make_request("python", {"args": ["true"]}, function="subprocess.run")
        refused = defaults.execute(escape, threading.Event())
    assert (ours.status, ours.result) == ("succeeded", "report")
    assert (refused.status, refused.retryable) == ("failed", False)
    assert "is not in this worker's app dir" in (refused.error or "")


def test_http_jobs_to_loopback_are_refused_by_default() -> None:
    with Executors(python_processes=1, grace=0.5) as defaults:
        request = make_request("http", url="http://127.0.0.1:1/", timeout=5.0)
        result = defaults.execute(request, threading.Event())
    assert (result.status, result.retryable) == ("failed", False)
    assert "127.0.0.1 is a loopback address" in (result.error or "")


def test_a_function_must_be_defined_in_the_allowed_modules(tmp_path: Path) -> None:
    """``reports:subprocess.run`` names the allowed module ``reports``, but the object it
    finds there is ``subprocess.run``: refused before the call."""
    marker = tmp_path / "escaped"
    (tmp_path / "reports.py").write_text("import subprocess\n\ndef daily():\n    return 1\n")
    options = ChildOptions(app_dir=tmp_path)
    with Executors(python_processes=1, grace=0.5, python_options=options) as defaults:
        escape = make_request(
            "python", {"args": ["touch", str(marker)]}, function="reports:subprocess.run"
        )
        result = defaults.execute(escape, threading.Event())
        ours = defaults.execute(make_request("python", function="reports:daily"), threading.Event())
    assert (result.status, result.retryable) == ("failed", False)
    assert result.error == (
        "'reports:subprocess.run' is defined in module 'subprocess', outside this worker's "
        "python modules (reports.); refer to a function defined in them "
        "(CHRONOLOG_WORKER_PYTHON_MODULES)"
    )
    assert not marker.exists()
    assert ours.result == 1
