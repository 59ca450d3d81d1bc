"""``SecretExecutor`` around the real executors: jobs get the values, what they produce
(output, live output, errors, results) shows ``***``."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator

import pytest

from tests.jobs.builders import make_request
from worker.execution import ExecutionRequest, ExecutionResult
from worker.executors import Executors
from worker.policy import JOB_TYPES, ExecutorPolicy
from worker.secrets import SecretExecutor, Secrets

VALUE = "pa55-W0rd-7f3c9e"
SECRETS = Secrets({"DB_PASSWORD": VALUE}, {})
REF = {"secret": "DB_PASSWORD"}


@pytest.fixture
def executor() -> Iterator[SecretExecutor]:
    # Shell jobs too: the policy (off by default) is tested in test_executors.py.
    with Executors(python_processes=1, grace=0.5, policy=ExecutorPolicy(JOB_TYPES)) as inner:
        yield SecretExecutor(inner, SECRETS, "worker-test")


def run(executor: SecretExecutor, request: ExecutionRequest) -> tuple[ExecutionResult, bytes]:
    chunks: list[bytes] = []
    live = dataclasses.replace(request, on_output=lambda _stream, chunk: chunks.append(chunk))
    return executor.execute(live, threading.Event()), b"".join(chunks)


def test_a_python_job_gets_the_value_and_its_output_and_result_are_masked(
    executor: SecretExecutor,
) -> None:
    printed, live = run(
        executor, make_request("python", {"text": REF}, function="tests.jobs.sample:print_both")
    )
    assert (printed.status, printed.stdout, printed.stderr) == (
        "succeeded",
        "out: ***\n",
        "err: ***\n",
    )
    assert VALUE.encode() not in live and b"out: ***\n" in live
    echoed, _ = run(executor, make_request("python", {"x": REF}, function="tests.jobs.sample:echo"))
    assert echoed.result == {"x": "***"}
    failed, _ = run(
        executor, make_request("python", {"message": REF}, function="tests.jobs.sample:fail")
    )
    assert failed.status == "failed" and "***" in (failed.error or "")
    assert VALUE not in (failed.error or "")


def test_a_shell_job_reads_the_value_from_its_parameters(executor: SecretExecutor) -> None:
    # The parameters come as JSON on stdin; the value goes out in two writes, split.
    command = 'read -r p; v=$(printf %s "$p" | sed \'s/.*"pw":"\\([^"]*\\)".*/\\1/\'); '
    command += 'printf %s "${v%????????}"; sleep 0.2; printf "%s|%s\\n" "${v#????????}" ${#v}'
    result, live = run(executor, make_request("shell", {"pw": REF}, command=command))
    assert (result.status, result.stdout) == ("succeeded", f"***|{len(VALUE)}\n")
    assert live == result.stdout.encode()


def test_a_missing_secret_fails_the_run_at_once_for_good(executor: SecretExecutor) -> None:
    request = make_request("shell", {"pw": {"secret": "NOT_SET_HERE"}}, command="echo ran")
    result, live = run(executor, request)
    assert (result.status, result.retryable, live) == ("failed", False, b"")
    assert result.error is not None
    assert "'NOT_SET_HERE' is not set on worker worker-test" in result.error
