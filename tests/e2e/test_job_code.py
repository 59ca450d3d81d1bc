"""Job code on real worker processes: where python jobs are imported from (the app dir),
changed code picked up without a restart, prefork children recycled, what a job learns
about its run, and job code that cannot load failing for good."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.conftest import wait_until
from tests.e2e.cluster import (
    Cluster,
    cluster_env,
    create_job,
    expect_worker_ready,
    run_events,
    runs_of,
    start_cluster,
    trigger,
    wait_for_run,
)
from tests.e2e.conftest import Server, free_port

pytestmark = pytest.mark.e2e

# The console script, as the README starts a worker: its sys.path[0] is the script's
# directory, not the current one (`python -m` would add the current one).
CHRONOLOG_SCRIPT = str(Path(sys.executable).parent / "chronolog")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Embedded backends: where job code comes from does not depend on them."""
    running = start_cluster(tmp_path / "data", workers=0)
    yield running
    running.stop()


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    path = tmp_path / "app"
    path.mkdir()
    return path


def start_worker(
    cluster: Cluster, cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``chronolog worker`` (the console script) started in ``cwd``, with one slot."""
    command = [CHRONOLOG_SCRIPT, "worker", "--data-dir", str(cluster.data_dir), *args]
    # No PYTHONPATH: job code must be found through the app dir alone.
    variables = cluster_env({**cluster.env, **(env or {})})
    variables.pop("PYTHONPATH", None)
    process = subprocess.Popen(
        command,
        env=variables,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    expect_worker_ready(process)
    cluster.workers.append(process)
    return process


def write_module(directory: Path, name: str, source: str) -> None:
    """Write a module whole at once: a worker never sees half a file."""
    partial = directory / f".{name}.py.tmp"
    partial.write_text(source)
    partial.rename(directory / f"{name}.py")


def run_job(api: httpx.Client, job: str) -> dict[str, Any]:
    run_id = trigger(api, job)
    return wait_for_run(api, run_id, lambda r: r["status"] in ("completed", "failed"))


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("how", ["current directory", "--app-dir", "CHRONOLOG_APP_DIR"])
def test_a_worker_started_the_readme_way_imports_jobs_from_its_app_dir(
    cluster: Cluster, app_dir: Path, tmp_path: Path, how: str
) -> None:
    module = unique("reports")
    write_module(app_dir, module, "def generate_daily(recipients):\n    return recipients\n")
    if how == "current directory":
        start_worker(cluster, app_dir)
    elif how == "--app-dir":
        start_worker(cluster, tmp_path, "--app-dir", str(app_dir))
    else:
        start_worker(cluster, tmp_path, env={"CHRONOLOG_APP_DIR": str(app_dir)})
    with cluster.api() as api:
        create_job(
            api,
            name="daily-report",
            type="python",
            function=f"{module}.generate_daily",
            parameters={"recipients": ["team@example.com"]},
        )
        run = run_job(api, "daily-report")
    assert (run["status"], run["result"]) == ("completed", ["team@example.com"]), run


def test_up_gives_its_workers_its_app_dir(tmp_path: Path, app_dir: Path) -> None:
    module = unique("jobs")
    write_module(app_dir, module, "def hello():\n    return 'hello from the app dir'\n")
    env = cluster_env()
    env.pop("PYTHONPATH")
    args = ["--workers", "1", "--app-dir", str(app_dir)]
    server = Server(tmp_path / "data", free_port(), extra_args=args, env=env)
    server.start()
    try:
        with server.client(timeout=10) as api:
            create_job(api, name="hello", type="python", function=f"{module}:hello")
            wait_until(lambda: api.get("/api/health").json()["scheduler"]["leader"] is not None)
            run = run_job(api, "hello")
    finally:
        server.stop()
    assert (run["status"], run["result"]) == ("completed", "hello from the app dir"), run


def test_a_worker_refuses_an_app_dir_that_does_not_exist(cluster: Cluster, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    command = [CHRONOLOG_SCRIPT, "worker", "--data-dir", str(cluster.data_dir)]
    finished = subprocess.run(
        [*command, "--app-dir", str(missing)],
        env=cluster_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 1
    assert "--app-dir or CHRONOLOG_APP_DIR" in finished.stderr
    assert "is not a directory" in finished.stderr


def test_changed_job_code_is_picked_up_without_restarting_the_worker(
    cluster: Cluster, app_dir: Path
) -> None:
    module, helper = unique("job"), unique("helper")
    write_module(app_dir, helper, "SUFFIX = 'helper v1'\n")
    job = f"import os\nfrom {helper} import SUFFIX\n\ndef value():\n    return ['v1', SUFFIX]\n"
    write_module(app_dir, module, job)
    worker = start_worker(cluster, app_dir)
    with cluster.api() as api:
        create_job(api, name="changing", type="python", function=f"{module}:value")
        assert run_job(api, "changing")["result"] == ["v1", "helper v1"]
        write_module(app_dir, module, job.replace("'v1'", "'v2'"))
        assert run_job(api, "changing")["result"] == ["v2", "helper v1"]
        # A module the job imports is job code too.
        write_module(app_dir, helper, "SUFFIX = 'helper v2'\n")
        assert run_job(api, "changing")["result"] == ["v2", "helper v2"]
    assert worker.poll() is None  # the same worker all along


@pytest.mark.parametrize(("limit", "pids"), [(2, 2), (0, 1)])
def test_max_runs_per_child_replaces_the_child(
    cluster: Cluster, app_dir: Path, limit: int, pids: int
) -> None:
    module = unique("pid")
    write_module(app_dir, module, "import os\n\ndef pid():\n    return os.getpid()\n")
    start_worker(cluster, app_dir, "--max-runs-per-child", str(limit))
    with cluster.api() as api:
        create_job(api, name="pid", type="python", function=f"{module}:pid")
        seen = [run_job(api, "pid")["result"] for _ in range(4)]
    # One child serves the one slot: it changes after each `limit` runs, or never.
    assert len(set(seen)) == pids, seen
    if limit:
        assert seen[0] == seen[1] and seen[1] != seen[2] and seen[2] == seen[3]


def test_a_job_whose_module_does_not_exist_fails_for_good(cluster: Cluster, app_dir: Path) -> None:
    # Any module: by default the policy would refuse it first, as it is not in the app dir.
    start_worker(cluster, app_dir, env={"CHRONOLOG_WORKER_PYTHON_MODULES": "*"})
    error = "cannot import module 'no_such_module_xyz': No module named 'no_such_module_xyz'"
    with cluster.api() as api:
        # Retries left, and a long delay: a retry would show as a second attempt.
        create_job(
            api,
            name="missing",
            type="python",
            function="no_such_module_xyz:run",
            retries=5,
            retry_delay=30,
        )
        run_id = trigger(api, "missing")
        run = wait_for_run(api, run_id, lambda r: r["status"] == "failed")
        failed = [e for e in run_events(api, run["id"]) if e["type"] == "RunFailed"]
    assert failed[0]["payload"]["retryable"] is False
    assert failed[0]["payload"]["error"] == error
    assert (run["attempt"], run["dead_lettered"]) == (1, True)
    assert run["reason"] == f"not retryable: {error}"
    assert [a["status"] for a in run["attempts"]] == ["failed"]


def test_a_scheduled_python_job_learns_its_run_and_fire_time(
    tmp_path: Path, stack: dict[str, str]
) -> None:
    cluster = start_cluster(tmp_path / "data", workers=1, env=stack)
    fire = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
    try:
        with cluster.api() as api:
            create_job(
                api,
                name="learns",
                type="python",
                function="tests.jobs.sample:describe_run",
                schedule=fire.isoformat(),
            )
            wait_until(lambda: len(runs_of(api, "learns")) == 1, timeout=30)
            run_id = runs_of(api, "learns")[0]["id"]
            run = wait_for_run(api, run_id, lambda r: r["status"] == "completed")
    finally:
        cluster.stop()
    learned = run["result"]
    assert learned["run"] == {
        "run_id": run_id,
        "job_id": run["job_id"],
        "job_name": "learns",
        "attempt": 1,
        "scheduled_for": fire.isoformat(),
        "parameters": {},
        "traceparent": None,  # tracing is off
    }
    assert learned["env"]["SCHEDULED_FOR"] == fire.isoformat()
    assert learned["env"]["RUN_ID"] == run_id
    assert datetime.fromisoformat(run["scheduled_for"]) == fire
