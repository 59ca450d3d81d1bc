"""The run lifecycle with Redis holding leases and queues (every process on one Redis)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from tests.conftest import wait_until
from tests.e2e.cluster import Cluster, create_job, lines, start_cluster, trigger, wait_for_run

pytestmark = pytest.mark.e2e


E2E_DATABASE = 1  # the contract suite works in database 0, under per-test prefixes


@pytest.fixture
def cluster(tmp_path: Path, redis_url: str) -> Iterator[Cluster]:
    url = urlsplit(redis_url)._replace(path=f"/{E2E_DATABASE}").geturl()
    redis.Redis.from_url(url).flushdb()
    running = start_cluster(tmp_path / "data", workers=2, env={"CHRONOLOG_REDIS_URL": url})
    yield running
    running.stop()
    redis.Redis.from_url(url).flushdb()


def test_runs_complete_and_a_killed_worker_loses_no_run_on_redis(
    cluster: Cluster, tmp_path: Path
) -> None:
    effects = tmp_path / "effects"
    with cluster.api() as api:
        assert api.get("/api/health").json()["scheduler"]["leader"] is not None
        create_job(
            api,
            name="add",
            type="python",
            function="tests.jobs.sample:add",
            parameters={"a": 1, "b": 2},
        )
        done = wait_for_run(api, trigger(api, "add"), lambda r: r["status"] == "completed")
        assert done["result"] == 3

        command = f"echo start >> {effects}; sleep 2; echo done >> {effects}"
        create_job(api, name="kill-me", type="shell", command=command, retries=1, retry_delay=0)
        run_id = trigger(api, "kill-me")
        first = wait_for_run(api, run_id, lambda r: r["status"] == "running")
        wait_until(lambda: lines(effects) == ["start"])
        pids = {w["id"]: w["pid"] for w in api.get("/api/workers").json()}
        os.kill(pids[first["worker"]], signal.SIGKILL)
        run = wait_for_run(api, run_id, lambda r: r["status"] == "completed", timeout=30)
        assert [a["status"] for a in run["attempts"]] == ["lost", "succeeded"]
        assert run["attempts"][1]["lease_token"] > run["attempts"][0]["lease_token"]
