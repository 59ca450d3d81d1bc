"""A worker's executor policy end to end: what it does not allow fails at once, for good,
with the reason, on both backend sets; ``chronolog up``'s first run keeps shell jobs."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.e2e.cluster import (
    Cluster,
    create_job,
    run_events,
    start_cluster,
    trigger,
    wait_for_run,
)
from tests.e2e.conftest import Server
from tests.http_server import serving

pytestmark = pytest.mark.e2e


class _Internal(BaseHTTPRequestHandler):
    """An internal page on loopback that no HTTP job may read."""

    server: _InternalServer

    def do_GET(self) -> None:
        self.server.hits += 1
        self.send_response(200)
        self.send_header("Content-Length", "6")
        self.end_headers()
        self.wfile.write(b"secret")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _InternalServer(ThreadingHTTPServer):
    daemon_threads = True
    hits = 0


@pytest.fixture
def internal() -> Iterator[_InternalServer]:
    with serving(_InternalServer(("127.0.0.1", 0), _Internal)) as httpd:
        yield httpd


@pytest.fixture
def cluster(tmp_path: Path, stack: dict[str, str]) -> Iterator[Cluster]:
    running = start_cluster(tmp_path / "data", workers=0, env=stack)
    # A worker with the defaults outside `up`: no shell, no allowlist.
    running.start_worker(env={"CHRONOLOG_WORKER_JOB_TYPES": "python,http"})
    yield running
    running.stop()


def refused_for_good(api: httpx.Client, name: str) -> tuple[dict[str, Any], str]:
    """Trigger ``name`` and wait for its run to fail; the run and its RunFailed error."""
    run_id = trigger(api, name)
    run = wait_for_run(api, run_id, lambda r: r["status"] == "failed")
    failed = [e for e in run_events(api, run_id) if e["type"] == "RunFailed"]
    assert len(failed) == 1
    assert failed[0]["payload"]["retryable"] is False
    error: str = failed[0]["payload"]["error"]
    assert (run["attempt"], run["dead_lettered"]) == (1, True)  # not retried
    assert run["reason"] == f"not retryable: {error}"
    assert [a["status"] for a in run["attempts"]] == ["failed"]
    return run, error


def test_a_worker_refuses_shell_jobs_and_internal_addresses_for_good(
    cluster: Cluster, internal: _InternalServer, tmp_path: Path
) -> None:
    marker = tmp_path / "shell-ran"
    internal_url = f"http://127.0.0.1:{internal.server_address[1]}/admin"
    retried = {"retries": 5, "retry_delay": 30}  # a retry would show as a second attempt
    with cluster.api() as api:
        create_job(api, name="sh", type="shell", command=f"touch {marker}", **retried)
        create_job(api, name="ssrf", type="http", url=internal_url, **retried)
        create_job(
            api,
            name="escape",
            type="python",
            function="subprocess:run",
            parameters={"args": ["touch", str(marker)]},
            **retried,
        )
        _, shell_error = refused_for_good(api, "sh")
        ssrf_run, ssrf_error = refused_for_good(api, "ssrf")
        _, escape_error = refused_for_good(api, "escape")
    assert shell_error == (
        "this worker does not run shell jobs (it runs python, http); to run them, start a "
        "worker with CHRONOLOG_WORKER_JOB_TYPES=python,http,shell (or --job-types)"
    )
    assert "127.0.0.1 is a loopback address" in ssrf_error
    assert "CHRONOLOG_HTTP_ALLOW" in ssrf_error
    assert "module 'subprocess' of 'subprocess:run' is not in this worker's app dir" in (
        escape_error
    )
    assert not marker.exists()
    assert internal.hits == 0
    assert ssrf_run["output"] == ""


def test_up_on_the_embedded_defaults_runs_shell_jobs_and_says_so(server: Server) -> None:
    with server.client(timeout=10) as api:
        create_job(api, name="hello", type="shell", command="echo first run")
        run = wait_for_run(api, trigger(api, "hello"), lambda r: r["status"] == "completed")
    assert run["output"] == "first run\n"
    assert "shell jobs are on for this up's workers" in server.log_path.read_text()
