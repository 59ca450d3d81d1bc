"""A Chronolog cluster of real processes on one data directory, for kill tests.

``chronolog up --workers 0`` runs the API, projector and scheduler; workers are separate
``chronolog worker`` processes the tests can kill, freeze and start. Leases are short so
loss is detected in seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx

from tests.conftest import wait_until
from tests.e2e.conftest import Server, free_port

REPO = Path(__file__).resolve().parents[2]

FAST = {
    "CHRONOLOG_RUN_LEASE_TTL": "2",
    "CHRONOLOG_WORKER_HEARTBEAT_INTERVAL": "1",
    "CHRONOLOG_KILL_GRACE": "1",
    "CHRONOLOG_LEADER_TTL": "2",
    "CHRONOLOG_DRAIN_TIMEOUT": "5",
}
# The tests' jobs are shell and python jobs; test_policy.py takes shell away where it looks.
JOB_TYPES = {"CHRONOLOG_WORKER_JOB_TYPES": "python,shell,http"}


def cluster_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CHRONOLOG_") or k.startswith("CHRONOLOG_TEST_")
    }
    env.update(FAST)
    env.update(JOB_TYPES)
    env["PYTHONPATH"] = str(REPO)  # so python jobs in tests.jobs import
    env.update(extra or {})
    return env


@dataclass
class Cluster:
    data_dir: Path
    port: int
    server: Server
    workers: list[subprocess.Popen[str]] = field(default_factory=list)
    schedulers: list[subprocess.Popen[str]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # e.g. CHRONOLOG_REDIS_URL for every process

    @property
    def url(self) -> str:
        return self.server.url

    def api(self) -> httpx.Client:
        return self.server.client(timeout=10)

    def start_worker(
        self, concurrency: int = 2, tags: str = "default", env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "chronolog", "worker", "--data-dir", str(self.data_dir)]
        command += ["--concurrency", str(concurrency), "--tags", tags]
        process = subprocess.Popen(
            command,
            env=cluster_env({**self.env, **(env or {})}),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        expect_worker_ready(process)
        self.workers.append(process)
        return process

    def start_scheduler(self) -> tuple[str, subprocess.Popen[str]]:
        """A standalone scheduler process and its node id."""
        command = [sys.executable, "-m", "chronolog", "scheduler", "--data-dir", str(self.data_dir)]
        process = subprocess.Popen(
            command,
            env=cluster_env(self.env),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdout is not None
        node_id = process.stdout.readline().split()[1]  # "Scheduler <id> running on ..."
        self.schedulers.append(process)
        return node_id, process

    def stop(self) -> None:
        for process in [*self.workers, *self.schedulers]:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.send_signal(signal.SIGTERM)
        for process in [*self.workers, *self.schedulers]:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout:
                process.stdout.close()
        if self.server.process is not None:
            self.server.stop()


def expect_worker_ready(process: subprocess.Popen[str]) -> None:
    """A started worker prints what the README shows, once it listens for runs."""
    assert process.stdout is not None
    assert process.stdout.readline().startswith("Worker worker-")
    assert process.stdout.readline().strip() == "Listening for jobs..."


def start_cluster(
    data_dir: Path, workers: int = 1, scheduler: bool = True, env: dict[str, str] | None = None
) -> Cluster:
    args = ["--workers", "0", *([] if scheduler else ["--no-scheduler"])]
    server = Server(data_dir, free_port(), extra_args=args, env=cluster_env(env))
    server.start()
    cluster = Cluster(data_dir, server.port, server, env=env or {})
    for _ in range(workers):
        cluster.start_worker()
    return cluster


# --- helpers for the tests -----------------------------------------------------------


def create_job(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = api.post("/api/jobs", json=fields)
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job


def trigger(api: httpx.Client, job: str, **kwargs: Any) -> str:
    response = api.post(f"/api/jobs/{job}/trigger", **kwargs)
    assert response.status_code in (200, 201), response.text
    run_id: str = response.json()["run_id"]
    return run_id


def get_run(api: httpx.Client, run_id: str) -> dict[str, Any]:
    response = api.get(f"/api/runs/{run_id}")
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


def wait_for_run(
    api: httpx.Client, run_id: str, condition: Callable[[dict[str, Any]], bool], timeout: float = 30
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def check() -> bool:
        seen.update(get_run(api, run_id))
        return condition(seen)

    try:
        wait_until(check, timeout=timeout, interval=0.05)
    except AssertionError:
        raise AssertionError(
            f"run {run_id} never reached the condition; last seen: {seen}"
        ) from None
    return seen


def runs_of(api: httpx.Client, job: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = api.get("/api/runs", params={"job_id": job, "limit": 500}).json()[
        "runs"
    ]
    return runs


def run_events(api: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = api.get(f"/api/runs/{run_id}/events").json()["events"]
    return events


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def wait_gone(pid: int, timeout: float = 10) -> None:
    wait_until(lambda: not pid_alive(pid), timeout=timeout)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def settle(seconds: float) -> None:
    """Let time pass where the point is that nothing more happens (e.g. no duplicate run)."""
    time.sleep(seconds)


def peak(steps: Iterable[tuple[Any, int]]) -> int:
    """The most things running at once, from (when, +1 at a start or -1 at an end) steps;
    at the same moment an end counts before a start."""
    running = highest = 0
    for _, step in sorted(steps):
        running += step
        highest = max(highest, running)
    return highest
