"""``Executors`` picks the executor by job type and owns the python pool."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.conftest import wait_until
from tests.jobs.builders import make_request
from tests.jobs.processes import is_running
from worker.executors import Executors


@pytest.fixture
def executors() -> Iterator[Executors]:
    with Executors(python_processes=1, grace=0.5) as chosen:
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
    executors = Executors(python_processes=2, grace=0.5)
    request = make_request("python", function="tests.jobs.sample:whoami")
    pid = executors.execute(request, threading.Event()).result
    assert is_running(pid)
    executors.close()
    wait_until(lambda: not is_running(pid), timeout=5)


def test_an_unknown_job_type_is_an_error(executors: Executors) -> None:
    with pytest.raises(ValueError, match="no executor for job type 'ftp'"):
        executors.for_type("ftp")
