"""``chronolog up`` supervises its children: a killed scheduler or worker is logged and
restarted, and neither the scheduler nor the API imports job code."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.conftest import wait_until
from tests.e2e.cluster import cluster_env, create_job, pid_alive, trigger, wait_for_run
from tests.e2e.conftest import Server, free_port

pytestmark = pytest.mark.e2e


def children(pid: int) -> dict[str, int]:
    """The live child processes of ``pid`` by role (``scheduler``, ``worker``)."""
    found: dict[str, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            role = next((arg.decode() for arg in cmdline if arg in (b"scheduler", b"worker")), None)
            if role is not None and pid_alive(int(child)):
                found[role] = int(child)
    return found


def leader(api: httpx.Client) -> str | None:
    owner: str | None = api.get("/api/health").json()["scheduler"]["leader"]
    return owner


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path / "data", free_port(), env=cluster_env())
    server.start()
    yield server
    if server.process is not None:
        server.stop()


def test_a_killed_scheduler_and_worker_are_logged_and_restarted(up: Server) -> None:
    assert up.process is not None
    pid = up.process.pid
    with up.client(timeout=10) as api:
        wait_until(lambda: leader(api) is not None, timeout=30)
        wait_until(lambda: children(pid).keys() == {"scheduler", "worker"}, timeout=30)
        before = children(pid)
        for child in before.values():
            os.kill(child, signal.SIGKILL)

        def replaced() -> bool:
            now = children(pid)
            return now.keys() == before.keys() and not set(now.values()) & set(before.values())

        wait_until(replaced, timeout=30)
        log = up.log_path.read_text()
        assert f"scheduler (pid {before['scheduler']}) killed by SIGKILL; restarting" in log
        assert f"worker-1 (pid {before['worker']}) killed by SIGKILL; restarting" in log

        create_job(api, name="after-the-kill", type="shell", command="echo still here")
        run_id = trigger(api, "after-the-kill")
        run = wait_for_run(api, run_id, lambda r: r["status"] == "completed", timeout=60)
        assert run["output"] == "still here\n"
    after = children(pid)
    assert up.stop() == 0
    assert not any(pid_alive(child) for child in after.values())  # stopped, not restarted
    assert up.log_path.read_text().count("restarting") == 2


def test_a_job_module_named_like_the_standard_library_breaks_no_role(tmp_path: Path) -> None:
    job_dir = tmp_path / "jobs"
    job_dir.mkdir()
    (job_dir / "email.py").write_text('raise SystemExit("job code imported")\n')
    server = Server(
        tmp_path / "data",
        free_port(),
        env=cluster_env(),
        cwd=job_dir,
    )
    server.start()  # API, scheduler and worker all started from that directory
    try:
        with server.client(timeout=10) as api:
            wait_until(lambda: leader(api) is not None, timeout=30)
            create_job(api, name="reports", type="shell", command="true")
            run_id = trigger(api, "reports")
            wait_for_run(api, run_id, lambda r: r["status"] == "completed")
        assert "job code imported" not in server.log_path.read_text()
    finally:
        server.stop()
