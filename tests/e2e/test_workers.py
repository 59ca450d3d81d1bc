"""Workers as ``GET /api/workers`` and ``/api/health`` show them, with real processes."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.conftest import wait_until
from tests.e2e.cluster import (
    Cluster,
    create_job,
    peak,
    runs_of,
    start_cluster,
    trigger,
    wait_for_run,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster(tmp_path: Path, stack: dict[str, str]) -> Iterator[Cluster]:
    running = start_cluster(tmp_path / "data", workers=0, env=stack)  # heartbeat every 1 s
    yield running
    running.stop()


def workers(api: httpx.Client, include_gone: bool = False) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = api.get(
        "/api/workers", params={"include_gone": include_gone}
    ).json()
    return listed


def test_a_sigkilled_worker_is_recorded_lost(cluster: Cluster) -> None:
    process = cluster.start_worker()
    with cluster.api() as api:
        wait_until(lambda: len(workers(api)) == 1, timeout=30)
        (registered,) = workers(api)
        assert (registered["status"], registered["alive"]) == ("active", True)
        process.send_signal(signal.SIGKILL)
        process.wait()
        # Three missed heartbeats (3 s here), then the scheduler records WorkerLost.
        wait_until(lambda: workers(api) == [], timeout=30)
        (gone,) = workers(api, include_gone=True)
        assert (gone["id"], gone["status"], gone["alive"]) == (registered["id"], "lost", False)
        assert gone["last_heartbeat_at"] is None  # no live heartbeat lease any more
        assert api.get("/api/health").json()["workers"] == {"registered": 0, "alive": 0}


def _heartbeat(api: httpx.Client) -> datetime:
    (worker,) = workers(api)
    return datetime.fromisoformat(worker["last_heartbeat_at"])


def test_a_live_worker_shows_its_last_heartbeat_moving(cluster: Cluster) -> None:
    cluster.start_worker()
    with cluster.api() as api:
        wait_until(lambda: len(workers(api)) == 1, timeout=30)
        first = _heartbeat(api)
        # Heartbeats come every 1 s here: the last one is recent, and the next one moves it.
        assert datetime.now(UTC) - first < timedelta(seconds=3)
        wait_until(lambda: _heartbeat(api) > first, timeout=5)


def test_health_names_a_queue_nobody_serves_until_a_worker_comes(cluster: Cluster) -> None:
    with cluster.api() as api:
        wait_until(lambda: api.get("/api/health").json()["scheduler"]["leader"] is not None)
        create_job(api, name="waits", type="shell", command="echo served")
        run_id = trigger(api, "waits")
        wait_for_run(api, run_id, lambda r: r["status"] == "queued")
        response = api.get("/api/health")
        assert response.status_code == 503
        assert response.json()["problems"] == [
            "queue 'default' has 1 queued runs and no live worker"
        ]
        assert response.json()["queues"] == {"default": {"queued": 1, "live_workers": 0}}
        cluster.start_worker()
        wait_for_run(api, run_id, lambda r: r["status"] == "completed")
        wait_until(lambda: api.get("/api/health").status_code == 200, timeout=10)


def test_a_worker_runs_at_most_its_concurrency_of_jobs_at_once(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A run gives its slot back once its job has run, before its outcome is appended,
    so the next run is taken and started meanwhile; the jobs running at once still never
    pass ``--concurrency``."""
    cluster.start_worker(concurrency=2)
    log_file = tmp_path / "intervals.log"
    runs = 30
    with cluster.api() as api:
        create_job(
            api,
            name="interval",
            type="python",
            function="tests.jobs.sample:interval",
            parameters={"log_file": str(log_file)},
            concurrency_policy="allow",
            max_concurrency=None,
        )
        items = [{"job": "interval"}] * runs
        assert api.post("/api/runs", json={"runs": items}).status_code == 201
        wait_until(
            lambda: [r["status"] for r in runs_of(api, "interval")] == ["completed"] * runs,
            timeout=60,
        )
    lines = [line.split() for line in log_file.read_text().splitlines()]
    assert len(lines) == 2 * runs
    assert peak((int(at), 1 if sign == "+" else -1) for sign, at in lines) == 2
