"""The shell executor runs real processes: exit codes, parameters, output, process trees."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_until
from tests.jobs.builders import make_request
from tests.jobs.processes import is_running, read_pids
from worker.execution import OUTPUT_LIMIT, ExecutionRequest, ExecutionResult
from worker.output import truncation_marker
from worker.process import describe_exit
from worker.shell_executor import ShellExecutor

GRACE = 0.5


@pytest.fixture
def shell() -> ShellExecutor:
    return ShellExecutor(grace=GRACE)


def run(shell: ShellExecutor, request: ExecutionRequest) -> ExecutionResult:
    return shell.execute(request, threading.Event())


def sh(
    command: str, parameters: dict[str, Any] | None = None, timeout: float = 10.0
) -> ExecutionRequest:
    return make_request("shell", parameters, command=command, timeout=timeout)


def test_exit_code_zero_succeeds_with_output(shell: ShellExecutor) -> None:
    result = run(shell, sh("echo hello; echo oops >&2"))
    assert (result.status, result.exit_code, result.error) == ("succeeded", 0, None)
    assert (result.stdout, result.stderr) == ("hello\n", "oops\n")


def test_nonzero_exit_fails_and_names_the_code(shell: ShellExecutor) -> None:
    result = run(shell, sh("exit 3"))
    assert (result.status, result.exit_code, result.error) == ("failed", 3, "exit code 3")


def test_death_by_signal_names_the_signal(shell: ShellExecutor) -> None:
    result = run(shell, sh("kill -KILL $$"))
    assert (result.status, result.exit_code) == ("failed", -9)
    assert result.error == "killed by signal SIGKILL"


def test_argv_runs_without_a_shell(shell: ShellExecutor) -> None:
    request = make_request("shell", argv=("printf", "%s|", "a b", "$HOME", "*"))
    assert run(shell, request).stdout == "a b|$HOME|*|"


def test_parameters_arrive_as_json_on_stdin_and_in_the_environment(shell: ShellExecutor) -> None:
    parameters = {"n": 1, "name": "ünïcode", "list": [1, 2]}
    result = run(shell, sh('cat; printf "%s" "$CHRONOLOG_PARAMS"', parameters))
    stdin_line, env_value = result.stdout.split("\n")
    assert json.loads(stdin_line) == parameters
    assert json.loads(env_value) == parameters


def test_run_identity_is_in_the_environment(shell: ShellExecutor) -> None:
    request = make_request(
        "shell", command='echo "$CHRONOLOG_RUN_ID $CHRONOLOG_JOB_ID $CHRONOLOG_ATTEMPT"', attempt=4
    )
    assert run(shell, request).stdout == f"{request.run_id} {request.job_id} 4\n"


def test_job_name_and_fire_time_are_in_the_environment(shell: ShellExecutor) -> None:
    command = 'echo "$CHRONOLOG_JOB_NAME $CHRONOLOG_SCHEDULED_FOR"'
    fired = make_request(
        "shell", command=command, scheduled_for=datetime(2026, 11, 23, 9, tzinfo=UTC)
    )
    assert run(shell, fired).stdout == "test-job 2026-11-23T09:00:00+00:00\n"
    unscheduled = make_request("shell", command='echo "${CHRONOLOG_SCHEDULED_FOR-unset}"')
    assert run(shell, unscheduled).stdout == "unset\n"


def test_hostile_parameter_values_stay_inert(shell: ShellExecutor, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = f'"; touch {marker}; echo "$(touch {marker})`touch {marker}`'
    command = 'read -r line; printf "%s\\n" "$CHRONOLOG_PARAMS"'
    result = run(shell, sh(command, {"value": hostile}))
    assert result.status == "succeeded"
    assert json.loads(result.stdout) == {"value": hostile}
    assert not marker.exists()


def test_large_parameters_skip_the_environment_and_unread_stdin_is_fine(
    shell: ShellExecutor,
) -> None:
    parameters = {"blob": "x" * 300_000}  # far more than a pipe holds
    result = run(shell, sh('test -z "${CHRONOLOG_PARAMS+set}"', parameters))
    assert (result.status, result.exit_code) == ("succeeded", 0)


def test_large_stdin_is_delivered_whole(shell: ShellExecutor) -> None:
    parameters = {"blob": "y" * 300_000}
    result = run(shell, sh("wc -c", parameters))
    assert int(result.stdout) == len(json.dumps(parameters, separators=(",", ":"))) + 1


def test_heavy_output_on_both_streams_is_capped_without_deadlock(shell: ShellExecutor) -> None:
    size = 3_000_000
    command = (
        f"head -c {size} /dev/zero | tr '\\0' o & head -c {size} /dev/zero | tr '\\0' e >&2; wait"
    )
    result = run(shell, sh(command))
    assert result.status == "succeeded"
    marker = truncation_marker(size - OUTPUT_LIMIT)
    assert result.stdout == marker + "o" * OUTPUT_LIMIT
    assert result.stderr == marker + "e" * OUTPUT_LIMIT


def test_timeout_kills_the_whole_process_tree(shell: ShellExecutor, tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    command = f"sleep 1000 & echo $! > {pid_file}; sleep 1000 & echo $! >> {pid_file}; wait"
    started = time.monotonic()
    result = run(shell, sh(command, timeout=1.0))
    assert (result.status, result.error) == ("timed_out", "timed out after 1 s")
    assert time.monotonic() - started < 1.0 + GRACE + 1.0
    pids = read_pids(pid_file)
    assert len(pids) == 2
    wait_until(lambda: not any(is_running(pid) for pid in pids), timeout=5)


def test_sigkill_follows_an_ignored_sigterm_after_the_grace_period(
    shell: ShellExecutor, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pids"
    command = f"trap '' TERM; sleep 1000 & echo $! > {pid_file}; wait; wait"
    started = time.monotonic()
    result = run(shell, sh(command, timeout=0.5))
    elapsed = time.monotonic() - started
    assert result.status == "timed_out"
    assert result.exit_code == -9
    assert 0.5 + GRACE * 0.9 <= elapsed < 0.5 + GRACE + 1.5
    wait_until(lambda: not is_running(read_pids(pid_file)[0]), timeout=5)


def test_processes_left_behind_by_a_finished_command_are_killed(
    shell: ShellExecutor, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pids"
    started = time.monotonic()
    result = run(shell, sh(f"sleep 1000 & echo $! > {pid_file}; echo done"))
    assert (result.status, result.stdout) == ("succeeded", "done\n")
    assert time.monotonic() - started < 5  # not held up by the straggler's open stdout
    wait_until(lambda: not is_running(read_pids(pid_file)[0]), timeout=5)


def test_cancel_stops_a_running_command(shell: ShellExecutor, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    cancel = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(shell.execute, sh(f"touch {ready}; sleep 1000"), cancel)
        wait_until(ready.exists, timeout=5)
        cancel.set()
        result = future.result(timeout=5)
    assert (result.status, result.error) == ("cancelled", "cancelled")


def test_a_cancel_before_start_runs_nothing(shell: ShellExecutor, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    cancel = threading.Event()
    cancel.set()
    result = shell.execute(sh(f"touch {marker}"), cancel)
    assert result.status == "cancelled"
    assert not marker.exists()


def test_a_missing_executable_fails_with_the_reason(shell: ShellExecutor) -> None:
    result = run(shell, make_request("shell", argv=("/nonexistent/tool", "x")))
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.startswith("cannot start command:")
    assert "/nonexistent/tool" in result.error


def test_a_job_without_argv_or_command_fails(shell: ShellExecutor) -> None:
    result = run(shell, make_request("shell"))
    assert result.status == "failed"
    assert "neither argv nor command" in (result.error or "")


@pytest.mark.parametrize(
    ("returncode", "text"),
    [
        (0, "exit code 0"),
        (2, "exit code 2"),
        (-15, "killed by signal SIGTERM"),
        (-99, "killed by signal 99"),
    ],
)
def test_describe_exit(returncode: int, text: str) -> None:
    assert describe_exit(returncode) == text


def test_the_workers_settings_do_not_reach_the_job(
    shell: ShellExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHRONOLOG_DATABASE_URL", "postgresql://chronolog:secret@db/chronolog")
    result = run(shell, make_request("shell", command="env"))
    assert "secret" not in result.stdout
    assert "CHRONOLOG_RUN_ID=" in result.stdout
